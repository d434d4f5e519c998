"""Number translation rules (seed 003): ordered regular-expression rewrites.

A rule may be conditioned on the destination's prefix ("change CLI based on DST prefix"); the
first rule whose pattern matches rewrites the number, and processing continues with the next
rules on the rewritten number (so rules compose, in priority order).

A rule whose pattern or replacement is broken (``\\2`` with one group, a lone ``\\``, ``\\q``,
``\\g<x>``...) is refused when it is saved (:func:`problem`). Rows stored before that check
existed may still be broken: :func:`apply` then skips the rule, always the same way, and notes
why, so one bad rule never turns an authorisation, a simulation or a rating into an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Rule:
    kind: str  # source | destination | did_source | did_destination
    match: str
    replace: str
    dst_prefix: str = ""


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def problem(match: str, replace: str) -> str | None:
    """Why the pair (pattern, replacement) cannot be applied, or ``None`` when it can.

    The replacement template is checked against the compiled pattern (group numbers and names
    must exist, escapes must be known): substituting into an empty string parses the template
    without needing a match.
    """
    try:
        pattern = _compiled(match)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"the pattern is not a valid regular expression ({exc})"
    try:
        pattern.sub(replace, "")
    except (re.error, IndexError) as exc:
        groups = pattern.groups
        have = f"the pattern has {groups} group{'s' if groups != 1 else ''}"
        return (
            f"not a valid replacement for this pattern ({exc}; {have}, so \\1..\\{groups} or \\g<0> may be used)"
            if groups
            else f"not a valid replacement for this pattern ({exc}; the pattern has no groups, only \\g<0>)"
        )
    return None


def apply(rules: Iterable[Rule], kind: str, number: str, destination: str, notes: list[str] | None = None) -> str:
    """Rewrite ``number`` with the rules of ``kind``; ``destination`` is checked against dst_prefix.

    A rule that cannot be applied is skipped (and, when ``notes`` is given, a line saying so is
    appended to it): the number goes on to the next rule unchanged.
    """
    for rule in rules:
        if rule.kind != kind:
            continue
        if rule.dst_prefix and not destination.lstrip("+").startswith(rule.dst_prefix):
            continue
        try:
            pattern = _compiled(rule.match)
            if pattern.search(number):
                number = pattern.sub(rule.replace, number, count=1)
        except (re.error, IndexError, RecursionError, OverflowError) as exc:
            if notes is not None:
                notes.append(f"translation rule s/{rule.match}/{rule.replace}/ skipped: it cannot be applied ({exc})")
    return number
