"""The scrubber itself: every detector with positives and look-alikes, key names, configuration, faults.

Where the scrubber is applied (every exporter) is tested in ``test_scrubbing_paths.py``.
"""

from __future__ import annotations

import ipaddress
import random
import string

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

import _pii
from agentwatch.distro import scrub as scrub_package
from agentwatch.distro.scrub import DETECTORS, Scrubber, is_card_number, key_words
from agentwatch.distro.scrub import values as scrub_values
from agentwatch.distro.scrub import text as text_engine
from agentwatch.distro.settings import load_settings

ENGINES = {"hyperscan": Scrubber(), "re": Scrubber(engine="re")}
assert ENGINES["hyperscan"].engine_name == "hyperscan", "the hint engine does not run here: pip install hyperscan"
S = ENGINES["hyperscan"]
RND = random.Random(11)
KEYS = _pii.secrets(RND)


@pytest.fixture(autouse=True, params=sorted(ENGINES))
def engine(request, monkeypatch) -> str:
    """Every test runs with both engines: the hint pass (default) and Python's re alone.

    ``S`` is that engine's scrubber, and a ``Scrubber()`` built by the test uses it too.
    """
    monkeypatch.setattr(__import__(__name__), "S", ENGINES[request.param])
    if request.param == "re":
        monkeypatch.setattr(scrub_package.Scrubber, "__init__", _re_only(scrub_package.Scrubber.__init__))
    return request.param


def _re_only(init):
    def __init__(self, *args, **kwargs):
        kwargs["engine"] = "re"
        init(self, *args, **kwargs)

    return __init__


def scrub(text: str, scrubber: Scrubber | None = None) -> str:
    return (scrubber or S).scrub_text(text)


def assert_redacted(text: str, secret: str, kind: str, scrubber: Scrubber | None = None) -> str:
    out = scrub(text, scrubber)
    assert secret not in out, (text, out)
    assert f"[REDACTED:{kind}]" in out, (text, out)
    return out


def assert_kept(text: str, scrubber: Scrubber | None = None) -> None:
    assert scrub(text, scrubber) == text


# --- detectors: positives -------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    [
        "alice@example.com",
        "alice.martin+tag@mail.example.co.uk",
        "john_doe@example.org",
        "a@b.io",
        "Alice.O-Neil@Example.COM",
    ],
)
def test_email(email):
    out = assert_redacted(f"mail from {email}, thanks", email, "email")
    assert out == "mail from [REDACTED:email], thanks"


@pytest.mark.parametrize("tail", ["-4111-1111-1111-1111", "-x", "-"])
def test_email_followed_by_a_dash(tail):
    assert scrub("mail alice@example.com" + tail) == "mail [REDACTED:email]" + tail
    assert scrub("x@example.co-op.org ok") == "[REDACTED:email] ok"  # a dash inside the domain


def test_email_url_encoded_and_json_escaped():
    assert_redacted("GET /users?email=alice%40example.com&x=1", "alice%40example.com", "email")
    assert_redacted('{"user": "alice\\u0040example.com"}', "alice\\u0040example.com", "email")


@pytest.mark.parametrize(
    "phone",
    [
        "+14155552671",
        "+1 415 555 2671",
        "+1 (415) 555-2671",
        "+44 20 7946 0958",
        "+49 30 1234567",
        "+33 6 12 34 56 78",
        "(415) 555-2671",
        "415-555-2671",
        "415.555.2671",
        "1-415-555-2671",
        "020 7946 0958",
        "07700 900123",
        "030 1234567",
    ],
)
def test_phone(phone):
    out = assert_redacted(f"call {phone} today", phone, "phone")
    assert out == "call [REDACTED:phone] today"


def test_phone_url_encoded_plus():
    assert_redacted("GET /callback?to=%2B14155552671", "14155552671", "phone")


@pytest.mark.parametrize("ssn", ["123-45-6789", "234 56 7890", "555-12-3456"])
def test_ssn(ssn):
    assert_redacted(f"ssn: {ssn}.", ssn, "ssn")


@pytest.mark.parametrize("invalid", ["000-12-3456", "666-12-3456", "923-45-6789", "123-00-6789", "123-45-0000"])
def test_ssn_invalid_areas_are_not_ssns(invalid):
    assert_kept(f"ref {invalid}")


