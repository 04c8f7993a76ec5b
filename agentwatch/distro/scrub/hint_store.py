"""Compiled hint databases kept between starts, as Python keeps ``.pyc`` files.

Compiling the hint database (``hints.py``) takes ~50 ms of CPU, and it happens on the first
line the console formatter scrubs, i.e. inside every process's start-up (each worker of a
multi-worker server pays it again). Hyperscan serializes a compiled database to bytes and
loads them back in well under a millisecond, so the first process on a machine compiles and
stores it (``AGENTWATCH_CACHE_DIR``, by default ``$XDG_CACHE_HOME/agentwatch`` or
``~/.cache/agentwatch``) and the others load it.

The file is found by a digest of everything the database is built from (the engine's version,
the machine, the mode, every pattern with its id and flags), so another configuration or
release never reads it. It is read only if it is a regular file (not a link) owned by this
user and writable by no one else, in a directory that is not writable by others; its content
is checked against a SHA-256 written beside it before Hyperscan sees it, and the engine
checks its own version and platform. Anything else (absent, corrupt, truncated, another
platform's, a read-only file system, no home directory) means compile, and store if possible:
the cache can make a start cheaper, never fail one. Writes go through a temporary file and a
rename, so a reader never sees half a file and two workers starting at once are harmless; the folder
keeps the :data:`KEEP` most recently written databases.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["KEEP", "MAGIC", "default_directory", "directory_problem", "load_or_compile", "path_for"]

#: The first bytes of a stored database (the format's version is in it).
MAGIC = b"AWHINT1\n"
_DIGEST = 32  # SHA-256 of the serialized database, after MAGIC
_MAX_BYTES = 16 * 1024 * 1024  # a larger file is not ours (the default database is ~110 KiB)
#: Databases kept per folder (one per release and configuration that ran here), the newest.
KEEP = 8
_STALE_SECONDS = 3600  # a temporary file this old was left by a process that stopped while writing


def default_directory() -> str | None:
    """``$XDG_CACHE_HOME/agentwatch``, else ``~/.cache/agentwatch``; ``None`` without a home."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG specification: a relative value is ignored
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "agentwatch")


def path_for(directory: str, hyperscan: Any, mode: int, patterns: Sequence[tuple[bytes, int, int]]) -> Path:
    """The file of the database built from ``patterns`` (expression, id, flags) in ``mode``."""
    key = hashlib.sha256()
    for part in (MAGIC, str(getattr(hyperscan, "__version__", "")).encode(), _machine().encode(),
                 str(mode).encode()):
        key.update(part + b"\x00")
    for expression, ident, flags in patterns:
        key.update(b"%d\x00%d\x00%d\x00" % (len(expression), ident, flags) + expression)
    return Path(directory) / f"hints-{key.hexdigest()[:40]}.hsdb"


def _machine() -> str:
    uname = getattr(os, "uname", None)
    if uname is not None:
        return uname().machine
    import platform  # Windows (os.uname is POSIX only); not imported at start-up elsewhere

    return platform.machine()


def _private_directory(directory: Path) -> bool:
    """``directory`` exists, is a real directory and no other user may write into it."""
    try:
        info = os.lstat(directory)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and not info.st_mode & 0o022 and _ours(info)


def _ours(info: os.stat_result) -> bool:
    getuid = getattr(os, "getuid", None)  # not on Windows, where the user's profile is private anyway
    return getuid is None or info.st_uid == getuid()


def directory_problem(directory: str) -> str | None:
    """Why compiled databases cannot be kept in ``directory`` (``agentwatch doctor``); ``None`` if they can."""
    path = Path(directory)
    if not path.exists():
        return "does not exist (made on the first compile, if it can be)"
    if not _private_directory(path):
        return "is not a directory of this user's that no one else can write to: not used"
    if not os.access(path, os.W_OK | os.X_OK):
        return "is not writable: every start compiles"
    return None


def _read(path: Path) -> bytes | None:
    """The stored database's bytes, or ``None`` if the file is absent, not safe to trust or not intact."""
    if not _private_directory(path.parent):
        return None
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if (not stat.S_ISREG(info.st_mode) or info.st_mode & 0o022 or not _ours(info)
                or not len(MAGIC) + _DIGEST < info.st_size <= _MAX_BYTES):
            return None
        with os.fdopen(fd, "rb") as file:
            fd = -1
            content = file.read(_MAX_BYTES + 1)
    except OSError:
        return None
    finally:
        if fd >= 0:
            os.close(fd)
    body = content[len(MAGIC) + _DIGEST:]
    if not content.startswith(MAGIC) or hashlib.sha256(body).digest() != content[len(MAGIC):len(MAGIC) + _DIGEST]:
        return None
    return body


def _write(path: Path, body: bytes) -> None:
    """Store ``body`` at ``path`` (a private directory made if needed); quietly nothing if it cannot."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private_directory(path.parent):
            return
        import tempfile  # only when a database is stored: once per machine and configuration

        fd, temporary = tempfile.mkstemp(prefix=".hints-", dir=path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(MAGIC + hashlib.sha256(body).digest() + body)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
        _prune(path)
    except OSError:
        pass


def _prune(kept: Path) -> None:
    """At most :data:`KEEP` databases in the folder: each release or configuration writes its own, so
    the least recently written beyond that go (another process may still be loading one: it then compiles).
    Temporary files an hour old (a process stopped between writing and renaming one) go too."""
    import time

    for temporary in kept.parent.glob(".hints-*"):
        if temporary.stat().st_mtime < time.time() - _STALE_SECONDS:
            temporary.unlink(missing_ok=True)
    others = [p for p in kept.parent.glob("hints-*.hsdb") if p != kept]
    if len(others) < KEEP:
        return
    others.sort(key=lambda p: p.stat().st_mtime)
    for stale in others[: len(others) - KEEP + 1]:
        stale.unlink(missing_ok=True)


def _loaded(hyperscan: Any, body: bytes, mode: int) -> Any:
    """The database in ``body``, or ``None`` if the engine refuses it (another platform's or build's)."""
    try:
        database = hyperscan.loadb(body, mode)
        hyperscan.Scratch(database)  # the engine's own checks (version, platform) are done by here
    except Exception:  # noqa: BLE001 - not loadable here: compiled instead
        return None
    return database


def load_or_compile(hyperscan: Any, mode: int, path: Path | None, compile_database: Callable[[], Any]) -> Any:
    """The database kept at ``path`` (:func:`path_for`) when a good copy is there, else
    ``compile_database()`` (then stored there). ``path`` ``None``: always compiled."""
    if path is None:
        return compile_database()
    body = _read(path)
    database = None if body is None else _loaded(hyperscan, body, mode)
    if database is not None:
        return database
    database = compile_database()
    try:
        body = hyperscan.dumpb(database)
    except Exception:  # noqa: BLE001 - cannot serialize: use it unstored
        return database
    _write(path, bytes(body))
    return database

