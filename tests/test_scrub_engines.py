"""The scrubber's two engines give the same bytes: the Hyperscan hint pass and Python's re alone.

``agentwatch/distro/scrub/hints.py`` claims each of its patterns is a superset of what its detector
family can replace, so skipping a string without a hit changes nothing. These tests hold it to
that: family by family, on generated text full of PII, look-alikes and edge characters, and end
to end (texts, NUL-joined batches, log records through ``scrub_logs``), plus the key-by-key walk
of a batch's attributes against the map-by-map walk it short-cuts. Also: the engine really runs
here, threads each get their own scratch space, and a failing engine falls back to re with
one warning and the same results.
"""

from __future__ import annotations

import os
import platform
import random
import sys
import threading
import time
from functools import reduce
from operator import or_

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

import _pii
from agentwatch.distro import scrub as scrub_package
from agentwatch.distro.scrub import Scrubber
from agentwatch.distro.scrub import hints as _hints
from agentwatch.distro.scrub import text as text_engine
from agentwatch.distro.scrub.values import parts_by_column, scrub_parts
from agentwatch.distro.settings import load_settings
from test_scrubbing import FILLER, pii

FAST = Scrubber()
SLOW = Scrubber(engine="re")
FAMILIES = {name: getattr(_hints, name) for name in ("VENDOR", "URL", "PARAMS", "AT", "IPV6", "NUMERIC")}

# Where the hint patterns draw their lines: token starts, loopback, separators, encodings.
EDGES = [
    "127.0.0.1", "0127.0.0.1", "1127.1.2.3", "10.0.0.1", "a10.0.0.1", "v1.2.3.4", "version 1.2.3.4", "0.0.0.0",
    "Chrome/131.0.0.0", "Host/10.0.0.1", "ip/10.0.0.1", "Mozilla/5.0 X/1.2.3.4", "Mozilla/5.0\x00X/1.2.3.4",
    "+1 415 555 0134", "+44 (20) 7946-0958", "%2B14155550134", "%2b442079460958", "(415) 555-0134",
    "1 415 555 0134", "415.555.0134", "020 7946 0958", "0049 30 1234567", "4111 1111 1111 1111", "4111-1111-1111-1111",
    "378282246310005", "ssn: 234 56 7890", "234-56-7890", "span_id=4111111111111111", "x4111111111111111",
    "_4111111111111111", "-4111111111111111", "order 12345678901", "1795430731885885062",
    "key=abc123", "\nkey=abc123", "?code=xyz789&sig=aa", ";sig=zz", "apiKey: 'v'", 'password\\": \\"x\\"',
    "Authorization: Basic dXNlcjpwYXNz", "cookie: a=b; c=d", "session_id=s-1", "token: 42",
    "Bearer abcdefgh12", "bearer\tXYZ12345678", "BEARER 12345678", "sk-" + "a1" * 12, "sk_live_" + "b" * 20,
    "AIza" + "c" * 35, "AKIA" + "D" * 16, "ghp_" + "e" * 36, "xoxb-" + "1" * 12, "eyJabcdefgh.ijklmnop.qr",
    "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----", "https://u:p@host/x", "ftp://:pw@h",
    "2001:db8::1", "fe80::1%eth0", "::1", "12:30:45", "a:b:c:d:e", "00:1A:2B:3C:4D:5E", "std::vector",
    "x@y.io", "alice%40example.com", "bob\\u0040example.org", "@decorator", "user@", "é@ü.de",
]
# A replacement changes what stands before the next candidate: "-----END PRIVATE KEY-----4111..."
# has no token start before the card until the key is replaced (the numeric hint wants one).
EDGES += [
    head + sep + tail
    for head in (_pii.pem(random.Random(2)), "carol@example.net", "Bearer abcdefgh12345678", "sk-" + "a1" * 12, "10.1.2.3")
    for sep in ("", "-", ".", "_", "+", "%", ":", "=")
    for tail in ("4111-1111-1111-1111", "10.0.0.7", "+14155550134", "key=abc123")
]
NOISE = st.text(alphabet=st.sampled_from(list("0123456789 .-+()%/:=@_?&;\"'\\\n\tabcxyzAKIéü\u2003\x00")), max_size=16)
TEXT = st.lists(
    st.one_of(FILLER, pii().map(lambda p: p[0]), st.sampled_from(EDGES + _pii.LOOK_ALIKES), NOISE), min_size=1, max_size=8
).flatmap(lambda parts: st.sampled_from([" ", "", "\n", "=", ":", "é", "\x00", "/"]).map(lambda sep: sep.join(parts)))

