"""The web layer's settings: the ``web`` section of the distro's one settings object.

Read once, by the distro's one reader (:func:`agentwatch.distro.settings.load_web`); a bad value costs
only that value and one warning line names the variable, the value and what is used instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from agentwatch.distro.settings import Reader, WebSettings, load_web, reset_settings
from agentwatch.distro.settings import settings as distro_settings

__all__ = ["WebSettings", "load", "reset", "settings"]


def load(environ: Mapping[str, str] | None = None) -> WebSettings:
    """Read the web section from ``environ`` (default: the process environment) now."""
    return load_web(Reader(environ))


def settings() -> WebSettings:
    """The process-wide web section (read with the rest of the settings, once)."""
    return distro_settings().web


def reset() -> None:
    """Forget the cached settings (tests): the next use reads the environment again."""
    reset_settings()