@pytest.mark.parametrize("brand", ["visa", "mastercard", "amex"])
def test_card_numbers_in_every_layout(brand):
    number = _pii.card(random.Random(brand), brand)
    layouts = [number, "-".join([number[:4], number[4:8], number[8:12], number[12:]])]
    if brand == "amex":
        layouts = [number, f"{number[:4]} {number[4:10]} {number[10:]}", f"{number[:4]}-{number[4:10]}-{number[10:]}"]
    else:
        layouts.append(" ".join([number[:4], number[4:8], number[8:12], number[12:]]))
    for layout in layouts:
        assert_redacted(f"card {layout} charged", layout, "credit_card")


def test_card_number_as_int_attribute_value():
    number = int(_pii.card(random.Random(3)))
    assert S.scrub_attributes({"payment.card": number}) == {"payment.card": "[REDACTED:credit_card]"}
    assert S.scrub_attributes({"order.id": 1234567890123456}) == {"order.id": 1234567890123456}


def test_luhn_and_brand():
    assert is_card_number("4111111111111111")
    assert not is_card_number("4111111111111112")  # Luhn fails: an order number
    assert not is_card_number("1795430731885885062")  # epoch nanoseconds: no card brand starts with 1
    assert not is_card_number("9111111111111111")


@pytest.mark.parametrize("ip", ["203.0.113.77", "10.1.2.3", "192.168.0.10", "8.8.8.8"])
def test_ipv4(ip):
    assert_redacted(f"client {ip}:53422 connected", ip, "ipv4")
    assert_redacted(f"ip={ip}.", ip, "ipv4")


@pytest.mark.parametrize(
    "ip",
    ["2001:db8::1", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "fe80::1ff:fe23:4567:890a", "::ffff:192.0.2.1", "2001:db8::"],
)
def test_ipv6(ip):
    assert_redacted(f"client {ip} connected", ip, "ipv6")
    assert_redacted(f"url http://[{ip}]:8080/x", ip, "ipv6")


def test_ipv6_at_sentence_end():
    assert scrub("from 2001:db8::1.") == "from [REDACTED:ipv6]."


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_vendor_keys(kind):
    value = KEYS[kind]
    out = assert_redacted(f"using {value} now", value, kind)
    assert out == f"using [REDACTED:{kind}] now"


def test_vendor_keys_inside_urls_json_and_headers():
    google = KEYS["google_api_key"]
    assert scrub(f"https://x.googleapis.com/v1/models?key={google}&alt=json") == (
        "https://x.googleapis.com/v1/models?key=[REDACTED:google_api_key]&alt=json"
    )
    openai = KEYS["openai_api_key"]
    assert_redacted(f'{{"api": "{openai}"}}', openai, "openai_api_key")


def test_aws_secret_access_key_by_name():
    secret = _pii.body(RND, 40, _pii.ALNUM + "/+")
    assert_redacted(f"aws_secret_access_key={secret}", secret, "access_key")


def test_bearer_tokens():
    token = _pii.body(RND, 40, _pii.ALNUM + "._-")
    assert scrub(f"Authorization: Bearer {token}") in (
        "Authorization: Bearer [REDACTED:bearer_token]",
        "Authorization: [REDACTED:authorization]",
    )
    assert scrub(f"sent bearer {token} upstream") == "sent bearer [REDACTED:bearer_token] upstream"
    assert_kept("Bearer authentication is required")  # an English word, not a token


