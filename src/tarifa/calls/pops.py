"""Which POP a simulated call arrives at (back-office "Simulate a call", ``tarifa call simulate``).

A real call's POP comes from the switch's token; a simulation names it. Both doors offer the
same thing: the known POPs (the account's allowed ones first), an unknown name refused naming
the known ones, and, for an account restricted to exactly one POP, that POP by default.
"""

from __future__ import annotations

from typing import Any

from tarifa.routing.models import Pop


def pop_names(account: Any) -> tuple[list[str], list[str]]:
    """(the POPs the account may call through, the other known POPs), each sorted by name.
    An account without a POP restriction may call through every POP: all are "allowed"."""
    known = sorted(Pop.objects.values_list("name", flat=True))
    allowed = sorted(account.pop_restriction.values_list("name", flat=True))
    if not allowed:
        return known, []
    return allowed, [name for name in known if name not in allowed]


def default_pop(account: Any) -> str:
    """The account's only allowed POP, or "" when it has none or several."""
    allowed = list(account.pop_restriction.values_list("name", flat=True)[:2])
    return allowed[0] if len(allowed) == 1 else ""


def pop_problem(account: Any, pop: str) -> str | None:
    """Why ``pop`` cannot be simulated (not a known POP), or None; the rule names the known POPs."""
    if not pop:
        return None
    allowed, others = pop_names(account)
    known = sorted(allowed + others)
    if pop in known:
        return None
    return f"must be one of the known POPs: {', '.join(known)}" if known else "no POP is defined (Routing > POPs)"
