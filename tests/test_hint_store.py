"""The scrubber's compiled hint database kept between starts (``agentwatch/distro/scrub/hint_store.py``).

A start that finds a good copy loads it instead of compiling (~50 ms of CPU at every start
otherwise); the loaded database finds exactly what a compiled one does; a copy that is absent,
corrupt, truncated, forged, a link, someone else's or writable by others is never used (a compile
instead, and a good copy written back where that is safe); a directory that cannot be written
costs a compile, never an error. Also: the setting (``AGENTWATCH_CACHE_DIR``) and ``doctor``.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import _pii
import hyperscan
import pytest
from _service import clean_env
from test_scrub_engines import EDGES

from agentwatch.distro.scrub import Scrubber, hint_store
from agentwatch.distro.scrub import hints as _hints
from agentwatch.distro.scrub.detectors import hint_names
from agentwatch.distro.settings import Reader, cache_directory, load_settings

NAMES = hint_names(())
TEXTS = EDGES + [_pii.pem(random.Random(seed)) for seed in range(3)] + [
    "no secret here", "é" * 300 + " 4111 1111 1111 1111", "password=" + "x" * 5000, "@" * 3000, "::" * 2000,
]


class Compiles:
    """``hyperscan.Database`` counted: how many databases were compiled (a load makes none)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = hyperscan.Database

        def counted(*args, **kwargs):
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(hyperscan, "Database", counted)


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> Compiles:
    return Compiles(monkeypatch)


def _scanner(directory: Path | None) -> _hints.HintScanner:
    return _hints.HintScanner(hyperscan, _hints._FIXED + [(_hints._params_pattern(*NAMES), _hints.PARAMS)],
                              None if directory is None else str(directory))


def _stored(directory: Path) -> list[Path]:
    return sorted(directory.glob("hints-*.hsdb"))


def _hits(scanner: _hints.HintScanner) -> list:
    return [scanner.scan(text.encode("ascii", "replace")) for text in TEXTS]


def test_a_second_start_loads_what_the_first_compiled(tmp_path: Path, compiles: Compiles) -> None:
    fresh = _scanner(None)
    assert compiles.count == 1
    first = _scanner(tmp_path)
    assert compiles.count == 2 and len(_stored(tmp_path)) == 1
    second = _scanner(tmp_path)
    assert compiles.count == 2  # loaded, not compiled
    assert _hits(second) == _hits(first) == _hits(fresh)
    (path,) = _stored(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert tmp_path.stat().st_mode & 0o022 == 0


def test_the_loaded_database_scrubs_like_a_compiled_one(tmp_path: Path) -> None:
    _hints.build.cache_clear()
    try:
        Scrubber(cache_dir=str(tmp_path)).scrub_text("warm up")  # compiles and stores
        _hints.build.cache_clear()
        loaded, compiled = Scrubber(cache_dir=str(tmp_path)), Scrubber(cache_dir=None)
        assert loaded.engine_name == compiled.engine_name == "hyperscan"
        assert loaded._hints is not compiled._hints  # two databases: one loaded, one compiled
        for text in TEXTS:
            assert loaded.scrub_text(text) == compiled.scrub_text(text), text
    finally:
        _hints.build.cache_clear()


def test_the_directory_is_made_private(tmp_path: Path) -> None:
    directory = tmp_path / "a" / "b"
    _scanner(directory)
    assert directory.stat().st_mode & 0o777 == 0o700
    assert len(_stored(directory)) == 1


def _forge(body: bytes) -> bytes:
    return hint_store.MAGIC + hashlib.sha256(body).digest() + body


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda good: b"", id="empty"),
        pytest.param(lambda good: good[: len(good) // 2], id="truncated"),
        pytest.param(lambda good: good[:-1] + bytes([good[-1] ^ 1]), id="one-bit-flipped"),
        pytest.param(lambda good: b"XXXXXXX\n" + good[8:], id="wrong-magic"),
        pytest.param(lambda good: _forge(os.urandom(4096)), id="forged-digest-random-body"),
        pytest.param(lambda good: _forge(b"\x00" * 200_000), id="forged-digest-zero-body"),
        pytest.param(lambda good: _forge(bytes(good[40:60]) + good[40:]), id="forged-digest-shifted-database"),
        pytest.param(lambda good: good + b"\x00" * (17 * 1024 * 1024), id="larger-than-any-database"),
    ],
)
def test_a_damaged_or_forged_copy_is_compiled_again_and_replaced(tmp_path: Path, compiles: Compiles, damage) -> None:
    expected = _hits(_scanner(tmp_path))
    (path,) = _stored(tmp_path)
    good = path.read_bytes()
    path.write_bytes(damage(good))
    path.chmod(0o600)
    before = compiles.count
    assert _hits(_scanner(tmp_path)) == expected
    assert compiles.count == before + 1
    assert path.read_bytes() == good  # replaced by a good copy