def test_pem_private_key_whole_block():
    key = KEYS["private_key"]
    out = scrub(f"loaded key:\n{key}\nand started")
    assert out == "loaded key:\n[REDACTED:private_key]\nand started"
    truncated = key.rsplit("-----END", 1)[0]  # cut off: everything after BEGIN goes
    assert scrub(f"key {truncated}") == "key [REDACTED:private_key]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password=hunter2", "password=[REDACTED:password]"),
        ("login failed: password: hunter2 for bob", "login failed: password: [REDACTED:password] for bob"),
        ('{"password": "correct horse battery"}', '{"password": "[REDACTED:password]"}'),
        ("{'api_key': 'abc def'}", "{'api_key': '[REDACTED:api_key]'}"),
        ('"{\\"secret\\": \\"s3 cr3t\\"}"', '"{\\"secret\\": \\"[REDACTED:secret]\\"}"'),
        ("DB_PASSWORD = s3cr3t", "DB_PASSWORD = [REDACTED:password]"),
        ("userPassword=abc", "userPassword=[REDACTED:password]"),
        ("secret_key=abc&x=1", "secret_key=[REDACTED:secret_key]&x=1"),
        ("client_secret=abc", "client_secret=[REDACTED:secret]"),
        ("x-goog-api-key: AIzaXXXX", "x-goog-api-key: [REDACTED:api_key]"),
        ("Cookie: session=abc; theme=dark\nnext", "Cookie: [REDACTED:cookie]\nnext"),
        ("Set-Cookie: id=abc; Path=/; HttpOnly", "Set-Cookie: [REDACTED:cookie]"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: [REDACTED:authorization]"),
        ("access_token=abc.def", "access_token=[REDACTED:token]"),
        ("session_id=9f8e7d", "session_id=[REDACTED:session_id]"),
    ],
)
def test_sensitive_names_in_text(text, expected):
    assert scrub(text) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.example.com/v1?key=abc123&alt=json", "https://api.example.com/v1?key=[REDACTED:key]&alt=json"),
        ("/cb?code=4%2F0AX&state=xyz", "/cb?code=[REDACTED:code]&state=xyz"),
        ("/x?a=1&token=t0k3n#frag", "/x?a=1&token=[REDACTED:token]#frag"),
        ("/s3/obj?X-Amz-Signature=abcdef&X-Amz-Credential=AKIDX", "/s3/obj?X-Amz-Signature=[REDACTED:signature]&X-Amz-Credential=[REDACTED:credential]"),
        ("key=abc&page=2", "key=[REDACTED:key]&page=2"),  # url.query: no leading '?'
    ],
)
def test_secrets_in_url_query_strings(url, expected):
    assert scrub(url) == expected


def test_url_credentials():
    assert scrub("redis://:s3cret@cache:6379/0") == "redis://[REDACTED:url_credentials]@cache:6379/0"
    assert scrub("https://user:pa55@host/x") == "https://[REDACTED:url_credentials]@host/x"
    assert_kept("http://host:8080/path@v2")


# --- look-alikes stay ------------------------------------------------------------------------


# Kept by the scrubber, redacted by the collector (it has no Luhn check and no context; its
# STRICTER list): so not in _pii.LOOK_ALIKES.
SCRUBBER_ONLY_LOOK_ALIKES = [
    "span_id=4111111111111111",
    "order 4111111111111112 and 1234567890123456 and ORD-4111111111111111",
    "version 1.2.3.4 and v2.0.1 and python 3.11.7",
]


@pytest.mark.parametrize("text", _pii.LOOK_ALIKES + SCRUBBER_ONLY_LOOK_ALIKES)
def test_look_alikes_are_kept(text):
    assert_kept(text)


def test_stacktrace_paths_and_line_numbers_survive():
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/agent/planner.py", line 142, in plan\n'
        "    result = self.llm.generate(prompt)\n"
        '  File "/usr/lib/python3.11/site-packages/httpx/_client.py", line 1014, in send\n'
        "    raise exc\n"
        "ValueError: user bob@example.com hit limit 3.5.1\n"
    )
    out = scrub(trace)
    assert out == trace.replace("bob@example.com", "[REDACTED:email]")


def test_scrubbing_is_idempotent():
    text = " ".join(t for _, t, _ in _pii.fixture_table())
    once = scrub(text)
    assert scrub(once) == once


# --- keys --------------------------------------------------------------------------------------


def test_key_words():
    assert key_words("http.request.header.x-goog-api-key") == ("http", "request", "header", "x", "goog", "api", "key")
    assert key_words("accessToken") == ("access", "token")
    assert key_words("APIKey") == ("api", "key")


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "db.password",
        "DB_PASSWORD",
        "http.request.header.authorization",
        "http.request.header.x-goog-api-key",
        "http.request.header.cookie",
        "http.response.header.set-cookie",
        "apiKey",
        "x-api-key",
        "client_secret",
        "accessToken",
        "csrftoken",
        "refresh_token",
        "session.id",
        "aws.credentials",
        "private_key",
        "user.passphrase",
    ],
)
def test_sensitive_keys(key):
    out = S.scrub_attributes({key: "v4lue-of-secret", "other": "fine"})
    assert out[key].startswith("[REDACTED:") and out["other"] == "fine", out


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("gen_ai.usage.input_tokens", 812),
        ("gen_ai.usage.output_tokens", 95),
        ("gen_ai.request.max_tokens", 1024),
        ("gen_ai.token.type", "input"),
        ("llm.token_count.prompt", 12),
        ("tokens", 5),
        ("token", 7),  # a number under a weak name is a count
        ("session.duration", 12.5),
        ("author", "John"),
        ("tokenizer", "gemma"),
        ("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"),
        ("otelSpanID", "00f067aa0ba902b7"),
        ("has_password", True),
    ],
)
def test_not_sensitive_keys(key, value):
    assert S.scrub_attributes({key: value}) == {key: value}


