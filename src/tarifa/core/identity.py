"""Which account a call belongs to, from the identities its switch reported.

This is Tarifa's one matching order. Call authorisation (``tarifa.core.authorization``), CDR rating
row by row (``tarifa.cdrs.matching``) and vectorised (``tarifa.cdrs.frame_rating``) all use it, so a call is
charged to the account it was authorised for. Inbound calls are matched by their DID before this
order; each path does that itself.

The order of the identities, most precise first:

1. ``sip_user``: a SIP device login (unique);
2. ``trunk``: an account's trunk name;
3. ``extension``: an account's PBX extension (or a virtual number), *scoped to its PBX*;
4. ``account_code``: an account's code;
5. ``source_ip``: an IP device's address (unique).

The first identity the record carries that names at least one account decides:

* If it names one account, that is the account. The later identities are not consulted:
  a SIP login says more than an address.
* If it names several (extension ``1000`` at four customers, a trunk name used twice), each
  other identity the record carries narrows the candidates. It keeps the accounts it names
  and the accounts of their customers. An IP device of Initech's PBX narrows extension 1000 to
  Initech's extension 1000. ``account_code`` may also name a *customer* (the tenant a
  multi-tenant PBX reports), and then narrows to that customer's accounts. An identity that
  names nothing we know says nothing and is skipped. If exactly one candidate is left, that
  is the account. Otherwise the call is :data:`AMBIGUOUS`: a wrong tenant must never be
  charged (or authorised) because its row came first.
* If no identity names an account, the result is :data:`NO_ACCOUNT`.

An extension is a number inside one PBX, and tenants' PBXs reuse the same numbers, so an
extension only counts when the record says which PBX it comes from (docs/services.md):

* an extension registered with a PBX (the PBX's IP device address, ``pbx``) matches only a
  record whose ``source_ip`` is that address;
* an extension without a PBX matches only a record whose other identities name its own
  customer: the source IP of one of the customer's IP devices, one of its trunks or accounts,
  or its tenant code in ``account_code``.

An extension whose holders are all out of scope says nothing (the later identities are tried:
the PBX's own IP device takes the call, "all traffic from the address"). If nothing else names
an account either, the result is :data:`UNKNOWN_PBX`: extension ``1000`` from a PBX nobody
registered is never charged to whichever tenant happens to have a ``1000``.

Pure: plain data in, plain data out, no Django.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

ORDER: Final = ("sip_user", "trunk", "extension", "account_code", "source_ip")
NO_ACCOUNT: Final = "no_account"
AMBIGUOUS: Final = "ambiguous_account"
UNKNOWN_PBX: Final = "unknown_pbx"


@dataclass(frozen=True, slots=True)
class Identity:
    """What a call record or an authorisation request says about who is calling."""

    sip_user: str = ""
    trunk: str = ""
    extension: str = ""
    account_code: str = ""
    source_ip: str = ""


@dataclass(frozen=True, slots=True)
class Resolution:
    """The account a call belongs to, or why there is none.

    ``via`` is the identity that decided (one of :data:`ORDER`). ``candidates`` lists the
    accounts an ambiguous identity could mean, or (:data:`UNKNOWN_PBX`) the accounts holding the
    extension on other PBXs.
    """

    account_id: int | None
    reason: str = ""  # "", NO_ACCOUNT or AMBIGUOUS
    via: str = ""
    candidates: tuple[int, ...] = ()


class AccountIndex:
    """Identities to accounts, built once per snapshot or import run.

    Only the accounts given to :meth:`account` are matched. CDR rating gives the active ones;
    authorisation gives them all, so that a disabled account is refused as disabled.
    """

    def __init__(self) -> None:
        self.customer_of: dict[int, int] = {}
        self._names: dict[str, dict[str, tuple[int, ...]]] = {kind: {} for kind in ORDER}
        self._tenants: dict[str, int] = {}
        self._pbx: dict[tuple[int, str], str] = {}  # (account, extension) -> the PBX's address

    def account(
        self, account_id: int, customer_id: int, *, code: str, trunk: str = "", extension: str = "", pbx: str = ""
    ) -> None:
        """Add an account with its code and, for trunk and PBX-extension accounts, its identifier
        (``pbx``: the address of the PBX the extension belongs to; empty: any PBX of the customer)."""
        self.customer_of[account_id] = customer_id
        self._add("account_code", code, account_id)
        if trunk:
            self._add("trunk", trunk, account_id)
        if extension:
            self.extension(account_id, extension, pbx)

    def extension(self, account_id: int, number: str, pbx: str = "") -> None:
        """Add an extension of an account: its own, or a virtual number (seed 002) it holds."""
        self._add("extension", number, account_id)
        if pbx:
            self._pbx[(account_id, number)] = pbx

    def device(self, kind: str, key: str, account_id: int) -> None:
        """Add a SIP device (``kind`` ``sip_user``, by login) or an IP device (``source_ip``, by address)."""
        if kind not in ("sip_user", "source_ip"):
            raise ValueError(f"device kind {kind!r} must be sip_user or source_ip")
        self._add(kind, key, account_id)

    def tenant(self, code: str, customer_id: int) -> None:
        """Add a customer's account code: a PBX reports it as the tenant of its extensions."""
        self._tenants[code] = customer_id

    def _add(self, kind: str, key: str, account_id: int) -> None:
        known = self._names[kind].get(key, ())
        if account_id not in known:
            self._names[kind][key] = (*known, account_id)

    def named(self, kind: str, value: str) -> tuple[int, ...]:
        """The known accounts that identity ``kind`` with ``value`` names."""
        return tuple(a for a in self._names[kind].get(value, ()) if a in self.customer_of)

    def unique(self, kind: str) -> dict[str, int]:
        """The values of identity ``kind`` that name exactly one known account (vectorised lookups)."""
        out = {}
        for key in self._names[kind]:
            found = self.named(kind, key)
            if len(found) == 1:
                out[key] = found[0]
        return out

    def ambiguous(self, kind: str) -> set[str]:
        """The values of identity ``kind`` that name more than one known account."""
        return {key for key in self._names[kind] if len(self.named(kind, key)) > 1}

    def in_scope(self, account_id: int, extension: str, identity: Identity | Mapping[str, str]) -> bool:
        """Whether the record comes from the PBX of the account's ``extension`` (module docstring)."""
        values = {kind: _value(identity, kind) for kind in ORDER}
        pbx = self._pbx.get((account_id, extension), "")
        if pbx:
            return values["source_ip"] == pbx
        return self.customer_of.get(account_id) in self._customers_named(values, skip="extension")

    def _customers_named(self, values: Mapping[str, str], skip: str) -> set[int]:
        """The customers that the record's identities other than ``skip`` name."""
        customers: set[int] = set()
        for other in ORDER:
            if other == skip or not values[other]:
                continue
            customers |= {self.customer_of[a] for a in self.named(other, values[other])}
            if other == "account_code" and values[other] in self._tenants:
                customers.add(self._tenants[values[other]])
        return customers

    def resolve(self, identity: Identity | Mapping[str, str]) -> Resolution:
        """The account of a call, in the order of this module's docstring."""
        values = {kind: _value(identity, kind) for kind in ORDER}
        out_of_scope: tuple[int, ...] = ()
        for kind in ORDER:
            value = values[kind]
            if not value:
                continue
            found = self.named(kind, value)
            if kind == "extension" and found:
                scoped = tuple(a for a in found if self.in_scope(a, value, values))
                if not scoped:
                    out_of_scope = found
                    continue
                found = scoped
            if not found:
                continue
            if len(found) == 1:
                return Resolution(found[0], via=kind)
            left = set(found)
            for other in ORDER:
                if other == kind or not values[other]:
                    continue
                accounts = set(self.named(other, values[other]))
                customers = {self.customer_of[a] for a in accounts}
                if other == "account_code" and values[other] in self._tenants:
                    customers.add(self._tenants[values[other]])
                if accounts or customers:
                    left = {a for a in left if a in accounts or self.customer_of[a] in customers}
            if len(left) == 1:
                return Resolution(left.pop(), via=kind)
            return Resolution(None, AMBIGUOUS, via=kind, candidates=tuple(sorted(left or found)))
        if out_of_scope:
            return Resolution(None, UNKNOWN_PBX, via="extension", candidates=tuple(sorted(out_of_scope)))
        return Resolution(None, NO_ACCOUNT)


def _value(identity: Identity | Mapping[str, str], kind: str) -> str:
    value = identity.get(kind) if isinstance(identity, Mapping) else getattr(identity, kind)
    return value or ""


__all__ = ["AMBIGUOUS", "NO_ACCOUNT", "ORDER", "UNKNOWN_PBX", "AccountIndex", "Identity", "Resolution"]