def test_a_copy_others_may_write_is_not_read(tmp_path: Path, compiles: Compiles) -> None:
    _scanner(tmp_path)
    (path,) = _stored(tmp_path)
    path.chmod(0o666)
    before = compiles.count
    _scanner(tmp_path)
    assert compiles.count == before + 1
    assert path.stat().st_mode & 0o777 == 0o600  # the rewrite is private again


def test_a_directory_others_may_write_is_neither_read_nor_written(tmp_path: Path, compiles: Compiles) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    _scanner(shared)
    (path,) = _stored(shared)
    shared.chmod(0o777)
    try:
        path.unlink()
        before = compiles.count
        _scanner(shared)
        _scanner(shared)
        assert compiles.count == before + 2
        assert _stored(shared) == []
        assert hint_store.directory_problem(str(shared)).endswith("not used")
    finally:
        shared.chmod(0o700)


def test_a_link_is_not_followed(tmp_path: Path, compiles: Compiles) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    _scanner(elsewhere)
    (target,) = _stored(elsewhere)
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    link = directory / target.name
    link.symlink_to(target)
    before = compiles.count
    _scanner(directory)
    assert compiles.count == before + 1  # not read through the link
    assert not link.is_symlink() and link.is_file()  # the link itself replaced by a file
    assert target.read_bytes() == link.read_bytes()


def test_a_directory_that_cannot_exist_costs_a_compile_not_an_error(tmp_path: Path, compiles: Compiles) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    scanner = _scanner(blocker / "cache")
    assert compiles.count == 1
    assert scanner.scan(b"a@b.co")  # works
    assert hint_store.directory_problem(str(blocker / "cache")).startswith("does not exist")


def test_the_folder_keeps_the_newest_databases_only(tmp_path: Path) -> None:
    for n in range(hint_store.KEEP + 4):  # earlier releases' and configurations' databases
        stale = tmp_path / f"hints-{n:040d}.hsdb"
        stale.write_bytes(b"old")
        os.utime(stale, (1_000_000 + n, 1_000_000 + n))
    (tmp_path / "unrelated.txt").write_text("not ours")
    _scanner(tmp_path)
    left = _stored(tmp_path)
    assert len(left) == hint_store.KEEP
    survivors = {p.name for p in left}
    # the newest stale ones and the database just written survive; the oldest went
    assert f"hints-{hint_store.KEEP + 3:040d}.hsdb" in survivors and f"hints-{0:040d}.hsdb" not in survivors
    assert sum(1 for p in left if p.read_bytes() != b"old") == 1
    assert (tmp_path / "unrelated.txt").exists()


def test_temporary_files_left_by_a_stopped_writer_go(tmp_path: Path) -> None:
    old, recent = tmp_path / ".hints-left1234", tmp_path / ".hints-being-written"
    for path in (old, recent):
        path.write_bytes(b"half a database")
    os.utime(old, (1_000_000, 1_000_000))
    _scanner(tmp_path)
    assert not old.exists()
    assert recent.exists()  # another process may be writing it right now
    assert len(_stored(tmp_path)) == 1


def test_another_configuration_has_another_file(tmp_path: Path) -> None:
    _hints.build.cache_clear()
    try:
        _hints.build(*NAMES, str(tmp_path))
        _hints.build(*hint_names(("tenant_secret",)), str(tmp_path))
        assert len(_stored(tmp_path)) == 2
        assert _hints.build(*hint_names(("tenant_secret",)), str(tmp_path)).scan(b"tenant_secret=1")
    finally:
        _hints.build.cache_clear()


def test_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    assert cache_directory(Reader({})) == "/xdg/agentwatch"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # ignored, as the XDG specification says
    assert cache_directory(Reader({})) == os.path.join(os.path.expanduser("~"), ".cache", "agentwatch")
    monkeypatch.setenv("XDG_CACHE_HOME", "/xdg")
    assert cache_directory(Reader({"AGENTWATCH_CACHE_DIR": "/srv/cache"})) == "/srv/cache"
    for off in ("off", "OFF", "false", "0"):
        assert cache_directory(Reader({"AGENTWATCH_CACHE_DIR": off})) is None
    reader = Reader({"AGENTWATCH_CACHE_DIR": "not/absolute"})
    assert cache_directory(reader) == "/xdg/agentwatch"
    assert "invalid value 'not/absolute' ignored" in reader.sources["AGENTWATCH_CACHE_DIR"]


