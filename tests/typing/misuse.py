"""Must NOT type-check (tests/test_typing.py): wrong arguments to decorated functions are caught."""

import agentwatch


@agentwatch.intent_classifier
def classify(message: str) -> tuple[str, float]:
    return ("greeting", 1.0)


classify(42)  # an int where a str is declared