def test_sensitive_values_keep_their_shape():
    out = S.scrub_attributes(
        {
            "http.request.header.authorization": ("Bearer abc", "Basic def"),
            "password": 1234,
            "api_key": "",
            "cookie": None,
        }
    )
    assert out == {
        "http.request.header.authorization": ("[REDACTED:authorization]", "[REDACTED:authorization]"),
        "password": "[REDACTED:password]",
        "api_key": "",
        "cookie": None,
    }


def test_nested_dicts_and_lists():
    body = {
        "user": {"email": "alice@example.com", "password": "x", "tokens": 12},
        "items": [{"card": "4111 1111 1111 1111"}, "call +1 415 555 2671", 3],
        "headers": {"Authorization": "Bearer abcdefgh12345678", "Accept": "application/json"},
        "credentials": {"user": "bob", "pass": "y"},
    }
    out = S.scrub_value(body)
    assert out == {
        "user": {"email": "[REDACTED:email]", "password": "[REDACTED:password]", "tokens": 12},
        "items": [{"card": "[REDACTED:credit_card]"}, "call [REDACTED:phone]", 3],
        "headers": {"Authorization": "[REDACTED:authorization]", "Accept": "application/json"},
        "credentials": "[REDACTED:credentials]",
    }
    assert body["user"]["password"] == "x"  # the input is never modified


def test_clean_attributes_are_returned_as_is():
    attributes = {"http.route": "/chat", "http.response.status_code": 200, "gen_ai.usage.input_tokens": 812}
    assert S.scrub_attributes(attributes) is attributes


def test_values_with_nul_characters():
    out = S.scrub_attributes({"a": "x\x00alice@example.com", "b": "ok"})
    assert out == {"a": "x\x00[REDACTED:email]", "b": "ok"}


# --- configuration -----------------------------------------------------------------------------


def test_disabled_detectors_and_aliases():
    scrubber = Scrubber(disabled=["email", "ip"])
    assert_kept("alice@example.com from 203.0.113.7 and 2001:db8::1", scrubber)
    assert_redacted("ssn 123-45-6789", "123-45-6789", "ssn", scrubber)
    no_keys = Scrubber(disabled=["sensitive_keys"])
    assert no_keys.scrub_attributes({"password": "x"}) == {"password": "x"}
    no_params = Scrubber(disabled=["sensitive_params"])
    assert_kept("password=hunter2", no_params)
    only_google = Scrubber(disabled=[d for d in DETECTORS if d != "google_api_key"])
    assert_redacted(KEYS["google_api_key"], KEYS["google_api_key"], "google_api_key", only_google)
    assert_kept(KEYS["openai_api_key"] + " alice@example.com password=x", only_google)


def test_extra_patterns_and_keys():
    scrubber = Scrubber(
        extra_patterns=[("employee_id", r"EMP-\d{6}"), ("ticket", r"ticket #(\d+)")], extra_keys=["badge", "employee-number"]
    )
    assert scrub("by EMP-123456 on ticket #4521", scrubber) == "by [REDACTED:employee_id] on ticket #[REDACTED:ticket]"
    assert scrubber.scrub_attributes({"user.badge": "B-17", "hr.employeeNumber": 42, "hr.team": "ops"}) == {
        "user.badge": "[REDACTED:badge]",
        "hr.employeeNumber": "[REDACTED:employee_number]",
        "hr.team": "ops",
    }
    assert scrub("badge=B-17 ok", scrubber) == "badge=[REDACTED:badge] ok"