def test_settings_reach_the_scrubber(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from agentwatch.distro.scrub import scrubber_for

    monkeypatch.setenv("AGENTWATCH_CACHE_DIR", str(tmp_path))
    assert scrubber_for(load_settings()).cache_dir == str(tmp_path)
    monkeypatch.setenv("AGENTWATCH_CACHE_DIR", "off")
    assert scrubber_for(load_settings()).cache_dir is None


_START = textwrap.dedent(
    """
    import logging, sys, hyperscan
    from agentwatch.distro.scrub import hints
    compiled = []
    real = hyperscan.Database
    hyperscan.Database = lambda *a, **k: compiled.append(1) or real(*a, **k)
    import agentwatch
    agentwatch.configure()
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("app").info("started, mail me at ops@example.com")
    print("compiled", len(compiled))
    """
)


def test_a_process_start_loads_the_database_an_earlier_one_stored(tmp_path: Path) -> None:
    env = clean_env(AGENTWATCH_CACHE_DIR=str(tmp_path / "cache"), OTEL_TRACES_EXPORTER="none",
                    OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    runs = [subprocess.run([sys.executable, "-c", _START], env=env, capture_output=True, text=True, timeout=120)
            for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert "ops@example.com" not in run.stderr and "[REDACTED:email]" in run.stderr
    assert "compiled 1" in runs[0].stdout and "compiled 0" in runs[1].stdout
    assert len(_stored(tmp_path / "cache")) == 1


def test_doctor_says_where_the_database_is_kept(tmp_path: Path) -> None:
    env = clean_env(AGENTWATCH_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "agentwatch", "doctor"], env=env, capture_output=True, text=True,
                         timeout=120).stdout
    assert f"its compiled database kept in {tmp_path}" in out
    env["AGENTWATCH_CACHE_DIR"] = "off"
    out = subprocess.run([sys.executable, "-m", "agentwatch", "doctor"], env=env, capture_output=True, text=True,
                         timeout=120).stdout
    assert "compiled at every start (AGENTWATCH_CACHE_DIR=off)" in out


def _prepare(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``agentwatch prepare`` in a child process with ``env``."""
    return subprocess.run([sys.executable, "-m", "agentwatch", "prepare"], env=env, capture_output=True, text=True,
                          timeout=120)


def test_prepare_keeps_the_database_a_start_then_loads(tmp_path: Path) -> None:
    """``agentwatch prepare`` (an image build step) stores what the next start loads without compiling."""
    directory = tmp_path / "image-cache"
    env = clean_env(AGENTWATCH_CACHE_DIR=str(directory))
    done = _prepare(env)
    assert done.returncode == 0, done.stderr
    (path,) = _stored(directory)
    assert f"hint database kept in {directory} ({path.name})" in done.stdout
    env.update(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    start = subprocess.run([sys.executable, "-c", _START], env=env, capture_output=True, text=True, timeout=120)
    assert start.returncode == 0, start.stderr
    assert "compiled 0" in start.stdout


@pytest.mark.parametrize(
    ("setting", "says"),
    [("off", "AGENTWATCH_CACHE_DIR=off: nothing can be kept"), ("shared", "not used"), ("blocked", "could not be kept")],
)
def test_prepare_fails_when_nothing_can_be_kept(tmp_path: Path, setting: str, says: str) -> None:
    if setting == "shared":
        value = tmp_path / "shared"
        value.mkdir()
        value.chmod(0o777)
    elif setting == "blocked":
        (tmp_path / "file").write_text("x")
        value = tmp_path / "file" / "cache"
    else:
        value = "off"
    done = _prepare(clean_env(AGENTWATCH_CACHE_DIR=str(value)))
    assert done.returncode == 1
    assert says in done.stderr


def test_prepare_fails_when_this_configuration_s_database_is_not_kept_beside_another(tmp_path: Path) -> None:
    """Only this configuration's file counts: another release's database in the folder does not make a failed
    write a success (here the file's name is taken by a directory, so the rename into it fails)."""
    directory = tmp_path / "image-cache"
    env = clean_env(AGENTWATCH_CACHE_DIR=str(directory))
    first = _prepare(env)
    assert first.returncode == 0, first.stderr
    (path,) = _stored(directory)
    other = path.with_name("hints-" + "0" * 40 + ".hsdb")
    path.rename(other)  # a database of another configuration, intact
    path.mkdir()
    done = _prepare(env)
    assert done.returncode == 1, done.stdout
    assert "could not be kept" in done.stderr and other.is_file()


def test_prepare_without_the_engine_has_nothing_to_do(tmp_path: Path) -> None:
    done = _prepare(clean_env(AGENTWATCH_CACHE_DIR=str(tmp_path), AGENTWATCH_SCRUB_ENGINE="re"))
    assert done.returncode == 0 and "nothing to keep" in done.stdout
    assert _stored(tmp_path) == []
