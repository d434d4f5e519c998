"""DID use cases: find, search, assign, release, change status. The one way the CLI, the back
office, and later the API and the portal change a number's life cycle.

Each use case runs in one database transaction with the DID's row locked (``select_for_update``),
so two people assigning the same number at once get one assignment and one refusal that says why.
The rules (which status may follow which, when a quarantine ends, why a number is not available)
are :mod:`tarifa.core.dids`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pycountry
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from tarifa import config
from tarifa.core.dids import (
    DidState,
    NumberRefused,
    did_date_problem,
    parse_number,
    pattern_regex,
    quarantine_end,
    transition_problem,
    unavailable_reason,
)
from tarifa.customers.models import Account
from tarifa.customers.signals import charged_span
from tarifa.dids.choices import DidDestination, DidStatus
from tarifa.dids.models import Did, DidPlan
from tarifa.dids.signals import did_releasing


class DidRefused(Exception):
    """A refused request; the message names the field, the value and the rule."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field

    @classmethod
    def of(cls, field: str, value: object, rule: str) -> DidRefused:
        shown = repr(value) if isinstance(value, str) else ("(empty)" if value is None else str(value))
        return cls(f"{field} {shown} is refused: {rule}", field)


@dataclass(frozen=True, slots=True)
class DidOptions:
    """The seed's optional fields of an assignment (seed 002: MAC address, username, password,
    location / cost center, out-payment rate)."""

    mac_address: str = ""
    username: str = ""
    password: str = ""
    cost_center: str = ""
    out_payment_rate: Decimal = Decimal(0)


def today() -> date:
    """Today's date in UTC, the day every DID date is counted in."""
    return timezone.now().date()


def find_did(text: str) -> Did:
    """The stored DID for a number as typed (``+1 212 555 1234``, ``12125551234``)."""
    digits = "".join(ch for ch in text if ch.isdigit())
    did = Did.objects.filter(number=digits).first() if digits else None
    if did is None:
        raise DidRefused.of("number", text, "no DID in the inventory has this number")
    return did


def find_account(text: str, *, by_id: bool = False) -> Account:
    """The account an operator names by its code, else its name (``by_id``: else its id).

    Names are not unique (two customers may each have an "Office"): a name that several accounts
    share is refused naming their codes, never one picked silently."""
    text = text.strip()
    found = Account.objects.filter(account_code=text).first() if text else None
    if found is not None:
        return found
    named = list(Account.objects.filter(name=text).order_by("account_code")[:6]) if text else []
    if len(named) > 1:
        codes = ", ".join(a.account_code for a in named[:5]) + (", ..." if len(named) > 5 else "")
        raise DidRefused.of("account", text, f"several accounts have this name ({codes}); give the account code")
    if named:
        return named[0]
    if by_id and text.isdigit() and len(text) <= 18:
        by_pk = Account.objects.filter(pk=int(text)).first()
        if by_pk is not None:
            return by_pk
    raise DidRefused.of("account", text, f"no account has this code{', name or id' if by_id else ' or name'}")


def available_q(on: date) -> Q:
    """The inventory query for "can be sold on ``on``": available, or quarantined until no later
    than that day (the quarantine rule of :func:`tarifa.core.dids.effective_status`, as SQL)."""
    return Q(status=DidStatus.AVAILABLE) | Q(status=DidStatus.QUARANTINED, quarantine_until__lte=on)


def search_dids(
    *,
    country: str | None = None,
    area_code: str | None = None,
    pattern: str | None = None,
    status: str | None = DidState.AVAILABLE.value,
    on: date | None = None,
) -> QuerySet[Did]:
    """Numbers by country (ISO code), area code and a pattern on the local number (``555*``).

    ``status`` ``available`` (the default) means sellable on ``on`` (an ended quarantine
    included); any other status is matched as stored; ``None`` matches every status."""
    found = Did.objects.all()
    if country:
        code = country.strip().upper()
        if len(code) != 2 or not code.isalpha():
            raise DidRefused.of("country", country, "must be an ISO 3166 alpha-2 code such as US")
        if pycountry.countries.get(alpha_2=code) is None:
            raise DidRefused.of("country", country, "is not a country: must be an ISO 3166 alpha-2 code such as US")
        found = found.filter(country=code)
    if area_code:
        if not area_code.isdigit() or len(area_code) > 8:
            raise DidRefused.of("area code", area_code, "must be 1 to 8 digits")
        found = found.filter(area_code=area_code)
    if pattern is not None:  # an empty pattern is a mistake, not "any number" (pattern_regex says why)
        try:
            found = found.filter(local_number__regex=pattern_regex(pattern))
        except ValueError as exc:
            raise DidRefused(str(exc), "pattern") from None
    if status:
        if status not in DidStatus.values:
            raise DidRefused.of("status", status, "must be one of " + ", ".join(DidStatus.values))
        if status == DidStatus.AVAILABLE:
            found = found.filter(available_q(on or today()))
        elif status == DidStatus.QUARANTINED:
            found = found.filter(status=status, quarantine_until__gt=on or today())
        else:
            found = found.filter(status=status)
    return found.order_by("number")


def _locked(did: Did) -> Did:
    """The DID's row, locked for the rest of the transaction, as committed by whoever held it before.

    No ``select_related``: a row read after waiting for its lock carries the other transaction's
    new values, but an outer join made before the wait does not (PostgreSQL returned the new
    account id with no account); the account is read afterwards, in a statement of its own."""
    return Did.objects.select_for_update().get(pk=did.pk)


def _checked(did: Did) -> None:
    """The model's own rules (field validators, status/account consistency) as one refusal."""
    try:
        did.full_clean()
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise DidRefused(" ".join(messages), field) from None


