"""A support knowledge base on chromadb (tests/test_chromadb.py's end-to-end app).

Embeddings come from :func:`embed`, a deterministic bag-of-words hash (no model, nothing
downloaded); the collection is created with ``embedding_function=None`` and every call passes
explicit embeddings. ``search`` is the app's retrieval function: the test names it in
``AGENTWATCH_RAG_TARGETS`` and nothing in this module knows about OpenTelemetry.
"""

from __future__ import annotations

import hashlib
import math
import os

import chromadb
from chromadb.config import Settings

DIMENSIONS = 64
DOCUMENTS = {
    "kb-refund": "refunds are issued within 14 days of a purchase",
    "kb-invoice": "a duplicate charge on an invoice is refunded automatically",
    "kb-password": "reset your password from the login page",
    "kb-shipping": "orders ship within two business days",
    "kb-sync": "if sync crashes update the app and retry",
}


def embed(texts: list[str]) -> list[list[float]]:
    vectors = []
    for text in texts:
        vector = [0.0] * DIMENSIONS
        for word in text.lower().split():
            vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIMENSIONS] += 1.0
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        vectors.append([v / norm for v in vector])
    return vectors


client = chromadb.PersistentClient(path=os.environ["KB_PATH"], settings=Settings(anonymized_telemetry=False))
collection = client.get_or_create_collection("support-kb", embedding_function=None)


def load() -> None:
    ids = list(DOCUMENTS)
    collection.upsert(ids=ids, embeddings=embed([DOCUMENTS[i] for i in ids]), documents=[DOCUMENTS[i] for i in ids])


def search(question: str, top_k: int = 3):
    return collection.query(query_embeddings=embed([question]), n_results=top_k, include=["documents", "distances"])