def test_settings_from_environment(capsys):
    settings = load_settings(
        {
            "AGENTWATCH_SCRUB": "true",
            "AGENTWATCH_SCRUB_DISABLED_DETECTORS": "phone, IP",
            "AGENTWATCH_SCRUB_EXTRA_PATTERNS": r"employee_id=EMP-\d{6};;TCK-[0-9]+",
            "AGENTWATCH_SCRUB_EXTRA_KEYS": "badge, x-internal-auth",
        }
    )
    assert settings.scrub.enabled and settings.scrub.disabled_detectors == ("phone", "ip")
    assert settings.scrub.extra_patterns == (("employee_id", r"EMP-\d{6}"), ("custom", "TCK-[0-9]+"))
    assert settings.scrub.extra_keys == ("badge", "x-internal-auth")
    scrubber = scrub_package.scrubber_for(settings)
    assert scrubber.scrub_text("EMP-123456 TCK-9 +1 415 555 2671") == "[REDACTED:employee_id] [REDACTED:custom] +1 415 555 2671"
    assert scrub_package.scrubber_for(load_settings({"AGENTWATCH_SCRUB": "false"})) is None
    assert "AGENTWATCH" not in capsys.readouterr().err


def test_bad_configuration_warns_once_and_keeps_the_rest(capsys):
    settings = load_settings(
        {
            "AGENTWATCH_SCRUB": "maybe",
            "AGENTWATCH_SCRUB_DISABLED_DETECTORS": "email,fax",
            "AGENTWATCH_SCRUB_EXTRA_PATTERNS": "good=G-\\d+;;bad=(unclosed;;empty=x*",
        }
    )
    err = capsys.readouterr().err
    assert settings.scrub.enabled is True
    assert "AGENTWATCH_SCRUB='maybe' is not a boolean (true/false); using True instead" in err
    assert settings.scrub.disabled_detectors == ("email",)
    assert "AGENTWATCH_SCRUB_DISABLED_DETECTORS='email,fax'" in err and "unknown: fax" in err and "using 'email'" in err
    assert settings.scrub.extra_patterns == (("good", "G-\\d+"),)
    line = next(x for x in err.splitlines() if "AGENTWATCH_SCRUB_EXTRA_PATTERNS" in x)
    assert "bad=(unclosed" in line and "does not compile" in line and "matches the empty string" in line
    assert "using 'good=G-\\\\d+' instead" in line


# --- never raises ------------------------------------------------------------------------------


class _Explodes:
    def __str__(self) -> str:
        raise RuntimeError("boom")


def test_failures_never_raise_and_never_leak(capsys, lenient):
    deep: dict = {"password": "x"}
    for _ in range(200):
        deep = {"nested": deep}

    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry._logs import LogRecord
    from opentelemetry.sdk.resources import Resource

    record = ReadableLogRecord(
        LogRecord(body=deep, attributes={"weird": "alice@example.com"}), Resource({"service.name": "x"})
    )
    out = S.scrub_logs([record])
    assert len(out) == 1
    assert out[0].log_record.body == "[REDACTED:error]"
    assert out[0].log_record.attributes == {"weird": "[REDACTED:email]"}
    assert S.scrub_value(_Explodes) is not None  # a class: str() works
    with pytest.raises(RuntimeError):
        S.scrub_value(_Explodes())  # the raw API raises; the batch API below does not
    assert scrub_values.attributes_safely(S, {"obj": _Explodes(), "ok": "alice@example.com"}) == {
        "obj": "[REDACTED:error]",
        "ok": "[REDACTED:email]",
    }
    assert "scrubbing a log" in capsys.readouterr().err


def test_module_level_scrub_text():
    assert scrub_package.scrub_text("mail alice@example.com") == "mail [REDACTED:email]"


# --- properties ----------------------------------------------------------------------------------

WORDS = st.sampled_from(
    ["the", "order", "was", "shipped", "to", "customer", "refund", "agent", "plan", "ok", "retry", "in", "ms", "done"]
)
FILLER = st.lists(WORDS, min_size=1, max_size=6).map(" ".join)
TOKEN = string.ascii_letters + string.digits