@pytest.fixture(autouse=True, scope="module")
def hint_every_batch():
    """Batches shorter than _HINT_BATCH skip the engine; here every batch goes through it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(text_engine, "_HINT_BATCH", 0)
        yield


PROPERTY = hsettings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_the_engine_runs_here():
    """On the machines the wheel exists for, the fast path is really on (not a silent fallback)."""
    supported = platform.machine() in ("x86_64", "aarch64", "AMD64", "arm64") and sys.version_info < (3, 15)
    assert FAST.engine_name == ("hyperscan" if supported else "re")
    assert SLOW.engine_name == "re"


@PROPERTY
@given(TEXT)
def test_each_family_only_changes_what_its_hint_points_at(text):
    """The superset claim of hints.py, family by family, on the text as given."""
    if "\x00" in text:
        text = text.replace("\x00", " ")
    bits = reduce(or_, FAST._load_hints().scan(text.encode("ascii", "replace")), 0)
    for name, bit in FAMILIES.items():
        if FAST._families(text, bit) != text:
            assert bits & bit, (name, text)


@PROPERTY
@given(TEXT)
def test_both_engines_give_the_same_text(text):
    assert FAST.scrub_text(text) == SLOW.scrub_text(text)


@PROPERTY
@given(st.lists(TEXT, min_size=1, max_size=12))
def test_both_engines_give_the_same_batch(texts):
    fast, slow = FAST._scrub_segments(texts), SLOW._scrub_segments(texts)
    assert (fast or texts) == (slow or texts)


@PROPERTY
@given(st.lists(TEXT, min_size=1, max_size=5), st.randoms(use_true_random=False))
def test_a_batch_that_repeats_its_strings_scrubs_each_where_it_is(texts, rnd):
    """A batch repeats values (a client's address on each span): each distinct string is scrubbed
    once and put back everywhere it was; every copy comes out as it would on its own."""
    batch = texts * 4 + [rnd.choice(texts) for _ in range(5)]
    rnd.shuffle(batch)
    for scrubber in (FAST, SLOW):
        one_by_one = [scrubber._scrub_segments([text]) or [text] for text in batch]
        assert (scrubber._scrub_segments(batch, repeats=True) or batch) == [out[0] for out in one_by_one]


LONG = st.lists(TEXT, min_size=8, max_size=40).flatmap(
    lambda lines: st.sampled_from(["\n", "\r\n", " \n"]).map(lambda end: end.join(lines * (1 + 1100 // (1 + len("".join(lines))))))
)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(LONG)
def test_both_engines_give_the_same_long_text(text):
    """Texts over _LINE_SPLIT characters are scrubbed line by line where the hints point."""
    assert len(text) >= text_engine._LINE_SPLIT or "\n" not in text
    assert FAST.scrub_text(text) == SLOW.scrub_text(text)


@pytest.mark.parametrize(
    "inside",
    [
        _pii.pem(random.Random(1)),  # a PEM block spans lines
        '{\\"password\\": \\"first line\nsecond line\\"}',  # so may an escaped-quoted JSON value
        "Authorization: Bearer abcdefgh12345678\nnext line=fine",
    ],
)
def test_long_texts_keep_what_spans_lines(inside):
    filler = "\n".join(["GET /health 200 in 3.1 ms"] * 60)
    text = filler + "\n" + inside + "\n" + filler
    assert FAST.scrub_text(text) == SLOW.scrub_text(text) != text


@pytest.mark.parametrize("text", EDGES + _pii.LOOK_ALIKES + [row[1] for row in _pii.fixture_table()])
def test_both_engines_agree_on_the_fixtures(text):
    assert FAST.scrub_text(text) == SLOW.scrub_text(text)


def test_both_engines_agree_with_extra_patterns_and_keys():
    config = {"extra_patterns": [("employee_id", r"EMP-\d{6}"), ("ticket", r"TCK-([A-Z]{3}\d+)")], "extra_keys": ["x-internal-auth"]}
    fast, slow = Scrubber(**config), Scrubber(engine="re", **config)
    assert fast.engine_name == "hyperscan"
    texts = ["EMP-123456 and TCK-ABC12", "x-internal-auth: hunter2 from 10.0.0.1", "plain text", "EMP-1234567"]
    assert fast._scrub_segments(texts) == slow._scrub_segments(texts)
    assert [fast.scrub_text(t) for t in texts] == [slow.scrub_text(t) for t in texts]
    assert fast.scrub_text(texts[1]) == "x-internal-auth: [REDACTED:x_internal_auth] from [REDACTED:ipv4]"


def test_a_non_ascii_extra_key_keeps_re_alone():
    """The scan sees "?" for non-ASCII characters, so such a name could be missed: re alone."""
    scrubber = Scrubber(extra_keys=["ключ"])
    assert scrubber.engine_name == "re"
    assert scrubber.scrub_text("ключ=abc123 from 10.1.2.3") == "ключ=[REDACTED:ключ] from [REDACTED:ipv4]"


# --- log records ---------------------------------------------------------------------------------


def _records(rnd: random.Random, n: int, lines: list[str]) -> list:
    """SDK log records as the exporter gets them, with attributes that vary like real ones."""

    def extra(i: int) -> dict:
        fields = {"request_id": f"req-{i // 3}", "otelTraceID": f"{rnd.getrandbits(128):032x}", "user": rnd.choice(["ok", "alice@example.com"])}
        if i % 7 == 0:
            fields["client"] = "203.0.113.9"
        if i % 11 == 0:
            fields["ratio"] = rnd.choice([0.5, 2.5, True, None])
        return fields

    return _pii.sdk_log_records([lines[i % len(lines)] for i in range(n)], extra)


def _exported(records) -> list:
    return [(r.log_record.body, dict(r.log_record.attributes or {})) for r in records]


def test_both_engines_give_the_same_log_records():
    rnd = random.Random(3)
    lines = [row[1] for row in _pii.fixture_table()] + _pii.LOOK_ALIKES + EDGES
    records = _records(rnd, 300, lines)
    fast, slow = FAST.scrub_logs(records), Scrubber(engine="re").scrub_logs(records)
    assert _exported(fast) == _exported(slow)
    exported = repr(_exported(fast))
    assert "alice@example.com" not in exported and "203.0.113.9" not in exported
    assert "req-1" in exported  # ids are kept


def test_the_key_by_key_walk_matches_the_map_by_map_walk():
    """parts_by_column (distinct values per key) gives what the walk of every map gives."""
    rnd = random.Random(4)
    lines = [row[1] for row in _pii.fixture_table()] + _pii.LOOK_ALIKES
    batch = _records(rnd, 120, lines)
    texts = [r.log_record.body for r in batch]
    maps = [r.log_record.attributes for r in batch]
    maps[5] = None
    maps[6] = {"mixed": 1, "shared": "mail carol@example.org"}
    maps[7] = {"shared": "mail carol@example.org", "otelSpanID": "4111111111111111"}
    by_column = parts_by_column(Scrubber(), texts, maps)
    assert by_column is not NotImplemented
    by_map = scrub_parts(Scrubber(), texts, maps)
    assert by_column[0] == by_map[0]
    assert [dict(m) if m is not None else None for m in by_column[1]] == [dict(m) if m is not None else None for m in by_map[1]]
    assert by_column[1][7]["shared"] == by_column[1][6]["shared"] == "mail [REDACTED:email]"  # a shared value, put back twice
    assert by_column[1][7]["otelSpanID"] == "4111111111111111"  # an id key: not scanned
    unchanged = [i for i, m in enumerate(maps) if m is not None and dict(by_column[1][i]) == dict(m)]
    assert unchanged and all(by_column[1][i] is maps[i] for i in unchanged)  # passed on, not copied


@pytest.mark.parametrize(
    "odd, secret",
    [
        ({"tags": ("alice@example.com",)}, "alice@example.com"),  # a sequence value
        ({"password": "hunter2"}, "hunter2"),  # a sensitive key
        ({"order": 4111111111111111}, "4111111111111111"),  # an int long enough to be a card
        ({"blob": b"\x00\x01"}, None),  # bytes (kept as they are by the walk)
    ],
)
def test_what_the_key_by_key_walk_cannot_take_goes_map_by_map(odd, secret):
    maps = [{"user": "ok"}, odd]
    assert parts_by_column(Scrubber(), ["x", "y"], maps) is NotImplemented
    done = scrub_parts(Scrubber(), ["x", "y"], maps)
    if secret is not None:
        assert secret not in repr(done[1][1])
    else:
        assert done is None or done[1][1] == odd


def test_an_int_and_an_equal_float_under_one_key_go_the_long_way():
    """{1e12, 10**12} is one set member: the walk must not miss the int behind the float."""
    maps = [{"v": float(4111111111111111)}, {"v": 4111111111111111}]
    assert parts_by_column(Scrubber(), [], maps) is NotImplemented
    assert scrub_parts(Scrubber(), [], maps)[1][1]["v"] == "[REDACTED:credit_card]"


# --- threads, failures, configuration ----------------------------------------------------------


def test_threads_scan_with_their_own_scratch_space():
    """The engine releases the GIL while it scans: shared scratch space would corrupt results."""
    rnd = random.Random(9)
    texts = [" ".join(rnd.choice(EDGES + [row[1] for row in _pii.fixture_table()]) for _ in range(40)) for _ in range(50)]
    expected = [SLOW.scrub_text(t) for t in texts]
    scrubber = Scrubber()
    failures: list = []

    def work() -> None:
        for _ in range(20):
            for text, want in zip(texts, expected):
                got = scrubber.scrub_text(text)
                if got != want:
                    failures.append((text, got, want))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert scrubber.engine_name == "hyperscan"


def test_log_and_span_batches_in_threads_share_one_cache(capsys):
    """The exporters' threads share the clean-value cache; the key-by-key walk must not trip
    over another thread filling (and clearing) it."""
    rnd = random.Random(12)
    lines = [row[1] for row in _pii.fixture_table()] + _pii.LOOK_ALIKES
    records = _records(rnd, 600, lines)
    expected = _exported(Scrubber(engine="re").scrub_logs(records))
    scrubber = Scrubber()
    failures: list = []

    def logs() -> None:
        for _ in range(15):
            if _exported(scrubber.scrub_logs(records)) != expected:
                failures.append("logs")

    def churn() -> None:  # thousands of distinct clean values: the cache fills and is cleared
        for round_ in range(15):
            scrubber.scrub_attributes({f"k{i}": f"value {round_}-{i}" for i in range(600)})

    threads = [threading.Thread(target=logs), threading.Thread(target=logs), threading.Thread(target=churn)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert "scrubb" not in capsys.readouterr().err  # no batch fell back after an error


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_child_forked_while_the_engine_compiles_does_not_hang(monkeypatch):
    """gunicorn forks workers from a master whose export thread may be compiling the hint
    database at that moment: the child must compile its own, not wait on the parent's."""
    real = _hints.build.__wrapped__
    started = threading.Event()

    def slow_build(names, query, cache_dir=None):
        started.set()
        time.sleep(1.0)
        return real(names, query, cache_dir)

    monkeypatch.setattr(_hints, "build", slow_build)
    scrubber = Scrubber()
    compiling = threading.Thread(target=scrubber.scrub_text, args=("warm-up",))
    compiling.start()
    assert started.wait(5)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: scrub, report, leave without running the parent's test machinery
        try:
            os.write(write, scrubber.scrub_text("mail alice@example.com").encode())
        finally:
            os._exit(0)
    os.close(write)
    deadline = time.monotonic() + 10
    exited = False
    while not exited and time.monotonic() < deadline:
        exited = os.waitpid(pid, os.WNOHANG) != (0, 0)
        time.sleep(0.05)
    if not exited:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    compiling.join()
    output = os.read(read, 1000).decode()
    os.close(read)
    assert exited, "the forked child hung"
    assert output == "mail [REDACTED:email]"


def test_a_failing_engine_falls_back_to_re_with_one_warning(monkeypatch, capsys, lenient):
    scrubber = Scrubber()
    assert scrubber.engine_name == "hyperscan"

    def broken(self, raw):
        raise RuntimeError("scratch space exploded")

    monkeypatch.setattr(_hints.HintScanner, "scan", broken)
    texts = ["mail alice@example.com", "from 203.0.113.77", "plain"]
    assert [scrubber.scrub_text(t) for t in texts] == [SLOW.scrub_text(t) for t in texts]
    assert scrubber._scrub_segments(texts) == SLOW._scrub_segments(texts)
    assert scrubber.engine_name == "re"
    err = capsys.readouterr().err
    assert err.count("hint engine (hyperscan) failed") == 1 and "scratch space exploded" in err


def test_a_hint_engine_that_cannot_compile_leaves_re(monkeypatch, capsys, lenient):
    def cannot(names, query, cache_dir=None):
        raise RuntimeError("this CPU lacks SSSE3")

    monkeypatch.setattr(_hints, "build", cannot)
    scrubber = Scrubber()
    assert scrubber.scrub_text("mail alice@example.com") == "mail [REDACTED:email]"
    assert scrubber.engine_name == "re"
    assert "this CPU lacks SSSE3" in capsys.readouterr().err


def test_without_the_package_re_alone_quietly(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "hyperscan", None)  # import fails
    monkeypatch.setattr(_hints, "build", _hints.build.__wrapped__)  # past the cache
    scrubber = Scrubber()
    assert scrubber.engine_name == "re"
    assert scrubber.scrub_text("mail alice@example.com") == "mail [REDACTED:email]"
    assert "hyperscan" not in capsys.readouterr().err


def test_the_engine_is_chosen_by_environment():
    assert load_settings({}).scrub.engine == "auto"
    settings = load_settings({"AGENTWATCH_SCRUB_ENGINE": "re"})
    assert settings.scrub.engine == "re"
    assert scrub_package.scrubber_for(settings).engine_name == "re"
    assert scrub_package.scrubber_for(load_settings({})).engine_name == "hyperscan"


def test_a_full_log_batch_through_the_otlp_exporter_goes_through_the_engine(monkeypatch):
    """The exporter path end to end: a BatchLogRecordProcessor batch, the guarded OTLP/HTTP
    exporter, a real receiver; the batch is long enough for the hint engine to take it."""
    from opentelemetry._logs import LogRecord
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    from agentwatch.distro import exporters
    from agentwatch.distro.settings import reset_settings
    from otlp_receiver import OTLPReceiver

    monkeypatch.setattr(text_engine, "_HINT_BATCH", 512)  # as shipped, not this module's 0
    scanned: list[int] = []
    real_scan = _hints.HintScanner.scan
    monkeypatch.setattr(_hints.HintScanner, "scan", lambda self, raw: scanned.append(len(raw)) or real_scan(self, raw))
    rnd = random.Random(21)
    fixtures = _pii.fixture_table(rnd)
    with OTLPReceiver(protocol="http") as rx:
        for key, value in {**rx.env(), "OTEL_LOGS_EXPORTER": "otlp", "AGENTWATCH_ENDPOINT_CHECK": "false"}.items():
            monkeypatch.setenv(key, value)
        reset_settings()
        try:
            settings = load_settings()
            provider = LoggerProvider(resource=Resource.create({"service.name": "engines"}))
            for exporter in exporters.build_exporters("logs", settings, {}):
                provider.add_log_record_processor(BatchLogRecordProcessor(exporter, schedule_delay_millis=60_000))
            logger = provider.get_logger("engines")
            for i in range(400):
                body = fixtures[i % len(fixtures)][1] if i % 4 == 0 else f"GET /health 200 in {i / 10} ms"
                logger.emit(LogRecord(body=body, attributes={"agentwatch.request.id": f"{rnd.getrandbits(128):032x}", "client.address": "203.0.113.50"}))
            provider.force_flush()
            provider.shutdown()
            assert rx.wait_for(lambda r: len(r.logs()) >= 400, timeout=10)
            blob = b"".join(request.SerializeToString() for request in rx.raw("logs")).decode("utf-8", "replace")
        finally:
            reset_settings()
    assert max(scanned) > 10_000  # the 400 records' strings, joined: one scan of the whole batch
    for _, _, secret in fixtures:
        assert secret not in blob, secret
    assert "203.0.113.50" not in blob and "[REDACTED:ipv4]" in blob
