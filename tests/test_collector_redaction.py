"""The collector's redaction regexes (collector/otelcol/*.yaml) mirror the Python scrubber.

The regexes are run by Go's own regexp package (collector/tools/regexcheck, built once
per session with Debian's golang-go), exactly as otelcol-contrib runs them: the
`transform/pii_logs` OTTL statements (replace_pattern on string log bodies, OTTL string
literals unquoted like the OTTL parser does, `$$` collapsed like confmap does), the
`redaction/pii` blocked_values (masked with "****") and blocked_key_patterns. Every
fixture that agentwatch.distro.scrub redacts must be redacted by both, and every
look-alike it leaves alone must be left alone by both. The few strings the collector
redacts although the scrubber keeps them (it cannot run Luhn or read context) are listed
in STRICTER and in collector/README.md.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess

import pytest

import _pii
from _collector import COLLECTOR, otelcol_check, require_tool
from agentwatch.distro.scrub import DETECTORS, Scrubber

from _collector import SINGLE_ENV

pytestmark = SINGLE_ENV

S = Scrubber()
CONFIGS = {p.name: p for p in sorted((COLLECTOR / "otelcol").glob("*.yaml"))}
STATEMENT = re.compile(r'replace_pattern\(log\.body, ("(?:\\.|[^"\\])*"), ("(?:\\.|[^"\\])*")\) where IsString\(log\.body\)')

POSITIVES = [  # (text, the part that must disappear)
    ("mail from alice.martin+tag@mail.example.co.uk, thanks", "alice.martin+tag@mail.example.co.uk"),
    ("GET /users?email=alice%40example.com&x=1", "alice%40example.com"),
    ('{"user": "alice\\u0040example.com"}', "alice\\u0040example.com"),
    ("call +14155552671 today", "4155552671"),
    ("call +1 (415) 555-2671 today", "555-2671"),
    ("call 415-555-2671 today", "555-2671"),
    ("call 415.555.2671 today", "555.2671"),
    ("call 1-415-555-2671 today", "555-2671"),
    ("call 020 7946 0958 today", "7946 0958"),
    ("call 07700 900123 today", "900123"),
    ("call +49 30 1234567 today", "1234567"),
    ("call +33 6 12 34 56 78 today", "34 56 78"),
    ("GET /callback?to=%2B14155552671", "4155552671"),
    ("on file: 234 56 7890.", "234 56 7890"),
    ("ssn: 555-12-3456.", "555-12-3456"),
    ("client 10.1.2.3:53422 connected", "10.1.2.3"),
    ("ip=192.168.0.10.", "192.168.0.10"),
    ("client 2001:db8::1 connected", "2001:db8::1"),
    ("url http://[fe80::1ff:fe23:4567:890a]:8080/x", "fe80::1ff:fe23:4567:890a"),
    ("client ::ffff:192.0.2.1 connected", "192.0.2.1"),
    ("client 2001:0db8:85a3:0000:0000:8a2e:0370:7334 connected", "8a2e:0370:7334"),
    ("from 2001:db8::1.", "2001:db8::1"),
    ("password=hunter2", "hunter2"),
    ("login failed: password: hunter2 for bob", "hunter2"),
    ('{"password": "correct horse battery"}', "horse battery"),
    ("DB_PASSWORD = s3cr3t", "s3cr3t"),
    ("userPassword=abc", "abc"),
    ("secret_key=abc&x=1", "abc&"),
    ("client_secret=abc", "abc"),
    ("x-goog-api-key: AIzaXXXX", "AIzaXXXX"),
    ("Cookie: session=abc; theme=dark", "theme=dark"),
    ("Set-Cookie: id=abc; Path=/; HttpOnly", "id=abc"),
    ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ("access_token=abc.def", "abc.def"),
    ("session_id=9f8e7d", "9f8e7d"),
    ("https://api.example.com/v1?key=abc123&alt=json", "abc123"),
    ("/cb?code=4%2F0AX&state=xyz", "4%2F0AX"),
    ("/x?a=1&token=t0k3n#frag", "t0k3n"),
    ("/s3/obj?X-Amz-Signature=abcdef&X-Amz-Credential=AKIDX", "abcdef"),
    ("key=abc&page=2", "abc&"),
    ("redis://:s3cret@cache:6379/0", "s3cret"),
    ("https://user:pa55@host/x", "pa55"),
    ("sent bearer abcdEFGH1234ijkl upstream", "abcdEFGH1234ijkl"),
] + [(text, secret) for _kind, text, secret in _pii.fixture_table(random.Random(5))]
for _brand in ("visa", "mastercard", "amex"):
    _number = _pii.card(random.Random(_brand), _brand)
    POSITIVES.append((f"card {_number} charged", _number))
    if _brand == "amex":
        POSITIVES.append((f"card {_number[:4]} {_number[4:10]} {_number[10:]} charged", _number[4:10]))
    else:
        POSITIVES.append((f"card {'-'.join([_number[:4], _number[4:8], _number[8:12], _number[12:]])} charged", _number[4:12]))

# The collector redacts these, the scrubber keeps them: no Luhn check and no context in RE2.
STRICTER = [
    "order 4111111111111112",  # brand prefix, Luhn fails: an order number to the scrubber
    "span_id=4111111111111111",  # an all-digit id after span_id=
    "version 1.2.3.4",  # a four-part version string
]

SENSITIVE_KEYS = [
    "password", "db.password", "user_password", "http.request.header.authorization",
    "http.request.header.x-goog-api-key", "api_key", "client.secret", "http.request.header.cookie",
    "session", "auth", "aws.access_key", "accessToken", "csrf_token", "jwt", "private_key",
]
SAFE_KEYS = [
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.token.type", "http.route",
    "llm.token_count.prompt", "trace_id", "span_id", "gen_ai.request.model", "url.path",
    "agentwatch.intent.name", "author", "http.response.status_code", "session.duration",
]


@pytest.fixture(scope="session")
def regexcheck(tmp_path_factory):
    """The Go checker, compiled once per session."""
    go = require_tool("go")
    out = tmp_path_factory.mktemp("regexcheck")
    env = {**os.environ, "GO111MODULE": "off", "GOCACHE": str(out / "cache"), "GOPATH": str(out / "gopath"), "CGO_ENABLED": "0"}
    binary = out / "regexcheck"
    subprocess.run([go, "build", "-o", str(binary), "main.go"], cwd=COLLECTOR / "tools" / "regexcheck", env=env, check=True, timeout=120)

    def run(sets: dict, inputs: list[str]) -> dict:
        proc = subprocess.run([str(binary)], input=json.dumps({"sets": sets, "inputs": inputs}), capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    return run


def _rules(config_name: str) -> dict:
    config = otelcol_check.load_resolved(CONFIGS[config_name])  # $$ collapsed, like confmap
    redaction = config["processors"]["redaction/pii"]
    transform = []
    for index, statement in enumerate(config["processors"]["transform/pii_logs"]["log_statements"]):
        match = STATEMENT.fullmatch(statement)
        assert match, f"unexpected OTTL statement shape: {statement}"
        transform.append({"id": str(index), "regex": match[1], "replacement": match[2], "mode": "replace", "ottl": True})
    return {
        "transform": transform,
        "mask": [{"id": str(i), "regex": r, "mode": "mask"} for i, r in enumerate(redaction["blocked_values"])],
        "keys": [{"id": str(i), "regex": r, "mode": "match"} for i, r in enumerate(redaction["blocked_key_patterns"])],
        "ignored": [{"id": str(i), "regex": r, "mode": "match"} for i, r in enumerate(redaction["ignored_key_patterns"])],
    }


def _leaks(text: str, secret: str, output: str) -> bool:
    """The secret, or a 4+ character run of it that the rest of the text does not have, is in the output."""
    rest = text.replace(secret, " ")
    parts = [part for part in re.findall(r"[A-Za-z0-9]{4,}", secret) if part not in rest]
    return secret in output or any(part in output for part in parts)


def _kind(text: str) -> set[str]:
    return set(re.findall(r"\[REDACTED:([a-z0-9_]+)\]", text))


def test_agent_and_gateway_redact_identically():
    agent, gateway = (otelcol_check.load_resolved(CONFIGS[n])["processors"] for n in ("agent.yaml", "gateway.yaml"))
    assert agent["redaction/pii"] == gateway["redaction/pii"]
    assert agent["transform/pii_logs"] == gateway["transform/pii_logs"]


def test_go_rejects_what_re2_cannot_do(regexcheck):
    """Proves the checker really is Go's regexp: lookbehind and backreferences fail."""
    out = regexcheck({"s": [{"id": "lookbehind", "regex": r"(?<!\d)\d{3}", "mode": "mask"}, {"id": "backref", "regex": r"(\w)\1", "mode": "mask"}]}, ["x"])
    assert set(out["errors"]) == {"s/lookbehind", "s/backref"}


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_every_regex_compiles_under_go(regexcheck, config_name):
    out = regexcheck(_rules(config_name), ["x"])
    assert out["errors"] == {}


