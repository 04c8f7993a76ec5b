"""FastAPI app answering from the chromadb knowledge base in kb.py (tests/test_chromadb.py).

``python app.py PORT`` serves it with uvicorn on a real socket, asks it a few questions with
httpx, prints each response (``RESPONSE <status> <json>``) and exits.
"""

from __future__ import annotations

import asyncio
import sys

import httpx
import uvicorn
from fastapi import FastAPI

import kb
from kb import search  # bound after agentwatch's import hook wrapped it

app = FastAPI()
QUESTIONS = ["refunds purchase", "duplicate charge invoice", "reset password"]


@app.post("/ask")
async def ask(body: dict):
    found = search(body["question"], top_k=2)
    return {"ids": found["ids"][0], "distances": found["distances"][0]}


async def main(port: int) -> None:
    kb.load()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        for question in QUESTIONS:
            response = await http.post("/ask", json={"question": question})
            print("RESPONSE", response.status_code, response.text, flush=True)
    await asyncio.sleep(1.0)  # a periodic metric export or two while the collection is open
    server.should_exit = True
    await task


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
