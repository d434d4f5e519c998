"""What an API token may do: a small scope vocabulary and the one rule that reads it.

A token carries a set of scopes:

- ``read``: read every area; ``full``: read and write every area;
- ``<area>:read`` / ``<area>:write``: one area only (``customers:read``, ``rates:write``);
  writing implies reading;
- ``switch``: the switch endpoints (call authorisation, CDR push) and nothing else; it never mixes
  with the others, because a switch's token sits in a softswitch's configuration file.

Where a token may look (its customer subtree, or everything for an operator token) is a separate
question, answered by the token's owner, not by its scopes.
"""

from __future__ import annotations

from collections.abc import Iterable

READ, FULL, SWITCH = "read", "full", "switch"

#: The areas of the management API, each a family of objects a person manages together.
AREAS: dict[str, str] = {
    "customers": "customers and their reseller tree",
    "accounts": "accounts, SIP devices and IP devices",
    "dids": "DIDs and DID plans",
    "plans": "service plans",
    "rates": "tariffs and their rates",
    "routing": "destination sets, vendors, connections, routing groups, offers, dialing routes, translation rules, POPs",
    "billing": "transactions (read only here)",
    "cdrs": "call detail records",
    "audit": "the audit log (operator tokens only)",
}

#: Every scope a token may carry, with what it allows (shown in the back office and the docs).
VOCABULARY: dict[str, str] = {
    READ: "read every area",
    FULL: "read and write every area",
    SWITCH: "a switch: call authorisation and CDR push only",
    **{f"{area}:read": f"read {what}" for area, what in AREAS.items()},
    **{f"{area}:write": f"read and write {what}" for area, what in AREAS.items()},
}


def refusals(scopes: Iterable[str]) -> list[str]:
    """Why a set of scopes cannot be stored (empty: it can): unknown names, ``switch`` mixed with others."""
    given = list(scopes)
    problems = [
        f"scope {s!r} is refused: not a scope (known: {', '.join(VOCABULARY)})" for s in given if s not in VOCABULARY
    ]
    if SWITCH in given and len(set(given)) > 1:
        problems.append("scope 'switch' is refused: a switch token carries no other scope")
    if not given:
        problems.append("scopes [] is refused: a token needs at least one scope")
    return problems


def allows(scopes: Iterable[str], area: str, write: bool) -> bool:
    """May a token with these scopes read (``write=False``) or write this area?"""
    held = set(scopes)
    if SWITCH in held:
        return False
    if FULL in held or f"{area}:write" in held:
        return True
    return not write and (READ in held or f"{area}:read" in held)


def may_write_anything(scopes: Iterable[str]) -> bool:
    """True when some area is writable with these scopes (a read-only token is refused every write)."""
    return any(s == FULL or s.endswith(":write") for s in scopes)
