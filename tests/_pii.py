"""Fake PII and secrets for the scrubber tests and benchmark (a test helper, not a test file).

Secret-looking values are assembled at run time (``"sk" + "_live_"``...) so this
repository holds no string that a secret scanner would flag; none of them is real.
"""

from __future__ import annotations

import base64
import json
import random
import string

ALNUM = string.ascii_letters + string.digits


def body(rnd: random.Random, n: int, alphabet: str = ALNUM) -> str:
    """``n`` random characters with at least one upper, lower and digit (like real keys)."""
    while True:
        out = "".join(rnd.choice(alphabet) for _ in range(n))
        if alphabet != ALNUM or (
            any(c.isupper() for c in out) and any(c.islower() for c in out) and any(c.isdigit() for c in out)
        ):
            return out


def luhn_complete(prefix_and_body: str) -> str:
    """Append the Luhn check digit."""
    for check in "0123456789":
        candidate = prefix_and_body + check
        total = 0
        for index, char in enumerate(reversed(candidate)):
            value = int(char)
            if index & 1:
                value *= 2
                if value > 9:
                    value -= 9
            total += value
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


def card(rnd: random.Random, brand: str = "visa") -> str:
    prefix, length = {"visa": ("4", 16), "mastercard": ("5" + rnd.choice("12345"), 16), "amex": ("3" + rnd.choice("47"), 15)}[brand]
    return luhn_complete(prefix + "".join(rnd.choice(string.digits) for _ in range(length - len(prefix) - 1)))


def jwt(rnd: random.Random) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    signature = base64.urlsafe_b64encode(rnd.randbytes(32)).rstrip(b"=").decode()
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': body(rnd, 10), 'iat': 1795430731})}.{signature}"


def pem(rnd: random.Random) -> str:
    lines = [base64.b64encode(rnd.randbytes(48)).decode() for _ in range(4)]
    kind = "PRIVATE KEY"
    return "-----BEGIN " + kind + "-----\n" + "\n".join(lines) + "\n-----END " + kind + "-----"


def secrets(rnd: random.Random) -> dict[str, str]:
    """One value per kind: ``{kind: value}``, where ``value`` must not survive scrubbing."""
    return {
        "google_api_key": "AI" + "za" + body(rnd, 35, ALNUM + "_-"),
        "openai_api_key": "sk-" + "proj-" + body(rnd, 48),
        "anthropic_api_key": "sk-" + "ant-api03-" + body(rnd, 60),
        "aws_access_key_id": "AK" + "IA" + "".join(rnd.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
        "github_token": "gh" + "p_" + body(rnd, 36),
        "slack_token": "xo" + "xb-" + "".join(rnd.choice(string.digits) for _ in range(12)) + "-" + body(rnd, 24),
        "stripe_key": "sk" + "_live_" + body(rnd, 24),
        "jwt": jwt(rnd),
        "private_key": pem(rnd),
    }


def fixture_table(rnd: random.Random | None = None) -> list[tuple[str, str, str]]:
    """``(kind, text containing it, the secret part)`` for each PII kind, as a benchmark/test fixture."""
    rnd = rnd or random.Random(5)
    keys = secrets(rnd)
    bearer = body(rnd, 32)
    number = card(rnd)
    spaced = " ".join(number[i : i + 4] for i in range(0, 16, 4))
    rows = [
        ("email", "contact alice.martin@example.com about it", "alice.martin@example.com"),
        ("phone (E.164)", "call +44 20 7946 0958 tomorrow", "7946 0958"),
        ("phone (US)", "call (415) 555-2671 tomorrow", "555-2671"),
        ("ssn", "ssn 123-45-6789 on file", "123-45-6789"),
        ("credit_card", "paid with " + spaced, spaced),
        ("ipv4", "login from 203.0.113.77", "203.0.113.77"),
        ("ipv6", "login from 2001:db8:85a3::8a2e:370:7334", "2001:db8:85a3::8a2e:370:7334"),
        ("password in text", "connecting with password=hunter2xyz", "hunter2xyz"),
        ("api key in URL", "GET /v1/models?key=" + keys["google_api_key"] + "&alt=json", keys["google_api_key"]),
        ("bearer header", "Authorization: Bearer " + bearer, bearer),
        ("url credentials", "postgres://app:s3cretPw@db.internal:5432/app", "s3cretPw"),
    ]
    rows += [(kind, f"value {value} here", value) for kind, value in keys.items()]
    return rows


# Strings that look like PII or secrets but are none: the Python scrubber and the collector's
# redaction rules (tests/test_collector_redaction.py) must both leave every one of them alone.
LOOK_ALIKES = [
    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7",
    "trace 41234567890123456789abcdefabcdef",
    "request 123e4567-e89b-12d3-a456-426614174000 done",
    "id 12345678-1234-1234-1234-123456789012",
    "at 2026-11-23T12:00:00Z and 2026-11-23 12:00:00,123 and 23/11/2026 12:30:45",
    "ts=1795430731885885062 ms=1795430731885 us=1795430731885885",
    "total $1,234.56 (EUR 19.99), 42 items, 3.14159, -12.5",
    "order 1234567890123456",
    "loopback 127.0.0.1:8000 and 0.0.0.0 and ::1 and [::]:80",
    "times 12:30:45 and 00:1A:2B:3C:4D:5E",
    "gen_ai.usage.input_tokens=812 output_tokens: 95 max_tokens=1024 token: 42",
    "the author=John and oauth=1 and monkey=3",
    "HTTP/1.1 200 OK in 12.3 ms, 0.93 confidence",
    "git sha 3f1e2d4c5b6a79880123456789abcdef01234567",
    "task-learn-tutorial-for-beginners and sk-learn-tutorial-for-beginners",
    "std::vector<int> and a::b",
    "Bearer authentication is required",
    "ref 000-12-3456 666-12-3456 923-45-6789 123-00-6789 123-45-0000",
    "version v2.0.1 and python 3.11.7",
    "dates 05/11/2026 05.11.2026 05-11-2026",
    "my password is hunter2",
    "http://host:8080/path@v2",
    "POST /chat 200 in 0.412 s (intent=billing, confidence=0.91, docs=3)",
]


def sdk_log_records(lines: list[str], extra=None) -> list:
    """The SDK log records the logging handler makes of ``lines``, as an exporter receives them
    (body, ``code.*`` attributes); ``extra(index)``, if given, is the ``extra=`` of each line."""
    import logging

    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "agent"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = logging.getLogger("agentwatch.pii.records")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:
        for index, line in enumerate(lines):
            logger.info(line, extra=extra(index) if extra is not None else None)
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    return list(memory.get_finished_logs())