@st.composite
def pii(draw) -> tuple[str, str]:
    """``(text to embed, the part that must not survive)`` for one PII kind."""
    kind = draw(
        st.sampled_from(
            ["email", "phone", "nanp", "ssn", "card", "ipv4", "ipv6", "key", "bearer", "password", "query", "pem", "jwt"]
        )
    )
    rnd = random.Random(draw(st.integers(0, 2**32)))
    if kind == "email":
        local = draw(st.from_regex(r"[a-z][a-z0-9._+]{0,12}[a-z0-9]", fullmatch=True))
        domain = draw(st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True))
        tld = draw(st.sampled_from(["com", "org", "io", "co.uk", "de"]))
        value = f"{local}@{domain}.{tld}"
        return value, value
    if kind == "phone":
        value = f"+{draw(st.integers(1, 99))} {draw(st.integers(10, 999))} {draw(st.integers(1000, 9999))} {draw(st.integers(1000, 9999))}"
        return value, value.split(" ", 1)[1]
    if kind == "nanp":
        value = f"({draw(st.integers(200, 999))}) {draw(st.integers(200, 999))}-{draw(st.integers(0, 9999)):04d}"
        return value, value
    if kind == "ssn":
        area = draw(st.integers(1, 899).filter(lambda a: a != 666))
        value = f"{area:03d}-{draw(st.integers(1, 99)):02d}-{draw(st.integers(1, 9999)):04d}"
        return value, value
    if kind == "card":
        number = _pii.card(rnd, draw(st.sampled_from(["visa", "mastercard", "amex"])))
        sep = draw(st.sampled_from(["", " ", "-"]))
        value = sep.join([number[:4], number[4:8], number[8:12], number[12:]]) if len(number) == 16 else sep.join([number[:4], number[4:10], number[10:]])
        return value, value
    if kind == "ipv4":
        first = draw(st.integers(1, 223).filter(lambda o: o != 127))
        value = f"{first}.{draw(st.integers(0, 255))}.{draw(st.integers(0, 255))}.{draw(st.integers(1, 254))}"
        return value, value
    if kind == "ipv6":
        # global unicast (2000::/3), the addresses clients really have
        value = str(ipaddress.IPv6Address((1 << 125) | draw(st.integers(0, 2**125 - 1))))
        return value, value
    if kind == "key":
        value = draw(st.sampled_from(sorted(_pii.secrets(rnd).items())))[1]
        return value, value
    if kind == "bearer":
        token = _pii.body(rnd, draw(st.integers(16, 60)), TOKEN + "._-")
        return f"Authorization: Bearer {token}", token
    if kind == "password":
        secret = _pii.body(rnd, draw(st.integers(8, 30)))
        name = draw(st.sampled_from(["password", "db_password", "API_KEY", "client_secret", "passwd", "auth_token"]))
        sep = draw(st.sampled_from(["=", ": ", " = ", '": "']))
        return f'{name}{sep}{secret}{chr(34) if chr(34) in sep else ""}', secret
    if kind == "query":
        secret = _pii.body(rnd, draw(st.integers(8, 30)))
        name = draw(st.sampled_from(["key", "token", "access_token", "sig", "api_key", "password"]))
        return f"https://api.example.com/v1/x?a=1&{name}={secret}&b=2", secret
    if kind == "pem":
        value = _pii.pem(rnd)
        return value, value.splitlines()[1]
    value = _pii.jwt(rnd)
    return value, value.split(".", 1)[1]


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=FILLER, items=st.lists(pii(), min_size=1, max_size=4), after=FILLER, glue=st.sampled_from([" ", ", ", "\n", " | "]))
def test_property_embedded_secrets_never_survive(before, items, after, glue):
    text = glue.join([before, *(value for value, _ in items), after])
    out = scrub(text)
    for _, secret in items:
        assert secret not in out, (text, out)
    assert out.startswith(before + glue) and out.endswith(glue + after), (text, out)
    assert "[REDACTED:" in out


