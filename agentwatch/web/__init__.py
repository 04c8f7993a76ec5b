"""What the distro adds to the watched app itself: health endpoints and checks,
request ids, safe error responses, draining on shutdown.

Nothing here needs to be called by the app: under ``opentelemetry-instrument``
the ``agentwatch_web`` instrumentor adds it to every FastAPI app. The app may
declare its own checks and read the request id::

    from agentwatch.web import current_request_id, health_check

    @health_check(critical=False, timeout=1.0)
    def cache():
        redis.ping()
"""

from __future__ import annotations

from agentwatch.web.checks import DEGRADED, HEALTHY, UNHEALTHY, Check, health_check, register
from agentwatch.web.request_id import current_request_id

__all__ = ["Check", "DEGRADED", "HEALTHY", "UNHEALTHY", "current_request_id", "health_check", "register", "reset"]


def reset() -> None:
    """Forget settings, state and results (tests): the next app build reads the environment again."""
    from agentwatch.web import config, health

    config.reset()
    health.reset_state()