@transaction.atomic
def assign_did(
    did: Did,
    account: Account,
    plan: DidPlan,
    activation_date: date | None = None,
    options: DidOptions | None = None,
    *,
    on: date | None = None,
) -> Did:
    """Put an available (or reserved) number on ``account`` with ``plan`` from ``activation_date``
    (default today). A number that cannot be sold is refused with the reason: its status, the
    account it is on, or the day its quarantine ends."""
    when = on or today()
    did = _locked(did)
    holder = str(did.account) if did.account_id else ""
    reason = unavailable_reason(did.status, did.quarantine_until, when, holder)
    if reason is not None:
        raise DidRefused.of("number", did.number, f"cannot be assigned: {reason}")
    if account.status != "active":
        raise DidRefused.of("account", str(account), f"is {account.status}; numbers are assigned to active accounts")
    if activation_date is not None and (problem := did_date_problem(activation_date)) is not None:
        raise DidRefused.of("activation date", activation_date.isoformat(), problem)
    opts = options or DidOptions()
    did.account, did.plan = account, plan
    did.activation_date = activation_date or when
    did.status, did.quarantine_until = DidStatus.ASSIGNED, None
    did.mac_address, did.username, did.password = opts.mac_address, opts.username, opts.password
    did.cost_center, did.out_payment_rate = opts.cost_center, opts.out_payment_rate
    _checked(did)
    did.save()
    return did


@transaction.atomic
def release_did(did: Did, on: date | None = None, *, quarantine_days: int | None = None) -> Did:
    """Take a number off its account on ``on`` (default today) and quarantine it for
    ``quarantine_days`` (default TARIFA_DID_QUARANTINE_DAYS): it can be sold again from
    ``on + days``. The assignment's fields (plan, dates, credentials, cost center) are cleared."""
    current = today()
    when = on or current
    if (problem := did_date_problem(when)) is not None:
        raise DidRefused.of("release date", when.isoformat(), problem)
    if when > current:
        raise DidRefused.of(
            "release date",
            when.isoformat(),
            f"must not be after today ({current.isoformat()}); a number is released on the day it leaves, never ahead",
        )
    did = _locked(did)
    if did.account_id is None:
        raise DidRefused.of("number", did.number, f"cannot be released: it is {did.status}, not on an account")
    problem = transition_problem(did.status, DidStatus.QUARANTINED)
    if problem is not None:
        raise DidRefused.of("number", did.number, f"cannot be released: {problem}")
    if did.activation_date is not None and when < did.activation_date:
        raise DidRefused.of(
            "release date",
            when.isoformat(),
            f"must be on or after the activation date {did.activation_date.isoformat()}",
        )
    charged = charged_span("did", did.pk, activation=did.activation_date, periods_only=True)
    if did.activation_date is not None and charged is not None and when <= charged.through:
        following = charged.through + timedelta(days=1)
        raise DidRefused.of(
            "release date",
            when.isoformat(),
            f"the number is already charged through {charged.through.isoformat()}: "
            f"release it on or after {following.isoformat()}",
        )
    virtual = list(did.virtual_numbers.order_by("number").values_list("number", flat=True)[:6])
    if virtual:
        shown = ", ".join(virtual[:5]) + (", ..." if len(virtual) > 5 else "")
        raise DidRefused.of(
            "number",
            did.number,
            f"cannot be released: it is the primary DID of the virtual numbers {shown}; move or remove them first",
        )
    days = config.did_quarantine_days() if quarantine_days is None else quarantine_days
    try:
        until = quarantine_end(when, days)
    except ValueError as exc:
        raise DidRefused(str(exc), "quarantine days") from None
    # what the number owes up to today is posted while it still knows its account and plan
    did_releasing.send(sender=Did, did=did, on=when)
    did.account, did.plan, did.activation_date = None, None, None
    did.status, did.quarantine_until = DidStatus.QUARANTINED, until
    did.mac_address = did.username = did.password = did.cost_center = ""
    did.out_payment_rate = Decimal(0)
    did.destination, did.sip_device, did.forward_number = DidDestination.ACCOUNT, None, ""
    did.save()
    return did


@transaction.atomic
def set_status(did: Did, status: str, *, on: date | None = None) -> Did:
    """An operator's status change (reserve, porting, disable, back to available), checked
    against :data:`tarifa.core.dids.TRANSITIONS`. Assigning and releasing have their own use
    cases (they need and clear an account)."""
    when = on or today()
    did = _locked(did)
    if status not in DidStatus.values:
        raise DidRefused.of("status", status, "must be one of " + ", ".join(DidStatus.values))
    if status in (DidStatus.ASSIGNED, DidStatus.QUARANTINED):
        raise DidRefused.of("status", status, "use assign or release, which set or clear the account")
    current = did.effective_status(when)
    problem = transition_problem(current, status)
    if problem is not None:
        raise DidRefused.of("status", status, problem)
    if status == DidStatus.AVAILABLE and did.account_id is not None:
        raise DidRefused.of("status", status, f"the number is on {did.account}: release it instead")
    did.status = status
    if status != DidStatus.QUARANTINED:
        did.quarantine_until = None
    _checked(did)
    did.save()
    return did


def parse_typed_number(text: str) -> str:
    """A number as typed -> E.164 digits, refused with the rule when it is not a valid number."""
    try:
        return parse_number(text).number
    except NumberRefused as exc:
        raise DidRefused.of("number", text, str(exc)) from None


__all__ = [
    "DidOptions",
    "DidRefused",
    "assign_did",
    "available_q",
    "find_account",
    "find_did",
    "parse_typed_number",
    "release_did",
    "search_dids",
    "set_status",
    "today",
]
