"""The hint database's patterns keep clear of what makes Hyperscan's compile slow (hints.py, "Compile cost").

The database compiles on the first scrub, at start-up (issue 14: start-up at most the distro's).
Measured with callgrind, two shapes were half of its compile: a wide class repeated more than 16
times right after a prefix of three characters or less (``sk-[A-Za-z0-9_\\-]{20}``), and a bounded
run after the alternation of sensitive names (``[ \\t]{0,8}``). Checked on the parsed patterns (no
timing); that the hints still cover every replacement is tests/test_scrub_engines.py's property test.
"""

from __future__ import annotations

import re._constants as sre_constants
import re._parser as sre_parse

import pytest

from agentwatch.distro.scrub import hints
from agentwatch.distro.scrub.detectors import hint_names

_REPEATS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT)
_ONE_CHARACTER = (sre_constants.LITERAL, sre_constants.NOT_LITERAL, sre_constants.IN, sre_constants.ANY)


def _patterns(extra_keys: tuple[str, ...] = ()) -> list[tuple[str, int]]:
    names, query = hint_names(extra_keys)
    return [*hints._FIXED, (hints._params_pattern(names, query), hints.PARAMS)]


def _sequences(parsed):
    """Every sequence of the parsed pattern (the top one, each alternative, each group's body)."""
    yield list(parsed)
    for op, arg in parsed:
        if op is sre_constants.BRANCH:
            for alternative in arg[1]:
                yield from _sequences(alternative)
        elif op is sre_constants.SUBPATTERN:
            yield from _sequences(arg[-1])
        elif op in _REPEATS:
            yield from _sequences(arg[2])


def _long_repeats_after_short_prefixes(pattern: str) -> list[str]:
    found = []
    for sequence in _sequences(sre_parse.parse(pattern)):
        for i, (op, arg) in enumerate(sequence):
            if op in _REPEATS and arg[1] != sre_constants.MAXREPEAT and arg[1] > 16:
                prefix = 0
                for before_op, _ in reversed(sequence[:i]):
                    if before_op not in _ONE_CHARACTER:
                        break
                    prefix += 1
                if prefix <= 3:
                    found.append(f"{{{arg[0]},{arg[1]}}} after {prefix} characters")
    return found


def test_no_long_bounded_repeat_right_after_a_short_prefix():
    offending = {pattern: found for pattern, _ in _patterns() if (found := _long_repeats_after_short_prefixes(pattern))}
    assert not offending, offending


def test_the_rule_sees_the_shape_it_is_about():
    """Not vacuous: the old vendor hint is caught, a long repeat after a long prefix is not."""
    assert _long_repeats_after_short_prefixes(r"sk-[A-Za-z0-9_\-]{20}") == ["{20,20} after 3 characters"]
    assert _long_repeats_after_short_prefixes(r"x(?:ab|sk-[a-z]{17})") == ["{17,17} after 3 characters"]
    assert _long_repeats_after_short_prefixes(r"whsec_[A-Za-z0-9]{20}") == []


def _bounded_runs(parsed) -> list[tuple[int, int]]:
    """(min, max) of every repeat with a finite maximum above 1, at any depth."""
    runs = []
    for sequence in _sequences(parsed):
        runs += [(arg[0], arg[1]) for op, arg in sequence
                 if op in _REPEATS and arg[1] != sre_constants.MAXREPEAT and arg[1] > 1]
    return runs


@pytest.mark.parametrize("extra_keys", [(), ("tenant_secret", "x-api-token")])
def test_the_sensitive_names_hint_has_no_bounded_run(extra_keys):
    """Between a name and its ``=``/``:`` only optional characters and one starred class."""
    params = _patterns(extra_keys)[-1][0]
    assert _bounded_runs(sre_parse.parse(params)) == []
    assert _bounded_runs(sre_parse.parse(r"(?:token)\\?[\"']?[ \t]{0,8}[=:]")) == [(0, 8)]  # the old form is caught
