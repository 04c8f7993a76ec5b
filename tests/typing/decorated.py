"""Checked by tests/test_typing.py with basedpyright: agentwatch's decorators keep the decorated
functions' signatures (a type checker sees the original parameters and return types)."""

from typing_extensions import assert_type

import agentwatch


@agentwatch.intent_classifier
def classify(message: str) -> tuple[str, float]:
    return ("greeting", 1.0)


@agentwatch.retriever(data_source="kb")
async def search(query: str, top_k: int = 3) -> list[str]:
    return []


@agentwatch.critic(name="reviewer")
def review(draft: str) -> bool:
    return True


assert_type(classify("hi"), tuple[str, float])
assert_type(review("draft"), bool)


async def main() -> None:
    assert_type(await search("q", top_k=2), list[str])
