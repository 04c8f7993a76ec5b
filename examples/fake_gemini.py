"""A local fake of the Gemini REST API (generativelanguage.googleapis.com), stdlib only.

It answers the way the real API does, closely enough for the google-genai SDK and for
hand-written httpx clients, so the demo, the tests and the benchmarks never leave the
machine:

    POST /{v1,v1beta}/models/{model}:generateContent
    POST /{v1,v1beta}/models/{model}:streamGenerateContent?alt=sse   (SSE, chunked)
    POST /{v1,v1beta}/models/{model}:countTokens
    POST /{v1,v1beta}/models/{model}:batchEmbedContents
    POST /{v1,v1beta}/models/{model}:embedContent
    (and the same under Vertex AI paths: /v1beta1/[projects/P/locations/L/]publishers/google/models/...)
    GET  /healthz

The answer is deterministic: it is derived from the last user text of the request, so
the same prompt always gets the same text, token counts and response id.

Every model call needs an API key in the ``x-goog-api-key`` header (or ``?key=``, which
the real API also accepts); without one the server answers 401 with the real error shape
``{"error": {"code": 401, "message": ..., "status": "UNAUTHENTICATED"}}``. With
``--api-key K`` any other key gets the real API's 400 ``API key not valid``.

Fault injection: a request whose text contains ``#fail-NNN`` (NNN one of 400, 403, 404,
429, 500, 503, 504) gets that HTTP error with the matching Google status, so a demo can
provoke a model failure through ordinary user input; a 429 carries ``RetryInfo`` and
``QuotaFailure`` details and a ``Retry-After`` header, like the real API. Streams only:
``#fail-stream`` sends one chunk, then an ``{"error": {"code": 500, ...}}`` event;
``#cut-stream`` sends one chunk, then drops the connection. ``#flaky-NNN-K`` (K = 1..9): of the
requests with that exact body, K get the NNN error, the next one succeeds, and so on -- what a client
retrying K times sees, every time it sends that body.

Realistic usage: ``usageMetadata`` counts the prompt (system instruction included), the
answer, thinking tokens when the request's ``thinkingConfig`` has a ``thinkingBudget``
(``thoughtsTokenCount``, a quarter of the budget, at most 64) and cached tokens when it
names ``cachedContent`` (``cachedContentTokenCount``, half the prompt, included in the
prompt count as in the real API).

Function calling: when the request declares ``functionDeclarations`` and its last turn is
not a ``functionResponse``, the answer is a ``functionCall`` of the first declared
function the conversation has no response of yet, with every declared parameter filled
(the first ``enum`` value, else strings ``"Paris"``, numbers ``1``, booleans ``true``);
once a ``functionResponse`` arrives the answer is text quoting it. So an agent framework's
transfer (``transfer_to_agent``, an enum of agent names) is followed by the next agent's tool. ``#call-NAME`` in
the request's text makes that answer a ``functionCall`` of ``NAME`` (no arguments), declared or not.

Safety blocks: ``#blocked-REASON`` (e.g. ``#blocked-SAFETY``, ``#blocked-PROHIBITED_CONTENT``) makes the
answer a blocked prompt -- no candidates, ``promptFeedback`` with that ``blockReason``, a
``blockReasonMessage`` and safety ratings (``HARM_CATEGORY_DANGEROUS_CONTENT`` ``HIGH``, blocked) -- in one
response or one stream chunk. ``#unsafe-CATEGORY`` (e.g. ``#unsafe-HARM_CATEGORY_HATE_SPEECH``) lets the
answer start, then stops the candidate with ``finishReason: SAFETY`` and ratings where that category is
``HIGH`` and ``blocked: true`` (a stream sends its first chunk as usual, the block in the next).

Run it:  python examples/fake_gemini.py --port 8766 [--latency-ms 5] [--api-key K]
Import it (tests):  server, url = start_fake_gemini(port=0); ...; server.shutdown()
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeGeminiServer", "start_fake_gemini", "main"]

# Gemini API: /v1/models/M:op. Vertex AI: /v1beta1/[projects/P/locations/L/]publishers/google/models/M:op.
_MODEL_PATH = re.compile(
    r"^/(v1|v1beta|v1alpha|v1beta1)/(?:projects/[^/]+/locations/[^/]+/)?(?:publishers/[^/]+/)?"
    r"models/([A-Za-z0-9._\-]+):([A-Za-z]+)$"
)
_FAIL_MARKER = re.compile(r"#fail-(\d{3})\b")
_FLAKY_MARKER = re.compile(r"#flaky-(\d{3})-(\d)\b")
_CALL_MARKER = re.compile(r"#call-(\w+)")
_BLOCKED_MARKER = re.compile(r"#blocked-([A-Z_]+)")
_UNSAFE_MARKER = re.compile(r"#unsafe-([A-Z_]+)")
_HARM_CATEGORIES = (
    "HARM_CATEGORY_HATE_SPEECH", "HARM_CATEGORY_DANGEROUS_CONTENT", "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
)
_WORD = re.compile(r"[A-Za-z0-9']+")

_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FAIL_MESSAGES = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "models/{model} is not found for API version {version}.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "The request timed out. Please try again.",
}
_MISSING_KEY_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
_BAD_KEY_MESSAGE = "API key not valid. Please pass a valid API key."

_OPENERS = (
    "Based on the knowledge base",
    "According to the documentation",
    "Here is what I found",
    "Short answer",
)


# --------------------------------------------------------------------------- answers
def _texts(node) -> list[str]:
    """Every ``text`` part under a request node (contents, systemInstruction, ...)."""
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                out.append(value)
            else:
                out.extend(_texts(value))
    elif isinstance(node, list):
        for item in node:
            out.extend(_texts(item))
    return out


def _last_user_text(body: dict) -> str:
    for content in reversed(body.get("contents") or []):
        if isinstance(content, dict) and content.get("role", "user") == "user":
            texts = _texts(content.get("parts") or [])
            if texts:
                return "\n".join(texts)
    return ""


def _count_tokens(texts: list[str]) -> int:
    """A stable, roughly realistic count: about 4 characters per token."""
    return sum(max(1, (len(t) + 3) // 4) for t in texts if t) or 1


def _answer_for(prompt: str, model: str) -> tuple[str, str]:
    """(answer text, response id), both a pure function of the prompt and the model."""
    digest = hashlib.sha256(f"{model}\x00{prompt}".encode()).hexdigest()
    question = ""
    for line in prompt.splitlines():
        if line.lower().startswith("question:"):
            question = line.split(":", 1)[1]
    words = _WORD.findall(question or prompt)[:12]
    topic = " ".join(words) if words else "your request"
    sources = re.findall(r"\[(kb-\d+)\]", prompt)[:3]
    cite = f" (see {', '.join(sources)})" if sources else ""
    opener = _OPENERS[int(digest[:2], 16) % len(_OPENERS)]
    text = f"{opener}: about '{topic}', the relevant articles explain the steps to follow{cite}."
    return text, f"fake-{digest[:16]}"


def _embedding(text: str, dim: int = 8) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round((digest[i] - 128) / 128.0, 4) for i in range(dim)]


# --------------------------------------------------------------------------- server
class FakeGeminiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, *, latency_ms: float = 0.0, api_key: str | None = None, quiet: bool = True):
        super().__init__(address, _Handler)
        self.latency_s = max(0.0, latency_ms) / 1000.0
        self.api_key = api_key
        self.quiet = quiet
        self.request_count = 0
        self._count_lock = threading.Lock()
        self._flaky_seen: dict[str, int] = {}  # body digest -> requests seen (#flaky-NNN-K)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def count(self) -> None:
        with self._count_lock:
            self.request_count += 1

    def flaky_failure_due(self, raw: bytes, failures: int) -> bool:
        """Whether this request of this body fails: ``failures`` in a row, then one success, in cycles."""
        digest = hashlib.sha256(raw).hexdigest()
        with self._count_lock:
            seen = self._flaky_seen.get(digest, 0)
            self._flaky_seen[digest] = seen + 1
            return seen % (failures + 1) < failures


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API
    server_version = "FakeGemini/1.0"
    sys_version = ""
    disable_nagle_algorithm = True  # otherwise delayed ACK adds ~40 ms per call
    timeout = 120  # an idle keep-alive connection frees its thread after this
    server: FakeGeminiServer

    # ---- plumbing
    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        if not self.server.quiet:
            sys.stderr.write("fake-gemini: " + (format % args) + "\n")

    def handle(self):  # a client that abandons a keep-alive connection is normal, not an error
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):
            pass

    def _send_json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, code: int, message: str) -> None:
        error: dict = {"code": code, "message": message, "status": _GOOGLE_STATUS.get(code, "UNKNOWN")}
        headers = {}
        if code == 429:
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_requests"}],
                },
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"},
            ]
            headers["Retry-After"] = "2"
        self._send_json(code, {"error": error}, headers)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    # ---- routes
    def do_GET(self):  # noqa: N802 - stdlib naming
        self.server.count()
        if urlsplit(self.path).path == "/healthz":
            self._send_json(200, {"status": "ok"})
        else:
            self._send_error(404, f"Method not found: GET {urlsplit(self.path).path}")

    def do_POST(self):  # noqa: N802 - stdlib naming
        self.server.count()
        raw = self._read_body()  # always drain the body, so keep-alive stays in sync
        parts = urlsplit(self.path)
        match = _MODEL_PATH.match(parts.path)
        if not match:
            self._send_error(404, f"Method not found: POST {parts.path}")
            return
        version, model, method = match.groups()

        query = parse_qs(parts.query)
        key = self.headers.get("x-goog-api-key") or (query.get("key") or [""])[0]
        if not key:
            self._send_error(401, _MISSING_KEY_MESSAGE)
            return
        if self.server.api_key is not None and key != self.server.api_key:
            self._send_error(400, _BAD_KEY_MESSAGE)
            return

        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            self._send_error(400, "Invalid JSON payload received.")
            return

        fail = _FAIL_MARKER.search(raw.decode("utf-8", "replace"))
        flaky = _FLAKY_MARKER.search(raw.decode("utf-8", "replace"))
        if flaky and int(flaky.group(1)) in _FAIL_MESSAGES and self.server.flaky_failure_due(raw, int(flaky.group(2))):
            fail = flaky
        if fail and int(fail.group(1)) in _FAIL_MESSAGES:
            code = int(fail.group(1))
            if self.server.latency_s:
                time.sleep(self.server.latency_s)
            self._send_error(code, _FAIL_MESSAGES[code].format(model=model, version=version))
            return

        if self.server.latency_s:
            time.sleep(self.server.latency_s)

        if method == "generateContent":
            self._generate(body, model)
        elif method == "streamGenerateContent":
            self._stream(body, model, sse=query.get("alt", [""])[0] == "sse")
        elif method == "countTokens":
            texts = _texts(body.get("contents") or []) + _texts(body.get("generateContentRequest") or {})
            n = _count_tokens(texts)
            self._send_json(200, {"totalTokens": n, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": n}]})
        elif method == "batchEmbedContents":
            requests = body.get("requests") or []
            embeddings = [{"values": _embedding("\n".join(_texts(r.get("content") or {})))} for r in requests]
            self._send_json(200, {"embeddings": embeddings})
        elif method == "embedContent":
            self._send_json(200, {"embedding": {"values": _embedding("\n".join(_texts(body.get("content") or {})))}})
        else:
            self._send_error(404, f"Method not found: {method}")

    def _usage(self, body: dict, answer: str) -> dict:
        prompt_texts = _texts(body.get("contents") or []) + _texts(body.get("systemInstruction") or {})
        prompt_tokens = _count_tokens(prompt_texts)
        candidate_tokens = _count_tokens([answer])
        usage = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": candidate_tokens,
            "totalTokenCount": prompt_tokens + candidate_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
        }
        thinking = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
        budget = thinking.get("thinkingBudget", thinking.get("thinking_budget")) or 0
        if isinstance(budget, int) and budget > 0:
            usage["thoughtsTokenCount"] = min(64, max(1, budget // 4))
            usage["totalTokenCount"] += usage["thoughtsTokenCount"]
        if body.get("cachedContent"):
            usage["cachedContentTokenCount"] = max(1, prompt_tokens // 2)
        return usage

    @staticmethod
    def _function_call(body: dict) -> dict | None:
        """The functionCall part to answer with, or None (see the module docstring)."""
        declarations = [
            d for tool in body.get("tools") or [] if isinstance(tool, dict) for d in tool.get("functionDeclarations") or []
        ]
        mode = (((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode") or "").upper()
        if not declarations or mode == "NONE":
            return None
        contents = body.get("contents") or []
        last = contents[-1] if contents else {}
        if any("functionResponse" in part for part in (last.get("parts") or []) if isinstance(part, dict)):
            return None
        asked = _CALL_MARKER.search(_last_user_text(body))
        if asked:  # a model that asks for a function the request did not declare
            return {"functionCall": {"name": asked.group(1), "args": {}}}
        # A function the conversation already has a response of is not asked for again (an agent
        # framework's transfer, then the next agent's own tool, rather than the same call forever).
        answered = {
            str(part["functionResponse"].get("name"))
            for content in contents if isinstance(content, dict)
            for part in content.get("parts") or [] if isinstance(part, dict) and isinstance(part.get("functionResponse"), dict)
        }
        fresh = [d for d in declarations if d.get("name") not in answered]
        if not fresh:
            return None
        declaration = fresh[0]
        schema = declaration.get("parameters") or declaration.get("parameters_json_schema") or declaration.get("parametersJsonSchema") or {}
        args = {}
        for name, spec in (schema.get("properties") or {}).items():
            kind = str((spec or {}).get("type", "string")).lower()
            enum = (spec or {}).get("enum") or []  # a closed set (ADK's transfer_to_agent): its first value
            args[name] = enum[0] if enum else 1 if kind in ("integer", "number") else True if kind == "boolean" else "Paris"
        return {"functionCall": {"name": declaration.get("name", "function"), "args": args}}

    @staticmethod
    def _function_result_text(body: dict) -> str | None:
        contents = body.get("contents") or []
        last = contents[-1] if contents else {}
        for part in last.get("parts") or []:
            if isinstance(part, dict) and "functionResponse" in part:
                response = part["functionResponse"]
                return f"The {response.get('name', 'tool')} tool says: {json.dumps(response.get('response'), sort_keys=True)}."
        return None

    def _generate(self, body: dict, model: str) -> None:
        answer, response_id = _answer_for(_last_user_text(body), model)
        blocked = self._safety_block(body, model, response_id, stream=False)
        if blocked is not None:
            self._send_json(200, blocked[0])
            return
        part: dict = {"text": answer}
        call = self._function_call(body)
        if call is not None:
            part, answer = call, json.dumps(call)
        else:
            answer = self._function_result_text(body) or answer
            part = {"text": answer}
        self._send_json(
            200,
            {
                "candidates": [
                    {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}
                ],
                "usageMetadata": self._usage(body, answer),
                "modelVersion": model,
                "responseId": response_id,
            },
        )

    def _safety_block(self, body: dict, model: str, response_id: str, *, stream: bool) -> list[dict] | None:
        """The response (or stream chunks) of a ``#blocked-`` / ``#unsafe-`` request, else None."""
        text = _last_user_text(body)
        blocked, unsafe = _BLOCKED_MARKER.search(text), _UNSAFE_MARKER.search(text)
        usage = self._usage(body, "")
        if blocked:
            ratings = [{"category": c, "probability": "HIGH" if c.endswith("DANGEROUS_CONTENT") else "NEGLIGIBLE",
                        **({"blocked": True} if c.endswith("DANGEROUS_CONTENT") else {})} for c in _HARM_CATEGORIES]
            feedback = {"blockReason": blocked.group(1), "safetyRatings": ratings,
                        "blockReasonMessage": f"The prompt was blocked due to {blocked.group(1)}."}
            return [{"promptFeedback": feedback, "usageMetadata": usage, "modelVersion": model, "responseId": response_id}]
        if not unsafe:
            return None
        category = unsafe.group(1)
        ratings = [{"category": c, "probability": "NEGLIGIBLE", "severity": "HARM_SEVERITY_NEGLIGIBLE"}
                   for c in _HARM_CATEGORIES if c != category]
        ratings.insert(0, {"category": category, "probability": "HIGH", "probabilityScore": 0.97,
                           "severity": "HARM_SEVERITY_HIGH", "severityScore": 0.91, "blocked": True})
        start = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Well, "}]}, "index": 0}],
                 "usageMetadata": usage, "modelVersion": model, "responseId": response_id}
        stop = {"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "SAFETY",
                                "safetyRatings": ratings, "index": 0}],
                "usageMetadata": usage, "modelVersion": model, "responseId": response_id}
        if stream:
            return [start, stop]
        stop["candidates"][0].pop("content")  # a unary answer has no content at all
        return [stop]

    def _stream(self, body: dict, model: str, *, sse: bool) -> None:
        answer, response_id = _answer_for(_last_user_text(body), model)
        blocked = self._safety_block(body, model, response_id, stream=True)
        call = self._function_call(body)
        answer = self._function_result_text(body) or answer
        usage = self._usage(body, json.dumps(call) if call else answer)
        words = answer.split(" ")
        chunks = [" ".join(words[i : i + 4]) + (" " if i + 4 < len(words) else "") for i in range(0, len(words), 4)]
        if call is not None:
            chunks = [call]
        raw_text = "\n".join(_texts(body.get("contents") or []))
        fault = "fail" if "#fail-stream" in raw_text else "cut" if "#cut-stream" in raw_text else None
        events = []
        sent = ""
        for i, chunk in enumerate(chunks):
            part = chunk if isinstance(chunk, dict) else {"text": chunk}
            sent += json.dumps(chunk) if isinstance(chunk, dict) else chunk
            last = i == len(chunks) - 1
            candidate = {"content": {"role": "model", "parts": [part]}, "index": 0}
            if last:
                candidate["finishReason"] = "STOP"
            # Like the real API: usage is repeated, cumulative, on every chunk.
            chunk_usage = dict(usage, candidatesTokenCount=_count_tokens([sent]))
            chunk_usage["totalTokenCount"] = usage["promptTokenCount"] + chunk_usage["candidatesTokenCount"]
            events.append(
                {"candidates": [candidate], "usageMetadata": chunk_usage, "modelVersion": model, "responseId": response_id}
            )
        if blocked is not None:
            events = blocked
        try:
            if not sse:  # without alt=sse the API answers one JSON array
                self._send_json(200, events)  # type: ignore[arg-type]
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for index, event in enumerate(events):
                if fault and index == 1:
                    if fault == "cut":  # the connection drops mid-stream, no terminating chunk
                        self.close_connection = True
                        return
                    event = {"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}}
                data = b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\r\n\r\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
                if fault == "fail" and index == 1:
                    break
                if self.server.latency_s:
                    time.sleep(self.server.latency_s / 4)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):  # the client abandoned the stream
            self.close_connection = True


def start_fake_gemini(
    port: int = 0, *, host: str = "127.0.0.1", latency_ms: float = 0.0, api_key: str | None = None, quiet: bool = True
) -> tuple[FakeGeminiServer, str]:
    """Start the fake in a daemon thread; return ``(server, base_url)``. Stop it with ``server.shutdown()``."""
    server = FakeGeminiServer((host, port), latency_ms=latency_ms, api_key=api_key, quiet=quiet)
    thread = threading.Thread(target=server.serve_forever, name="fake-gemini", daemon=True)
    thread.start()
    return server, server.url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local fake of the Gemini REST API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766, help="0 picks a free port (printed)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="artificial delay before each model answer")
    parser.add_argument("--api-key", default=None, help="accept only this key (default: any non-empty key)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)

    server = FakeGeminiServer(
        (args.host, args.port), latency_ms=args.latency_ms, api_key=args.api_key, quiet=not args.verbose
    )
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    print(f"fake gemini listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