@st.composite
def look_alike(draw) -> str:
    kind = draw(
        st.sampled_from(["uuid", "trace", "span", "iso", "epoch", "price", "order", "number", "duration", "version", "time"])
    )
    if kind == "uuid":
        return str(draw(st.uuids()))
    if kind == "trace":
        return "trace_id=" + format(draw(st.integers(1, 2**128 - 1)), "032x")
    if kind == "span":
        return "span_id=" + format(draw(st.integers(1, 2**64 - 1)), "016x")
    if kind == "iso":
        moment = draw(st.datetimes())
        return moment.isoformat() + draw(st.sampled_from(["Z", "", "+01:00"]))
    if kind == "epoch":
        return str(draw(st.integers(1_500_000_000_000_000_000, 2_000_000_000_000_000_000)))
    if kind == "price":
        return draw(st.sampled_from(["$", "EUR ", "", "£"])) + f"{draw(st.integers(0, 10**7)) / 100:,.2f}"
    if kind == "order":
        body = "".join(str(draw(st.integers(0, 9))) for _ in range(14))
        number = _pii.luhn_complete("4" + body)
        wrong = number[:-1] + str((int(number[-1]) + draw(st.integers(1, 9))) % 10)  # fails Luhn
        return draw(st.sampled_from(["order ", "ORD-", "#"])) + wrong
    if kind == "number":
        return str(draw(st.integers(-(10**12), 10**12)))
    if kind == "duration":
        return f"{draw(st.floats(0, 1e6, allow_nan=False)):.3f} ms"
    if kind == "version":
        return "v" + ".".join(str(draw(st.integers(0, 300))) for _ in range(3))
    return f"{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}:{draw(st.integers(0, 59)):02d}"


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(look_alike(), min_size=1, max_size=8), glue=st.sampled_from([", ", " | ", "; ", "\n"]))
def test_property_look_alikes_are_unchanged(items, glue):
    text = glue.join(items)
    assert scrub(text) == text


def test_spaced_number_after_a_sensitive_name_is_redacted_whole():
    """Regression: the name=value rule used to take "234" and leave "56 7890" in clear."""
    scrubber = Scrubber()
    assert scrubber.scrub_text("ssn: 234 56 7890.") == "ssn: [REDACTED:ssn]."
    assert scrubber.scrub_text("my ssn=234 56 7890 ok") == "my ssn=[REDACTED:ssn] ok"
    assert "7890" not in scrubber.scrub_text("SSN: 234-56-7890 on file")


# --- long texts and batches: the windowed paths agree with the short-text path ----------------

# Log lines around the PII: durations, ports, dates, order numbers, loopback, ids (the runs of
# digits the numeric windows must rule out) and a 16-digit span id that is not a card.
_FILLER_LINES = [
    'INFO:     127.0.0.1:40224 - "POST /chat HTTP/1.1" 200 OK',
    "classified intent=refund confidence=0.93 in 12.5 ms",
    "order 482913 shipped on 2026-11-05, eta 2026-11-07 12:30:45",
    "request 1b4e28ba-2fa1-11d2-883f-0016d3cca427 span_id=4111111111111111 done in 767.8 ms",
    "version 1.2.3.4 of the planner, ssn_count=3",
]


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(st.one_of(pii(), look_alike().map(lambda text: (text, None))), min_size=1, max_size=30), seed=st.integers(0, 1000))
def test_property_long_text_scrubs_like_its_lines(items, seed):
    """A text over the short-text bound (a log block, a batch of values joined by the exporter)
    takes the windowed numeric path and the vendor-hint path; it must come out as its lines do."""
    rnd = random.Random(seed)
    lines = []
    for text, _secret in items:
        lines.extend(rnd.sample(_FILLER_LINES, 2))
        lines.append(f"user said {text} just now")
    while len("\n".join(lines)) <= text_engine._SHORT:
        lines.append(rnd.choice(_FILLER_LINES))
    block = "\n".join(lines)
    assert len(block.encode()) > text_engine._SHORT
    assert scrub(block) == "\n".join(scrub(line) for line in lines)
    joined = "\x00".join(lines)
    assert scrub(joined) == "\x00".join(scrub(line) for line in lines)
    for text, secret in items:
        if secret is not None:
            assert secret not in scrub(block)


def test_clean_values_are_remembered_and_put_back_by_position():
    """Values found clean are skipped by later batches; changed items of a sequence value are
    put back at their own position even when a clean neighbour was skipped."""
    scrubber = Scrubber()
    first = {"code.file.path": "/srv/app/agent.py", "tags": ("refund", "gold")}
    assert scrubber.scrub_attributes(first) is first
    assert "/srv/app/agent.py" in scrubber._clean_values and "refund" not in scrubber._clean_values
    second = {
        "code.file.path": "/srv/app/agent.py",
        "note": "mail alice@example.com",
        "tags": ("refund", "call +1 415 555 0134", "gold"),
    }
    out = scrubber.scrub_attributes(second)
    assert out == {
        "code.file.path": "/srv/app/agent.py",
        "note": "mail [REDACTED:email]",
        "tags": ("refund", "call [REDACTED:phone]", "gold"),
    }
    assert "mail alice@example.com" not in scrubber._clean_values


