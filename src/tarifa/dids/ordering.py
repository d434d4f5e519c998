"""Ordering a number for an account: from the available inventory first, else from the provider.

The function the portal and the API call (and ``tarifa did order``). Why nothing is ever left
half-assigned:

* from the inventory, the number is picked and assigned in one transaction with its row locked
  (PostgreSQL skips rows another order holds), so a failure rolls the whole choice back;
* from a provider, nothing is written before the provider has sold the number; the number is then
  stored and assigned in one transaction. When that transaction fails (the account was disabled
  meanwhile, another process stored the number), the number is released back to the provider and
  the refusal is raised; when the order itself fails or times out, nothing was written, and a
  number the provider may have sold before the time-out is released back (best effort).
  No charge is posted by ordering: recurring charges start from the stored assignment.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction

from tarifa.core.dids import NumberRefused, parse_number, pattern_regex
from tarifa.customers.models import Account
from tarifa.dids.models import Did, DidPlan
from tarifa.dids.providers import DidProvider, ProviderError, configured_provider
from tarifa.dids.service import DidOptions, DidRefused, assign_did, search_dids, today


@dataclass(frozen=True, slots=True)
class OrderResult:
    did: Did
    source: Literal["inventory", "provider"]


def _inventory_pick(
    account: Account,
    plan: DidPlan,
    country: str,
    area_code: str | None,
    pattern: str | None,
    activation_date: date | None,
    options: DidOptions | None,
    when: date,
) -> Did | None:
    with transaction.atomic():
        candidates = search_dids(country=country, area_code=area_code, pattern=pattern, on=when)
        found = candidates.select_for_update(skip_locked=True).first()
        if found is None:
            return None
        return assign_did(found, account, plan, activation_date, options, on=when)


def order_did(
    account: Account,
    plan: DidPlan,
    *,
    country: str,
    area_code: str | None = None,
    pattern: str | None = None,
    activation_date: date | None = None,
    options: DidOptions | None = None,
    provider: DidProvider | None = None,
    use_provider: bool = True,
    on: date | None = None,
) -> OrderResult:
    """Assign a number of ``country`` (and ``area_code``, ``pattern``) to ``account``.

    ``provider`` defaults to the configured one (TARIFA_DID_PROVIDER_URL); ``use_provider=False``
    sells from the inventory only. Raises :class:`DidRefused` saying why nothing was assigned."""
    when = on or today()
    if account.status != "active":
        raise DidRefused.of("account", str(account), f"is {account.status}; numbers are assigned to active accounts")
    did = _inventory_pick(account, plan, country, area_code, pattern, activation_date, options, when)
    if did is not None:
        return OrderResult(did, "inventory")
    source = (provider or configured_provider()) if use_provider else None
    asked = ("country / area code", f"{country.upper()} / {area_code}") if area_code else ("country", country.upper())
    if source is None:
        why = "the provider was not asked (inventory only)" if not use_provider else "no provider is configured"
        raise DidRefused.of(*asked, f"no available number in the inventory, and {why}")
    try:
        offers = source.search(country.upper(), area_code, 5)
    except ProviderError as exc:
        raise DidRefused.of(*asked, f"no available number in the inventory, and {exc}") from None
    if not offers:
        raise DidRefused.of(*asked, "no available number in the inventory or at the provider")
    fitting = [o for o in offers if _fits(o.number, country, area_code, pattern)]
    if not fitting:  # the provider's answer is outside input: never buy what was not asked for
        raise DidRefused.of(
            *asked,
            f"no available number in the inventory, and the provider offered only numbers of other "
            f"countries, area codes or patterns (e.g. +{offers[0].number}); nothing was ordered",
        )
    offer = fitting[0]
    if Did.objects.filter(number=offer.number).exists():
        raise DidRefused.of("number", offer.number, "the provider offered a number the inventory holds already")
    try:
        ordered = source.order(offer.number)
    except ProviderError as exc:
        _release_quietly(source, offer.number)
        raise DidRefused.of("number", offer.number, f"the order failed, nothing was assigned: {exc}") from None
    except Exception:  # an adapter's own failure: what it may have bought goes back all the same
        _release_quietly(source, offer.number)
        raise
    if ordered.number != offer.number or not _fits(ordered.number, country, area_code, pattern):
        _release_quietly(source, ordered.number)
        _release_quietly(source, offer.number)
        raise DidRefused.of(
            "number",
            ordered.number,
            f"the provider sold another number than the ordered {offer.number}; it was released to the provider",
        )
    try:
        with transaction.atomic():
            stored = Did(number=ordered.number, monthly_cost=ordered.monthly_cost)
            stored.full_clean(exclude=["vendor", "plan", "account"])
            stored.save()
            did = assign_did(stored, account, plan, activation_date, options, on=when)
    except (DidRefused, DatabaseError, ValidationError) as exc:
        _release_quietly(source, ordered.number)
        if isinstance(exc, DidRefused):
            raise
        said = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        raise DidRefused.of(
            "number", ordered.number, f"could not be stored ({said}); it was released to the provider"
        ) from None
    except Exception:
        _release_quietly(source, ordered.number)
        raise
    return OrderResult(did, "provider")


def _fits(number: str, country: str, area_code: str | None, pattern: str | None) -> bool:
    """Whether a provider's number is of the country, area code and local pattern asked for."""
    try:
        parts = parse_number(number)
    except NumberRefused:
        return False
    if parts.country != country.strip().upper() or (area_code and parts.area_code != area_code):
        return False
    return not pattern or re.fullmatch(pattern_regex(pattern), parts.local_number) is not None


def _release_quietly(provider: DidProvider, number: str) -> None:
    """Give a number back after a failed order; a failure here is not the customer's problem
    (the order was refused already) and is left to the operator's reconciliation."""
    with contextlib.suppress(ProviderError):
        provider.release(number)


__all__ = ["OrderResult", "order_did"]