def test_fixtures_are_redacted_by_scrubber_and_collector(regexcheck):
    texts = [text for text, _ in POSITIVES]
    out = regexcheck(_rules("gateway.yaml"), texts)
    failures = []
    for index, (text, secret) in enumerate(POSITIVES):
        python = S.scrub_text(text)
        transformed = out["results"]["transform"][index]
        masked = out["results"]["mask"][index]
        if _leaks(text, secret, python) or not _kind(python):
            failures.append(("python", text, python))
        if _leaks(text, secret, transformed) or not _kind(transformed):
            failures.append(("transform", text, transformed))
        if _leaks(text, secret, masked) or "****" not in masked:
            failures.append(("redaction", text, masked))
        # Same kind of mark, except where the collector redacted the whole `name: value`
        # around it (Authorization: Bearer ... -> the value of Authorization).
        expected = {k for k in _kind(python) if k in DETECTORS and k != "sensitive_keys"}
        if expected and not expected <= _kind(transformed) and "sensitive_params" not in _kind(transformed):
            failures.append(("kind", text, f"python {sorted(_kind(python))} collector {sorted(_kind(transformed))}"))
    assert failures == []


def test_look_alikes_are_left_alone_by_both(regexcheck):
    out = regexcheck(_rules("gateway.yaml"), _pii.LOOK_ALIKES)
    failures = []
    for index, text in enumerate(_pii.LOOK_ALIKES):
        for name, got in (("python", S.scrub_text(text)), ("transform", out["results"]["transform"][index]), ("redaction", out["results"]["mask"][index])):
            if got != text:
                failures.append((name, text, got))
    assert failures == []


def test_documented_stricter_cases_are_still_stricter(regexcheck):
    out = regexcheck(_rules("gateway.yaml"), STRICTER)
    for index, text in enumerate(STRICTER):
        assert S.scrub_text(text) == text
        assert out["results"]["transform"][index] != text and out["results"]["mask"][index] != text
        assert text in (COLLECTOR / "README.md").read_text(), f"{text!r} is not listed in collector/README.md"


def test_sensitive_keys_match_the_scrubber(regexcheck):
    keys = SENSITIVE_KEYS + SAFE_KEYS
    out = regexcheck(_rules("gateway.yaml"), keys)
    blocked = dict(zip(keys, out["results"]["keys"]))
    ignored = dict(zip(keys, out["results"]["ignored"]))
    for key in keys:
        python_redacts = S.scrub_attributes({key: "plain-value"}) != {key: "plain-value"}
        collector_masks = blocked[key] == "true" and ignored[key] == "false"
        assert python_redacts == (key in SENSITIVE_KEYS), key
        assert collector_masks == python_redacts, key
