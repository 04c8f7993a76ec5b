"""Orbitly support agent: a small, realistic FastAPI agent service (the agentwatch demo app).

    POST /chat              {"message": str, "session_id": str}
                            -> {"answer", "intent", "confidence", "sources", "session_id"}
    GET  /documents/{id}    one knowledge-base article (404 when missing)
    GET  /                  index

Pipeline of /chat: keyword intent classifier (intents.py) -> top-3 articles from an SQLite
FTS5 table (knowledge.py) -> an answer outline from a draft -> critique -> revise loop
(planner.py) -> Gemini ``generate_content`` through the google-genai SDK (one shared client)
-> one log line. A message containing ``#crash`` makes the planner raise an exception the
app does not handle (a 500), as ``#fail-503`` makes the fake Gemini fail (a 502). A 429 from
Gemini is retried by the SDK (``#flaky-429-1``: one 429, then an answer); still limited after
the retries (``#fail-429``) it is answered 429. After three model failures in a row the
``gemini`` circuit breaker (aiobreaker) opens and chats are answered 503 until it lets a trial
call through (see gemini_client.py).

Configuration (environment):
    GEMINI_BASE_URL   the Gemini server. Unset: the real API when GEMINI_API_KEY (or
                      GOOGLE_API_KEY) is set, otherwise the local fake on http://127.0.0.1:8766
                      (examples/fake_gemini.py)
    GEMINI_API_KEY    the API key (GOOGLE_API_KEY is read too); the SDK sends it as x-goog-api-key
    GEMINI_MODEL      default gemini-2.5-flash
    AGENT_DB_PATH     SQLite file of the knowledge base; default a temporary file
    AGENT_MODEL_TIMEOUT_S  default 30
    AGENT_MODEL_RETRY_ATTEMPTS  attempts per model request on a 429, default 3
    AGENT_BREAKER_FAIL_MAX / AGENT_BREAKER_RESET_S  the breaker: failures in a row to open it
                      (default 3), seconds before a trial call (default 30)

Run:  python app.py --port 8000        or, from this folder:  uvicorn app:app --port 8000

It knows nothing about observability: no agentwatch or OpenTelemetry import. Run it under
``opentelemetry-instrument`` to observe it.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

import knowledge
import order_tools
from agent import Agent
from gemini_client import GeminiClient, ModelError, endpoint

log = logging.getLogger("agent")
log.setLevel(logging.INFO)


@dataclass(frozen=True)
class Settings:
    gemini_base_url: str | None
    gemini_api_key: str
    model: str
    db_path: str | None
    model_timeout_s: float

    @classmethod
    def from_env(cls) -> "Settings":
        base_url, api_key = endpoint(os.environ)
        return cls(
            gemini_base_url=base_url,
            gemini_api_key=api_key,
            model=os.environ.get("GEMINI_MODEL", "gemini-2.5-flash"),
            db_path=os.environ.get("AGENT_DB_PATH") or None,
            model_timeout_s=float(os.environ.get("AGENT_MODEL_TIMEOUT_S", "30")),
        )


class ChatRequest(BaseModel):
    message: str = Field(min_length=1, max_length=4000)
    session_id: str = Field(min_length=1, max_length=128)


class ChatResponse(BaseModel):
    answer: str
    intent: str
    confidence: float
    sources: list[str]
    session_id: str


class DocumentOut(BaseModel):
    doc_id: str
    category: str
    title: str
    body: str


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings = Settings.from_env()
    temp_db = None
    db_path = settings.db_path
    if db_path is None:
        fd, temp_db = tempfile.mkstemp(prefix="agent-kb-", suffix=".sqlite3")
        os.close(fd)
        db_path = temp_db
    conn = knowledge.connect(db_path)
    llm = GeminiClient(
        base_url=settings.gemini_base_url,
        api_key=settings.gemini_api_key,
        model=settings.model,
        timeout_s=settings.model_timeout_s,
    )
    app.state.conn = conn
    app.state.agent = Agent(conn, llm)
    app.state.llm = llm
    log.info("agent ready documents=%d model=%s", knowledge.count_documents(conn), settings.model)
    try:
        yield
    finally:
        await llm.aclose()
        conn.close()
        if temp_db:
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.remove(temp_db + suffix)
                except FileNotFoundError:
                    pass


def create_app() -> FastAPI:
    app = FastAPI(title="Orbitly support agent", version="1.0.0", lifespan=lifespan)

    @app.exception_handler(ModelError)
    async def model_error_handler(request: Request, exc: ModelError) -> JSONResponse:
        log.warning("model call failed reason=%s upstream_status=%s", exc.reason, exc.upstream_status)
        # still rate limited after the SDK's retries: 429, as the model said; breaker open: 503; else 502
        status = 429 if exc.upstream_status == 429 else 503 if exc.reason == "circuit_open" else 502
        return JSONResponse(
            status_code=status,
            headers={"Retry-After": "5"} if status != 502 else None,
            content={
                "error": {
                    "type": "model_error",
                    "reason": exc.reason,
                    "upstream_status": exc.upstream_status,
                    "message": "The language model could not answer; please retry.",
                }
            },
        )

    @app.get("/")
    async def index(request: Request) -> dict:
        return {
            "service": "orbitly-support-agent",
            "documents": knowledge.count_documents(request.app.state.conn),
            "endpoints": ["POST /chat", "POST /chat/tools", "GET /documents/{doc_id}"],
        }

    @app.post("/chat", response_model=ChatResponse)
    async def chat(body: ChatRequest, request: Request) -> ChatResponse:
        result = await request.app.state.agent.answer(body.message, body.session_id)
        return ChatResponse(**asdict(result))

    @app.post("/chat/tools")
    async def chat_tools(body: ChatRequest, request: Request) -> dict:
        """A hand-written function-calling loop (model -> tool -> model)."""
        llm = request.app.state.llm
        return await order_tools.answer_with_tools(llm.client, llm.model, body.message)

    @app.get("/documents/{doc_id}", response_model=DocumentOut)
    async def get_document(doc_id: str, request: Request) -> DocumentOut:
        document = knowledge.get_document(request.app.state.conn, doc_id)
        if document is None:
            raise HTTPException(status_code=404, detail=f"document {doc_id} not found")
        return DocumentOut(doc_id=document.doc_id, category=document.category, title=document.title, body=document.body)

    return app


app = create_app()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Orbitly support agent (demo FastAPI service)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--no-access-log", action="store_true", help="turn off uvicorn's per-request access log")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=not args.no_access_log)


if __name__ == "__main__":
    main()