def test_clean_value_cache_is_safe_across_threads(monkeypatch):
    """The exporters' threads share one scrubber; a cache cleared or filled by one thread's batch
    while another's is in flight must not shift values between keys."""
    import threading

    scrubber = Scrubber()
    monkeypatch.setattr(scrub_values, "_CLEAN_LIMIT", 8)  # clear the cache all the time
    reference = Scrubber()
    rnd = random.Random(5)
    values = [f"value-{i}" for i in range(20)] + ["alice@example.com", "203.0.113.7", "call +1 415 555 0134"]
    batches = [
        [{f"k{j}": rnd.choice(values) for j in range(6)} | {"seq": tuple(rnd.choice(values) for _ in range(3))} for _ in range(20)]
        for _ in range(40)
    ]
    expected = [[reference.scrub_attributes(attributes) for attributes in batch] for batch in batches]
    failures: list[str] = []

    def work(offset: int) -> None:
        for n in range(len(batches)):
            index = (n + offset) % len(batches)
            texts, maps = scrub_values.scrub_parts(scrubber, [], batches[index]) or ([], batches[index])
            if maps != expected[index]:
                failures.append(f"batch {index}")

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]


def test_log_batch_rebuilds_only_what_changed():
    """A mixed batch: each record comes out scrubbed where it held something, the clean ones as
    the same objects; string, mapping and missing bodies, event names, attributes and a second
    resource are all looked at."""
    from opentelemetry._logs import LogRecord
    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.sdk.resources import Resource

    plain, leaky = Resource({"service.name": "agent"}), Resource({"service.name": "agent", "owner": "bob@example.com"})
    specs = [
        dict(body="all fine here", attributes={"code.function.name": "run"}),
        dict(body="mail alice@example.com", attributes={"code.function.name": "run"}),
        dict(body="fine", attributes={"note": "call +1 415 555 0134"}),
        dict(body={"user": {"email": "carol@example.com"}, "n": 3}, attributes=None),
        dict(body=None, attributes={"ok": 1}),
        dict(body="fine", attributes={"ok": 1}, event_name="login password=hunter2"),
        dict(body="still fine", attributes={"code.function.name": "run"}),
    ]
    records = [ReadableLogRecord(LogRecord(**spec), plain) for spec in specs]
    scrubber = Scrubber()
    for batch in (records, records + [ReadableLogRecord(LogRecord(body="fine too"), leaky)]):
        out = scrubber.scrub_logs(batch)
        assert out[1].log_record.body == "mail [REDACTED:email]"
        assert out[2].log_record.attributes["note"] == "call [REDACTED:phone]"
        assert out[3].log_record.body == {"user": {"email": "[REDACTED:email]"}, "n": 3}
        assert out[5].log_record.event_name == "login password=[REDACTED:password]"
        assert [r.log_record.body for r in records][:2] == ["all fine here", "mail alice@example.com"]  # inputs untouched
    # one resource for the batch: the clean records are passed on as they are
    out = scrubber.scrub_logs(records)
    assert out[0] is records[0] and out[4] is records[4] and out[6] is records[6]
    # a second resource holding PII: its records get the scrubbed resource
    out = scrubber.scrub_logs(records + [ReadableLogRecord(LogRecord(body="fine too"), leaky)])
    assert out[7].resource.attributes["owner"] == "[REDACTED:email]" and out[7].log_record.body == "fine too"
    assert out[0].resource is plain


@pytest.mark.parametrize(
    "key",
    [
        "sk-" + "36394153ef8c55a834845e749a01ff34",  # 32 lower-case hex (OpenAI-compatible vendors)
        "sk-" + "abcdefghijklmnopqrstuvwxyz012345",
        "sk-" + "ABCDEFGHIJKLMNOPQRSTUVWX12345678",
        "sk-" + "proj-4457b0731d3cef196fef59749d59c88d6f334573",
    ],
)
def test_sk_keys_without_mixed_case_are_redacted(key):
    """The web layer's second regex pass used to catch these; the one scrubber now does, everywhere."""
    assert_redacted(f"calling upstream with {key} now", key, "openai_api_key")
    assert_kept("see sk-learn-v2-tutorial-2024-edition for details")
