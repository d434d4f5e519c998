"""Number translation rules (seed 003): ordered regular-expression rewrites.

A rule may be conditioned on the destination's prefix ("change CLI based on DST prefix"); the
first rule whose pattern matches rewrites the number, and processing continues with the next
rules on the rewritten number (so rules compose, in priority order).
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


def apply(rules: Iterable[Rule], kind: str, number: str, destination: str) -> str:
    """Rewrite ``number`` with the rules of ``kind``; ``destination`` is checked against dst_prefix."""
    for rule in rules:
        if rule.kind != kind:
            continue
        if rule.dst_prefix and not destination.lstrip("+").startswith(rule.dst_prefix):
            continue
        pattern = _compiled(rule.match)
        if pattern.search(number):
            number = pattern.sub(rule.replace, number, count=1)
    return number
