"""Real-time call authorisation and least-cost routing (DESIGN.md §4-§6, seed 001 and 003).

``authorize_call`` answers a softswitch: may this call go, through which routes, with which
number, for how long. Read-mostly data comes from the process snapshot (``calls.cache``); the
per-call state — balance, reservations, concurrent calls, calls per second — is read and written
in one database transaction that locks the customer's balance row (and any limited connection),
so several processes on several machines stay exact.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F

from tarifa import config
from tarifa.calls import cache
from tarifa.calls.models import Reservation
from tarifa.core import classify as cls
from tarifa.core.deck import format_money as money
from tarifa.core.identity import AMBIGUOUS, NO_ACCOUNT, ORDER, Identity
from tarifa.core.numbering import InvalidNumber, normalize
from tarifa.core.periods import day_start, micros, month_start
from tarifa.core.rating import RateEntry, RateTerms, call_cost, max_duration
from tarifa.core.routes import Candidate, order
from tarifa.core.translate import apply as translate
from tarifa.db import any_of, call_prepared

logger = logging.getLogger("tarifa.calls")

SYSTEM_CAP = config.max_call_seconds()
RESERVATION_MARGIN = 120  # seconds a reservation outlives the call's max duration

# reason -> SIP status the switch answers with
SIP_CODES = {
    "unknown_account": 403, AMBIGUOUS: 403, "account_disabled": 403, "ip_not_allowed": 403, "pop_not_allowed": 403,
    "invalid_number": 484, "insufficient_funds": 402, "destination_forbidden": 403, "international_disabled": 403,
    "country_not_allowed": 403, "rate_above_cap": 403, "no_rate": 404, "concurrent_limit": 486, "cps_limit": 503,
    "no_route": 503, "loss_route": 503, "premium_rate_disabled": 403, "directory_411_only": 403,
}
FREE = RateTerms(price_1=Decimal(0), price_n=Decimal(0))


@dataclass
class CallRequest:
    call_id: str
    callee: str
    caller: str = ""
    source_ip: str = ""
    sip_user: str = ""
    trunk: str = ""
    did: str = ""
    account_code: str = ""
    extension: str = ""  # a PBX extension (with account_code as its tenant, core.identity)
    switch: str = ""
    pop: str = ""


@dataclass
class Decision:
    allowed: bool
    reason: str = ""
    sip_code: int = 200
    call_id: str = ""
    account: str = ""
    customer: str = ""
    number: str = ""
    destination_class: str = ""
    country: str = ""
    max_duration: int = 0
    caller_id: str = ""
    rate: dict[str, Any] | None = None
    media: dict[str, Any] | None = None
    routes: list[dict[str, Any]] = field(default_factory=list)
    reservation_id: int | None = None
    reserved: str = "0"
    trace: list[str] = field(default_factory=list)
    tracing: bool = True  # False: the steps are not written down (the switch did not ask for them)

    def refuse(self, reason: str, why: str) -> Decision:
        self.allowed, self.reason, self.sip_code = False, reason, SIP_CODES[reason]
        self.trace.append(f"REFUSED {reason} (SIP {self.sip_code}): {why}")
        return self


@dataclass
class _Plan:
    """What the checks decided before the database transaction."""

    account: Any
    device: cache.Device | None
    terms: RateTerms
    decimals: int
    rounding: str
    cap: int
    entry: RateEntry | None
    group: cache.Group | None
    candidates: list[tuple[cache.RouteEntry, Decimal]]  # (route, vendor price), in the group's policy order
    free: bool
    emergency: bool
    cap_cost: Decimal | None = None  # the cost of a call of ``cap`` seconds, once computed

    def cost(self, seconds: int) -> Decimal:
        """What a call of ``seconds`` costs at the plan's terms."""
        if self.free:
            return Decimal(0)
        if seconds != self.cap:
            return call_cost(self.terms, seconds, self.decimals, self.rounding)
        if self.cap_cost is None:
            self.cap_cost = call_cost(self.terms, self.cap, self.decimals, self.rounding)
        return self.cap_cost


_IDENTITY_LABELS = {"sip_user": "SIP user", "trunk": "trunk", "extension": "PBX extension",
                    "account_code": "account code", "source_ip": "source IP"}


def _identify(snap: cache.Snapshot, req: CallRequest, d: Decision) -> tuple[Any, cache.Device | None, Any]:
    """(account, device, inbound DID): the DID the switch names; else the identities in the one
    matching order of :mod:`tarifa.core.identity` (shared with CDR rating); else, when the
    request carries no identity at all, the callee as a DID. An identity naming several accounts
    that the others do not settle is refused as ``ambiguous_account`` here (the account is then
    None and ``d`` says why)."""

    def by_did(number: str) -> tuple[Any, None, Any]:
        did = snap.dids[number.lstrip("+")]
        if d.tracing:
            d.trace.append(f"inbound call to DID {did.number}")
        return snap.accounts.get(did.account_id), None, did

    if req.did and req.did.lstrip("+") in snap.dids:
        return by_did(req.did)
    identity = Identity(sip_user=req.sip_user, trunk=req.trunk, extension=req.extension,
                        account_code=req.account_code, source_ip=req.source_ip)
    found = snap.index.resolve(identity)
    if found.reason == NO_ACCOUNT:
        found = snap.index_all.resolve(identity)  # a disabled account: refused as disabled below
    label = f"{_IDENTITY_LABELS.get(found.via, found.via)} {getattr(req, found.via, '')!r}" if found.via else ""
    if found.account_id is not None:
        account = snap.accounts[found.account_id]
        device = {"sip_user": snap.by_sip, "source_ip": snap.by_ip}.get(found.via, {}).get(getattr(req, found.via))
        if device is not None and device.account_id != account.pk:
            device = None
        if d.tracing:
            d.trace.append(f"{label}: account {account.account_code}" + (f", device {device.key}" if device else ""))
        return account, device, None
    if found.reason == AMBIGUOUS:
        codes = ", ".join(snap.accounts[a].account_code for a in found.candidates)
        d.refuse(AMBIGUOUS, f"{label} names {len(found.candidates)} accounts ({codes}); "
                            "the request's other identities do not tell which")
        return None, None, None
    given = any(getattr(identity, kind) for kind in ORDER)
    if not given and req.callee.lstrip("+") in snap.dids:  # no caller identity: a call to one of our DIDs
        return by_did(req.callee)
    if d.tracing:
        d.trace.append("no account matches the identities in the request" if given else "no identity in the request")
    return None, None, None


def _ip_allowed(snap: cache.Snapshot, account: Any, source_ip: str) -> bool:
    networks = snap.networks.get(account.pk) or []
    if not networks:
        return True
    import ipaddress

    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return False
    return any(address in net for net in networks)


def _routing_group(snap: cache.Snapshot, account: Any, number: str, dclass: str) -> cache.Group | None:
    for pattern, group_id in snap.dialing_routes.get(account.customer_id, []):
        if re.search(pattern, number):
            return snap.groups.get(group_id)
    choice = {"domestic": account.domestic_route, "international": account.international_route,
              "tollfree": account.tollfree_route}.get(dclass, "value")
    carrier = account.tollfree_carrier if dclass == "tollfree" else ""
    for key in ((dclass, choice, carrier), (dclass, choice, ""), (dclass, "value", ""), ("international", choice, "")):
        group_id = snap.offers.get(key)
        if group_id is not None:
            return snap.groups.get(group_id)
    return next(iter(snap.groups.values()), None) if len(snap.groups) == 1 else None


def _pricing_tariff(account: Any, group: cache.Group | None, dclass: str) -> int:
    """Which tariff prices the call: the account's own tariff; else, when the account chose the
    premium route for this class and that route's group has a tariff, the group's (premium price
    list); else the customer's tariff (with its overrides)."""
    if account.tariff_id:
        return account.tariff_id
    choice = {"domestic": account.domestic_route, "international": account.international_route,
              "tollfree": account.tollfree_route}.get(dclass, "value")
    if choice == "premium" and group is not None and group.tariff_id:
        return group.tariff_id
    return account.customer.tariff_id


def _plan(snap: cache.Snapshot, req: CallRequest, d: Decision, now: datetime) -> _Plan | None:
    account, device, did = _identify(snap, req, d)
    if account is None:
        if d.reason != AMBIGUOUS:
            d.refuse("unknown_account", "no account matches the identity sent by the switch")
        return None
    customer = account.customer
    d.account, d.customer = account.account_code, customer.account_code
    if account.status != "active" or customer.status != "active":
        d.refuse("account_disabled", f"account {account.status}, customer {customer.status}")
        return None
    home = snap.homes[customer.pk]
    rules = snap.customer_rules.get(customer.pk, [])
    dialled, emergency = _dialled(rules, req.callee, home) if did is None else (req.callee, False)
    restricted = not emergency  # POP and IP restrictions guard money; an emergency call costs none (docs)
    if restricted and (req.source_ip and not _ip_allowed(snap, account, req.source_ip)
                       or (not req.source_ip and snap.networks.get(account.pk))):
        d.refuse("ip_not_allowed", f"{req.source_ip or 'no address'} is outside the account's IP restriction")
        return None
    pops = snap.pops.get(account.pk)
    if restricted and pops and req.pop not in pops:
        d.refuse("pop_not_allowed", f"POP {req.pop!r} is not among {sorted(pops)}")
        return None
    if d.tracing:
        d.trace.append(f"account {account.name} ({account.account_code}) of {customer.company}: active, "
                       + ("IP and POP allowed" if restricted else "IP and POP restrictions do not apply to emergency calls"))
    media = {
        "codecs": account.allowed_codecs or (customer.codecs if customer.codec_checking else []),
        "with_media": customer.call_with_media, "rtp_timeout": account.rtp_timeout,
        "rtp_hold_timeout": account.rtp_hold_timeout, "dtmf_mode": account.dtmf_mode,
    }
    d.media = media
    cap = min(SYSTEM_CAP, customer.max_call_duration)
    if did is not None:
        return _plan_inbound(snap, req, d, account, did, cap)

    caller = req.caller or account.caller_id_number  # seed 001: the account's caller ID when the device sends none
    d.caller_id = caller
    if d.tracing and caller != req.caller:
        d.trace.append(f"caller ID: the account's {caller!r} (the switch sent none)")
    if d.tracing and dialled != req.callee:
        d.trace.append(f"translation: callee {req.callee!r} -> {dialled!r}")
    if emergency:
        return _plan_emergency(snap, req, d, account, dialled, home)
    try:
        number = normalize(dialled, account.dialing_mode)
    except InvalidNumber as exc:
        d.refuse("invalid_number", f"{dialled!r}: {exc.reason}")
        return None
    d.number = number
    d.caller_id = translate(rules, "source", caller, number, d.trace if d.tracing else None)
    if d.tracing and d.caller_id != caller:
        d.trace.append(f"translation: caller {caller!r} -> {d.caller_id!r} (destination {number})")
    dest = cls.classify(dialled, number, home)
    d.destination_class, d.country = dest.number_class, dest.region
    if d.tracing:
        d.trace.append(f"number {number}: {dest.number_class}{' (abroad)' if dest.abroad else ''}, "
                       f"country {dest.region or '?'}, type {dest.number_type}")
    if not _restrictions_allow(account, dest, number, d):
        return None
    class_cap = account.max_call_time_international if dest.abroad else account.max_call_time_domestic
    if class_cap and dest.number_class != cls.DIRECTORY:
        cap = min(cap, class_cap)
    route_class = dest.route_class
    group = _routing_group(snap, account, number, route_class)
    tariff_id = _pricing_tariff(account, group, route_class)
    table, rounding = snap.tariff(tariff_id)
    entry = table.find(number, now)
    if entry is None:
        d.refuse("no_rate", f"tariff {tariff_id} has no rate for {number}")
        return None
    d.rate = {"prefix": entry.prefix, "destination": entry.destination, "price_1": money(entry.terms.price_1),
              "price_n": money(entry.terms.price_n), "interval_1": entry.terms.interval_1,
              "interval_n": entry.terms.interval_n, "connect_fee": money(entry.terms.connect_fee)}
    if d.tracing:
        d.trace.append(f"rate {entry.prefix} {entry.destination}: {money(entry.terms.price_1)}/min "
                       f"{entry.terms.interval_1}/{entry.terms.interval_n} (tariff {tariff_id})")
    if entry.terms.forbidden:
        d.refuse("destination_forbidden", f"prefix {entry.prefix} is forbidden in the tariff")
        return None
    if dest.abroad and account.international_rate_cap is not None \
            and entry.terms.price_1 > account.international_rate_cap:
        d.refuse("rate_above_cap", f"{entry.terms.price_1}/min is above the cap {account.international_rate_cap}/min")
        return None
    if group is None:
        d.refuse("no_route", f"no routing group for {route_class} calls")
        return None
    candidates = []
    for route in group.entries:
        vendor_entry = snap.destination_set(route.destination_set_id).find(number, now)
        if vendor_entry is None or vendor_entry.terms.forbidden:
            continue
        candidates.append((route, vendor_entry.terms.price_1))
    if not candidates:
        d.refuse("no_route", f"no connection of group {group.name!r} has a price for {number}")
        return None
    if customer.deny_loss_routes:
        kept = [(r, p) for r, p in candidates if p <= entry.terms.price_1]
        if not kept:
            d.refuse("loss_route", f"every route costs more than the customer's {entry.terms.price_1}/min")
            return None
        if d.tracing and len(kept) < len(candidates):
            d.trace.append(f"dropped {len(candidates) - len(kept)} loss route(s)")
        candidates = kept
    free = entry.terms.price_1 == 0 and entry.terms.price_n == 0 and entry.terms.connect_fee == 0 \
        and entry.terms.min_charge == 0
    return _Plan(account, device, entry.terms, customer.billing_decimals, rounding, cap, entry, group,
                 _ranked(candidates, group, d.call_id), free, False)


def _dialled(rules: list[Any], callee: str, home: str) -> tuple[str, bool]:
    """(the number after the customer's destination rules, whether it is an emergency number).
    An emergency number dialled as such stays what it is, whatever the rules would make of it
    (a generic rewrite never applies to 911); one the rules make (a PBX's outside-line 9 + 911)
    counts too."""
    if cls.is_emergency(callee, home):
        return callee.lstrip("+"), True
    dialled = translate(rules, "destination", callee, callee)
    return dialled, dialled != callee and cls.is_emergency(dialled, home)


def _restrictions_allow(account: Any, dest: cls.Destination, number: str, d: Decision) -> bool:
    """The account's restrictions on the destination (seed 001); False: ``d`` says why."""
    if dest.number_class == cls.DIRECTORY:
        if dest.number_type == cls.DIRECTORY_555:
            d.refuse("directory_411_only", f"{number} (NPA-555-1212) is not offered: dial 411 for directory assistance")
            return False
        if not account.allow_411:
            d.refuse("destination_forbidden", "411 directory assistance is not allowed for this account")
            return False
    if dest.number_class == cls.PREMIUM_RATE:
        if not account.allow_premium_rate:
            d.refuse("premium_rate_disabled", f"{number} is a premium-rate number ({dest.region or 'unknown country'}); "
                                              "premium-rate calls are off for this account")
            return False
        if d.tracing:
            d.trace.append("premium-rate calls allowed for this account")
    if dest.abroad:
        if not account.allow_international:
            why = {cls.PREMIUM_RATE: " (a premium-rate number abroad)",
                   cls.UNKNOWN: " (a number that may be abroad: its country is unknown)"}.get(dest.number_class, "")
            d.refuse("international_disabled", f"international calls are off for this account{why}")
            return False
        if account.allowed_countries and dest.region not in account.allowed_countries:
            d.refuse("country_not_allowed", f"{dest.region or 'unknown country'} is not in {account.allowed_countries}")
            return False
    return True


def _plan_inbound(snap: cache.Snapshot, req: CallRequest, d: Decision, account: Any, did: Any, cap: int) -> _Plan:
    plan = did.plan
    terms = FREE if plan is None else RateTerms(
        price_1=plan.inbound_rate, price_n=plan.inbound_rate, interval_1=plan.inbound_interval_1,
        interval_n=plan.inbound_interval_n,
    )
    d.number, d.destination_class = did.number, "inbound"
    if did.destination == "forward":
        d.routes = [{"type": "forward", "number": did.forward_number}]
    elif did.destination == "sip_device" and did.sip_device:
        d.routes = [{"type": "sip_device", "login": did.sip_device.login}]
    else:
        d.routes = [{"type": "sip_device", "login": login} for login, dev in snap.by_sip.items()
                    if dev.account_id == account.pk]
    d.rate = {"prefix": did.number, "destination": "DID inbound", "price_1": money(terms.price_1),
              "price_n": money(terms.price_n), "interval_1": terms.interval_1, "interval_n": terms.interval_n,
              "connect_fee": "0"}
    if d.tracing:
        d.trace.append(f"inbound: {terms.price_1}/min, delivered to {d.routes}")
    free = terms.price_1 == 0 and terms.price_n == 0
    return _Plan(account, None, terms, account.customer.billing_decimals, "half_up", cap, None, None, [], free, False)


def _plan_emergency(snap: cache.Snapshot, req: CallRequest, d: Decision, account: Any, dialled: str,
                    home: str) -> _Plan:
    """Emergency calls always go, whatever the balance and restrictions (seed 001 e911 rule), and
    reach each vendor as the emergency number (``_route_dicts``)."""
    d.number, d.destination_class, d.country = dialled.lstrip("+"), cls.EMERGENCY, home
    own = snap.account_dids.get(account.pk, set())
    caller = (d.caller_id or req.caller).lstrip("+")
    if caller not in own and account.e911_caller_id:
        d.caller_id = account.e911_caller_id
        if d.tracing:
            d.trace.append(f"emergency: caller ID {caller!r} is not one of the account's DIDs, using e911 caller ID")
    else:
        if d.tracing:
            d.trace.append("emergency: always allowed")
    group = _routing_group(snap, account, d.number, cls.EMERGENCY)
    candidates = [(route, Decimal(0)) for route in (group.entries if group else [])]
    return _Plan(account, None, FREE, account.customer.billing_decimals, "half_up", SYSTEM_CAP, None, group,
                 _ranked(candidates, group, d.call_id), True, True)


def _ranked(candidates: list[tuple[cache.RouteEntry, Decimal]], group: cache.Group | None, call_id: str
            ) -> list[tuple[cache.RouteEntry, Decimal]]:
    """The candidates in the routing group's policy order. Each policy ranks a connection by its
    own key (price, priority, or a weight drawn from the call id), so dropping the connections at
    capacity later keeps the rest in this order: the ranking is done once, before any state."""
    by_id = {route.connection_id: (route, price) for route, price in candidates}
    ranking = order([Candidate(r.connection_id, p, r.priority, r.weight) for r, p in candidates],
                    group.policy if group else "priority", call_id)
    return [by_id[c.connection_id] for c in ranking]


# --- the transaction --------------------------------------------------------------------------------


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


class _Trip:
    """The transaction of one authorisation on PostgreSQL in autocommit mode (a server's request):
    ``BEGIN`` travels with the first statement and ``COMMIT`` with the reservation, so an allowed
    call costs two round trips (each a simple query of two statements)."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open = False


def _autocommit_postgresql() -> bool:
    """PostgreSQL in autocommit mode outside any caller's transaction: a server's request."""
    return connection.vendor == "postgresql" and connection.get_autocommit() and not connection.in_atomic_block


def _one_trip() -> bool:
    """Whether this authorisation may run as a ``_Trip``: a server's request on PostgreSQL with
    client-side binding (several statements in one query)."""
    return _autocommit_postgresql() and not connection.settings_dict["OPTIONS"].get("server_side_binding")


@contextmanager
def _transaction(reserve: bool) -> Iterator[_Trip | None]:
    """The decision's transaction: a ``_Trip`` when possible, else Django's atomic block (SQLite,
    or inside a caller's transaction: a savepoint). A simulation (no ``reserve``) rolls back."""
    if not _one_trip():
        with transaction.atomic():
            yield None
            if not reserve:
                transaction.set_rollback(True)
        return
    trip = _Trip()
    try:
        yield trip
    except BaseException:
        if trip.open:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("ROLLBACK")
            except Exception:
                connection.close()  # state unknown: never reuse it
        raise
    if trip.open:  # refused, or a simulation: nothing to keep
        with connection.cursor() as cursor:
            cursor.execute("COMMIT" if reserve else "ROLLBACK")


def _lock_and_read(account: Any, device: cache.Device | None, now: datetime, scopes: list[str], second: int,
                   limited: list[int], trip: _Trip | None
                   ) -> tuple[tuple[Decimal, Decimal, str], dict[str, Any], dict[str, int], dict[int, int]]:
    """Take the call's locks, then read its balance, reservations and CPS counters: (balance, state,
    cps by scope, live reservations by limited connection).

    On PostgreSQL one call of ``tarifa_call_state`` (migration calls 0007): the customer's and the
    limited connections' advisory locks, then one statement whose snapshot is taken after them.
    On SQLite the transaction (``BEGIN IMMEDIATE``) already holds the database's one write lock:
    ``_read_balance``, ``_state`` and ``_connection_state`` read."""
    if connection.vendor != "postgresql":
        balance = _read_balance(account)
        st, cps = _state(account, device, now, scopes, second)
        busy: dict[int, int] = {}
        if limited:
            busy, connection_cps = _connection_state(limited, now, second)
            cps.update(connection_cps)
        return balance, st, cps, busy
    with connection.cursor() as cursor:
        sql = "SELECT * FROM tarifa_call_state(%s, %s, %s, %s, %s, %s::text[], %s, %s::bigint[])"
        params = [account.customer_id, account.pk, account.balance_mode == "own", device.key if device else "", now,
                  scopes + [f"n:{cid}" for cid in limited], second, limited]
        if trip is not None:
            trip.open = True
            cursor.execute("BEGIN; " + sql, params)
            cursor.nextset()
        else:
            cursor.execute(sql, params)
        row = cursor.fetchone()
    return _read_state(account, row)


def _read_state(account: Any, row: tuple[Any, ...]
                ) -> tuple[tuple[Decimal, Decimal, str], dict[str, Any], dict[str, int], dict[int, int]]:
    """The first 13 columns of ``tarifa_call_state`` (and ``tarifa_call_authorize``), as
    ``_lock_and_read`` returns them."""
    (amount, credit, billing, calls, reserved, account_calls, account_units, device_calls, shared_units,
     cps_scopes, cps_counts, connection_ids, connection_calls) = row[:13]
    if billing is None:  # as the plain statements: no customer row is an error, not an empty balance
        raise LookupError(f"customer {account.customer_id} not found")
    units = Reservation._meta.get_field("amount")
    state = {
        "customer_calls": calls, "account_calls": account_calls, "device_calls": device_calls,
        "reserved": units.from_db_value(reserved, None, connection),
        "shared_reserved": units.from_db_value(shared_units, None, connection),
        "account_reserved": units.from_db_value(account_units, None, connection),
    }
    return ((units.from_db_value(amount, None, connection), units.from_db_value(credit, None, connection), billing),
            state, dict(zip(cps_scopes or [], cps_counts or [])), dict(zip(connection_ids or [], connection_calls or [])))


def _read_packed(account: Any, row: tuple[Any, ...]
                 ) -> tuple[tuple[Decimal, Decimal, str], dict[str, Any], dict[str, int], dict[int, int]]:
    """The state of ``tarifa_call_authorize`` (its ``bigint[]``, billing type and CPS scopes, laid
    out as migration calls 0007 describes), as ``_lock_and_read`` returns it."""
    state, billing, scopes = row
    scopes = scopes or []
    (amount, credit, calls, reserved, account_calls, account_units, device_calls, shared_units) = state[:8]
    counts = state[10:10 + len(scopes)]
    pairs = state[10 + len(scopes):]
    return _read_state(account, (amount, credit, billing, calls, reserved, account_calls, account_units,
                                 device_calls, shared_units, scopes, counts, pairs[0::2], pairs[1::2]))


def _read_balance(account: Any) -> tuple[Decimal, Decimal, str]:
    """(balance, credit limit, billing type) of the balance this call draws on (SQLite, inside
    the transaction that holds the write lock)."""
    from tarifa.customers.models import Account, Customer

    units = Customer._meta.get_field("balance")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT balance, credit_limit, billing_type FROM {_q(Customer._meta.db_table)} WHERE id = %s",
                       [account.customer_id])
        balance, credit, billing = cursor.fetchone()
        if account.balance_mode == "own":
            cursor.execute(f"SELECT balance FROM {_q(Account._meta.db_table)} WHERE id = %s", [account.pk])
            balance = cursor.fetchone()[0]
    return (units.from_db_value(balance, None, connection), units.from_db_value(credit, None, connection), billing)


def _connection_state(limited: list[int], now: datetime, second: int) -> tuple[dict[int, int], dict[str, int]]:
    """The live reservations and CPS counters of the limited connections (SQLite, inside the
    transaction that holds the write lock)."""
    from tarifa.calls.models import CallRate

    busy: dict[int, int] = {}
    cps: dict[str, int] = {}
    in_ids, id_params = any_of("connection_id", limited)
    in_scopes, scope_params = any_of("scope", [f"n:{cid}" for cid in limited])
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT connection_id, COUNT(*), '' FROM {_q(Reservation._meta.db_table)} "
            f"WHERE {in_ids} AND expires_at >= %s GROUP BY connection_id "
            f"UNION ALL SELECT 0, count, scope FROM {_q(CallRate._meta.db_table)} WHERE {in_scopes} AND second = %s",
            [*id_params, _dt(now), *scope_params, second],
        )
        for cid, count, scope in cursor.fetchall():
            if scope:
                cps[scope] = count
            else:
                busy[cid] = count
    return busy, cps


def _state(account: Any, device: cache.Device | None, now: datetime, scopes: list[str], second: int
           ) -> tuple[dict[str, Any], dict[str, int]]:
    """Reservations of the customer (calls and amounts, also per account and device) and the CPS
    counters of ``scopes``, in one statement. Runs after the balance row is locked."""
    from tarifa.calls.models import CallRate

    table = _q(Reservation._meta.db_table)
    rates = _q(CallRate._meta.db_table)
    condition, scope_params = any_of("scope", scopes or [""])
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*), COALESCE(SUM(amount), 0), "
            f"COALESCE(SUM(CASE WHEN account_id = %s THEN 1 ELSE 0 END), 0), "
            f"COALESCE(SUM(CASE WHEN account_id = %s THEN amount ELSE 0 END), 0), "
            f"COALESCE(SUM(CASE WHEN device = %s THEN 1 ELSE 0 END), 0), "
            f"COALESCE(SUM(CASE WHEN own_balance THEN 0 ELSE amount END), 0), 'calls', 0 "
            f"FROM {table} WHERE customer_id = %s AND expires_at >= %s "
            f"UNION ALL SELECT 0, 0, 0, 0, 0, 0, scope, count FROM {rates} WHERE {condition} AND second = %s",
            [account.pk, account.pk, device.key if device else "", account.customer_id, _dt(now), *scope_params, second],
        )
        rows = cursor.fetchall()
    calls, reserved_units, account_calls, account_units, device_calls, shared_units, _label, _n = rows[0]
    units = Reservation._meta.get_field("amount")
    state = {
        "customer_calls": calls, "account_calls": account_calls, "device_calls": device_calls,
        "reserved": units.from_db_value(reserved_units, None, connection),  # whole customer (spending limits)
        "shared_reserved": units.from_db_value(shared_units, None, connection),  # on the customer's balance
        "account_reserved": units.from_db_value(account_units, None, connection),
    }
    return state, {row[6]: row[7] for row in rows[1:]}


def _dt(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


_RESERVATION_COLUMNS = ("switch", "call_id", "customer_id", "account_id", "own_balance", "connection_id", "device",
                        "amount", "max_duration", "created_at", "expires_at")


def _reserve(req: CallRequest, account: Any, device: cache.Device | None, connection_id: int | None, amount: Decimal,
             duration: int, now: datetime, scopes: list[str], second: int, trip: _Trip | None) -> int:
    """Insert the reservation and count the call in its CPS scopes (one function call on
    PostgreSQL, with the ``COMMIT`` of a ``_Trip``)."""
    from tarifa.calls.models import CallRate

    table, rates = _q(Reservation._meta.db_table), _q(CallRate._meta.db_table)
    units = Reservation._meta.get_field("amount").get_prep_value(amount)
    values = [req.switch, req.call_id, account.customer_id, account.pk, account.balance_mode == "own", connection_id,
              device.key if device else "", units, duration, _dt(now),
              _dt(now + timedelta(seconds=duration + RESERVATION_MARGIN))]
    columns = ", ".join(_RESERVATION_COLUMNS)
    placeholders = ", ".join(["%s"] * len(values))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # one statement: tarifa_call_reserve (migration calls 0004)
            sql = "SELECT tarifa_call_reserve(%s::text[], %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            cursor.execute(sql if trip is None else sql + "; COMMIT", [scopes, second, *values])
            reservation_id = cursor.fetchone()[0]
            if trip is not None:
                trip.open = False
            return reservation_id
        cursor.execute(f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) RETURNING id", values)
        reservation_id = cursor.fetchone()[0]
        if scopes:
            cursor.executemany(
                f"INSERT INTO {rates} (scope, second, count) VALUES (%s, %s, 1) "
                f"ON CONFLICT (scope, second) DO UPDATE SET count = {rates}.count + 1",
                [[scope, second] for scope in scopes],
            )
        return reservation_id


def _spent_today(customer_id: int, now: datetime, since: datetime) -> Decimal:
    from django.db.models import Sum

    from tarifa.billing.models import Transaction

    total = Transaction.objects.filter(customer_id=customer_id, kind__in=("call_charge", "adjustment"),
                                       created_at__gte=since).aggregate(s=Sum("amount"))["s"]
    return -(total or Decimal(0))


def _available(account: Any, balance: tuple[Decimal, Decimal, str], st: dict[str, Any], now: datetime,
               d: Decision) -> Decimal:
    amount, credit_limit, billing = balance
    reserved = st["account_reserved"] if account.balance_mode == "own" else st["shared_reserved"]
    available = amount - reserved + (credit_limit if billing == "postpaid" else 0)
    if d.tracing:
        d.trace.append(f"{billing}: balance {amount}, credit limit {credit_limit if billing == 'postpaid' else 0}, "
                       f"reserved {reserved} -> available {available}")
    customer = account.customer
    for limit, start, label in (
        (customer.daily_spending_limit, day_start, "daily"),
        (customer.monthly_spending_limit, month_start, "monthly"),
    ):
        if limit is not None:
            # the customer's day and month, in the customer's time zone
            since = start(now, customer.time_zone)
            room = limit - _spent_today(customer.pk, now, since) - st["reserved"]
            if d.tracing:
                d.trace.append(f"{label} spending limit {limit} since {since:%Y-%m-%d %H:%M} UTC: {room} left")
            available = min(available, room)
    return available


def _limits(account: Any, device: cache.Device | None, st: dict[str, Any], cps: dict[str, int], second: int,
            d: Decision) -> bool:
    customer = account.customer
    checks = [
        (st["customer_calls"], customer.max_call_sessions, "customer", "concurrent_limit"),
        (st["account_calls"], account.max_channels, "account", "concurrent_limit"),
        (st["device_calls"], device.max_sessions if device else None, "device", "concurrent_limit"),
        (cps.get(f"c:{customer.pk}", 0), customer.calls_per_second, "customer", "cps_limit"),
        (cps.get(f"d:{device.key}", 0) if device else 0, device.cps if device else None, "device", "cps_limit"),
    ]
    for used, limit, scope, reason in checks:
        if limit is not None and used >= limit:
            what = "calls in progress" if reason == "concurrent_limit" else "calls this second"
            d.refuse(reason, f"{scope} has {used} {what}, limit {limit}")
            return False
    if d.tracing:
        d.trace.append(f"limits: {st['customer_calls']} customer / {st['account_calls']} account calls in progress, "
                       f"{cps.get(f'c:{customer.pk}', 0)} this second")
    return True


def _limited(plan: _Plan) -> list[int]:
    """Ids of the candidate connections with a channel or CPS limit, ascending (the lock order)."""
    return sorted({r.connection_id for r, _p in plan.candidates if r.max_channels or r.max_cps})


def _usable_routes(plan: _Plan, busy: dict[int, int], cps: dict[str, int], d: Decision,
                   held: int | None = None) -> list[cache.RouteEntry]:
    """The plan's ranked routes less the connections at capacity (``busy`` and ``cps`` were read
    under their locks). A retried call's ``held`` connection comes first: its channel is the call's."""
    kept = []
    for route, _price in plan.candidates:
        if route.connection_id == held:
            kept.insert(0, route)
            continue
        if route.max_channels is not None and busy.get(route.connection_id, 0) >= route.max_channels:
            if d.tracing:
                d.trace.append(f"connection {route.connection_name} at capacity ({route.max_channels} channels)")
            continue
        if route.max_cps is not None and cps.get(f"n:{route.connection_id}", 0) >= route.max_cps:
            if d.tracing:
                d.trace.append(f"connection {route.connection_name} at its CPS limit ({route.max_cps})")
            continue
        kept.append(route)
    return kept


def _route_dicts(plan: _Plan, routes: list[cache.RouteEntry], d: Decision) -> list[dict[str, Any]]:
    prices = {r.connection_id: p for r, p in plan.candidates}
    out = []
    for route in routes:
        if plan.emergency:  # as the connection wants emergency numbers; its translation rules never apply
            sent = route.emergency_format.replace("{number}", d.number) if route.emergency_format \
                else route.tech_prefix + d.number
        else:
            sent = route.tech_prefix + translate(route.rules, "destination", d.number, d.number)
        out.append({
            "connection": route.connection_name, "vendor": route.vendor, "address": route.address,
            "transport": route.transport, "number": sent,
            "vendor_price": money(prices[route.connection_id]),
        })
    return out


def _cps_limits(plan: _Plan) -> list[tuple[str, int]]:
    """The CPS counters the call is checked against and counted in, with their limits: only
    scopes with a limit (an unlimited scope's counter would be written by every call and read by
    none). A connection's counter is added for the route the call takes."""
    if plan.emergency:
        return []
    account, device = plan.account, plan.device
    limits = []
    if account.customer.calls_per_second is not None:
        limits.append((f"c:{account.customer_id}", account.customer.calls_per_second))
    if device is not None and device.cps is not None:
        limits.append((f"d:{device.key}", device.cps))
    return limits


def _cps_scopes(plan: _Plan) -> list[str]:
    return [scope for scope, _limit in _cps_limits(plan)]


def _judge(plan: _Plan, d: Decision, balance: tuple[Decimal, Decimal, str], st: dict[str, Any],
           cps_now: dict[str, int], busy: dict[int, int], now: datetime, second: int
           ) -> tuple[int, Decimal, cache.RouteEntry | None] | None:
    """The decision on a state read under the locks: refused (None, ``d`` says why) or allowed,
    (max duration, amount to reserve, the first route's entry) with ``d`` filled in."""
    account, device = plan.account, plan.device
    if not plan.emergency:
        if not _limits(account, device, st, cps_now, second, d):
            return None
        available = _available(account, balance, st, now, d)
        if plan.free:
            duration = plan.cap
        else:
            duration = max_duration(plan.terms, available, plan.decimals, plan.rounding, plan.cap)
        if duration <= 0:
            first = call_cost(plan.terms, plan.terms.interval_1 + plan.terms.free_seconds, plan.decimals, plan.rounding)
            d.refuse("insufficient_funds", f"available {available} does not pay the first interval ({first})")
            return None
    else:
        duration = plan.cap
    first = None
    if plan.group is not None:
        routes = _usable_routes(plan, busy, cps_now, d)
        if not routes and not plan.emergency:
            d.refuse("no_route", "every connection of the routing group is at capacity")
            return None
        d.routes = _route_dicts(plan, routes, d)
        first = routes[0] if routes else None
    amount = plan.cost(duration)
    d.allowed, d.max_duration, d.reserved = True, duration, money(amount)
    return duration, amount, first


def _held(req: CallRequest) -> Reservation | None:
    """The reservation this call id holds already: the switch asked again (a time-out, a retry).
    Looked for only when the call would be refused on a state with calls in progress (its own
    reservation among them) or its reservation's insert met the one already there."""
    return Reservation.objects.filter(switch=req.switch, call_id=req.call_id).first()


def _answer_held(plan: _Plan, req: CallRequest, d: Decision, held: Reservation, busy: dict[int, int],
                 cps: dict[str, int], mark: int) -> Decision:
    """Answer a retried call id with what it holds: the same reservation, max duration and amount,
    its connection first (then the others with room now). Nothing is reserved or counted again, and
    the limits the call itself fills do not refuse it."""
    del d.trace[mark:]
    d.allowed, d.reason, d.sip_code = True, "", 200
    d.max_duration, d.reserved, d.reservation_id = held.max_duration, money(held.amount), held.pk
    if plan.group is not None:
        d.routes = _route_dicts(plan, _usable_routes(plan, busy, cps, d, held.connection_id), d)
    if d.tracing:
        d.trace.append(f"call id {req.call_id!r} already holds reservation {held.pk}: the same answer, "
                       f"{held.max_duration} s, {money(held.amount)} reserved (a retry is counted once)")
    return d


def _undo_judgement(d: Decision, mark: int, routes: list[dict[str, Any]]) -> None:
    """Forget a decision taken on the state (before deciding again): ``d`` as the plan left it."""
    d.allowed, d.reason, d.sip_code, d.max_duration, d.reserved, d.reservation_id = False, "", 200, 0, "0", None
    d.routes = routes
    del d.trace[mark:]


def _decide_in_transaction(plan: _Plan, req: CallRequest, d: Decision, now: datetime, reserve: bool,
                           trip: _Trip | None = None, held: Reservation | None = None) -> Decision:
    """Lock and read the call's state, decide, and reserve. A call id that already holds a
    reservation (``held``, or found when the state would refuse the call: the call's own
    reservation fills the limit) is answered with it."""
    account, device = plan.account, plan.device
    second = int(now.timestamp())
    cps_scopes = _cps_scopes(plan)
    limited = _limited(plan) if plan.group is not None else []
    mark = len(d.trace)
    balance, st, cps_now, busy = _lock_and_read(account, device, now, cps_scopes, second, limited, trip)
    if held is None:
        verdict = _judge(plan, d, balance, st, cps_now, busy, now, second)
        if verdict is not None:
            return _allow(plan, req, d, now, reserve, trip, verdict, cps_scopes, second)
        if not reserve:
            return d  # a simulation holds nothing
        held = _held(req) if st["customer_calls"] else None  # refused, unless the state holds this very call
        if held is None:
            return d
    return _answer_held(plan, req, d, held, busy, cps_now, mark)


def _allow(plan: _Plan, req: CallRequest, d: Decision, now: datetime, reserve: bool, trip: _Trip | None,
           verdict: tuple[int, Decimal, cache.RouteEntry | None], cps_scopes: list[str], second: int) -> Decision:
    """The allowed call's reservation and CPS counts (none for a simulation)."""
    account, device = plan.account, plan.device
    duration, amount, first = verdict
    if d.tracing:
        d.trace.append(f"ALLOWED for {duration} s, reserving {amount}" + ("" if reserve else " (simulation: nothing reserved)"))
    if reserve:
        scopes = cps_scopes + ([f"n:{first.connection_id}"] if first is not None and first.max_cps is not None else [])
        d.reservation_id = _reserve(req, account, device, first.connection_id if first is not None else None, amount,
                                    duration, now, scopes, second, trip)
    return d


# --- one round trip -------------------------------------------------------------------------------------

_AUTHORIZE_SQL = "SELECT * FROM tarifa_call_authorize(%s::bigint[], %s::text[], %s::text, %s::text, %s::text)"
def _array(values: list[Any]) -> str:
    """A PostgreSQL array literal of integers and CPS scope names (``c:12``, ``d:sip:3``,
    ``n:7``; none needs quoting), NULL for None: sent as one text parameter, which costs the
    driver far less than a Python list it must inspect element by element on every call."""
    return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"


def _release(reservation_id: int, scopes: list[str], second: int) -> None:
    """Undo what ``tarifa_call_authorize`` wrote for one call, in one statement: its reservation
    and its count in the CPS counters of ``scopes`` for ``second``."""
    from tarifa.calls.models import CallRate

    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH gone AS (DELETE FROM {_q(Reservation._meta.db_table)} WHERE id = %s RETURNING id) "
            f"UPDATE {_q(CallRate._meta.db_table)} SET count = count - 1 "
            f"WHERE scope = ANY(%s) AND second = %s AND count > 0 AND EXISTS (SELECT 1 FROM gone)",
            [reservation_id, scopes, second],
        )


def _may_go_in_one_trip(plan: _Plan, reserve: bool) -> bool:
    """Whether ``_decide_in_one_trip`` may try the call: PostgreSQL in autocommit mode outside any
    transaction (a server's request), a call that reserves, and no part of the decision that
    needs more than the state (emergency calls, spending limits: their transactions)."""
    customer = plan.account.customer
    return (reserve and not plan.emergency and plan.cap > 0
            and customer.daily_spending_limit is None and customer.monthly_spending_limit is None
            and _autocommit_postgresql())


def _decide_in_one_trip(plan: _Plan, req: CallRequest, d: Decision, now: datetime) -> bool:
    """One statement (``tarifa_call_authorize``, migration calls 0007): lock and read the state as
    ``_lock_and_read`` does and, when it leaves room for the longest call the plan allows, reserve
    it. The decision is then taken from that state by ``_judge``, as in the transaction; it must be
    the one the database acted on. True when ``d`` is final; False when the state allows a call
    other than the planned one (funds for a shorter call): nothing was written, and the caller
    decides again in a transaction."""
    account, device = plan.account, plan.device
    customer = account.customer
    second = int(now.timestamp())
    cps = _cps_limits(plan)
    limited = _limited(plan) if plan.group is not None else []
    planned = None if plan.free else plan.cost(plan.cap)
    units = Reservation._meta.get_field("amount")
    ranked = [route for route, _price in plan.candidates]
    # the numbers, laid out as migration calls 0007 describes
    numbers = [
        account.customer_id, account.pk, 1 if account.balance_mode == "own" else 0, micros(now), second,
        None if planned is None else units.get_prep_value(planned), plan.cap,
        micros(now + timedelta(seconds=plan.cap + RESERVATION_MARGIN)),
        customer.max_call_sessions, account.max_channels, device.max_sessions if device else None,
        len(cps), *[n for _scope, n in cps], len(limited), *limited,
    ]
    for route in ranked:
        numbers += (route.connection_id, route.max_channels, route.max_cps)
    params = [_array(numbers), _array([scope for scope, _n in cps] + [f"n:{cid}" for cid in limited]),
              req.switch, req.call_id, device.key if device else ""]
    # (an IntegrityError: this call id holds a reservation already; ``authorize_call`` answers with it)
    row = call_prepared(_AUTHORIZE_SQL, params)
    assert row is not None
    state = row[0]
    reservation_id, connection_id = state[8], state[9]
    mark, routes = len(d.trace), d.routes
    # what the statement counted when it reserved: the limited scopes and the route's connection
    counted = [scope for scope, _n in cps]
    if any(route.connection_id == connection_id and route.max_cps is not None for route in ranked):
        counted.append(f"n:{connection_id}")
    try:
        balance, st, cps_now, busy = _read_packed(account, row)
        verdict = _judge(plan, d, balance, st, cps_now, busy, now, second)
    except BaseException:
        if reservation_id is not None:  # no decision stands behind the hold: release it
            _release(reservation_id, counted, second)
        raise
    if reservation_id is None:
        if verdict is None:  # refused on the locked state (nothing written) unless it holds this very call
            held = _held(req) if st["customer_calls"] else None
            if held is not None:
                _answer_held(plan, req, d, held, busy, cps_now, mark)
            return True
        _undo_judgement(d, mark, routes)
        return False
    duration, amount, first = verdict if verdict is not None else (0, None, None)
    if (duration, amount, first.connection_id if first else None) != (plan.cap, planned or Decimal(0), connection_id):
        # Never keep a hold the decision does not stand behind; decide again in a transaction.
        _release(reservation_id, counted, second)
        logger.error("call %s: the one-trip reservation (%s s, connection %s) differs from the decision "
                     "(%s); deciding again", req.call_id, plan.cap, connection_id, verdict)
        _undo_judgement(d, mark, routes)
        return False
    if d.tracing:
        d.trace.append(f"ALLOWED for {duration} s, reserving {amount} (one round trip)")
    d.reservation_id = reservation_id
    return True


def authorize_call(req: CallRequest, *, reserve: bool = True, now: datetime | None = None,
                   trace: bool = True) -> Decision:
    """Decide on one call attempt; with ``reserve`` the call's maximum cost is held until it ends.
    Without ``trace`` the decision's steps are not written down (refusals keep their reason)."""
    now = now or datetime.now(UTC)
    d = Decision(allowed=False, call_id=req.call_id, tracing=trace)
    snap = cache.snapshot()
    plan = _plan(snap, req, d, now)
    if plan is not None:
        mark, planned_routes = len(d.trace), list(d.routes)
        held = None
        for attempt in range(10):
            try:
                if held is None and _may_go_in_one_trip(plan, reserve) and _decide_in_one_trip(plan, req, d, now):
                    break
                with _transaction(reserve) as trip:
                    d = _decide_in_transaction(plan, req, d, now, reserve, trip, held)
                break
            except IntegrityError:
                # The same call id authorised twice (a switch's retry): the transaction answers with
                # the reservation it holds, on a fresh reading of the state (for its routes); if the
                # reservation was released meanwhile, decide again (a new reservation can be made).
                held = _held(req)
                if held is not None:
                    _undo_judgement(d, mark, planned_routes)
                    continue
                d = Decision(allowed=False, call_id=req.call_id, tracing=trace)
                plan = _plan(snap, req, d, now)
                if plan is None:
                    break
                mark, planned_routes = len(d.trace), list(d.routes)
            except OperationalError as exc:  # SQLite busy under heavy write load: try again
                if "locked" not in str(exc) or attempt == 9:
                    raise
                time.sleep(0.01 * (attempt + 1))
    if not d.allowed and reserve:  # a simulation changes nothing, not even the dashboard's counts
        account_id = snap.by_code.get(d.account) if d.account else None
        count_refusal(snap.accounts[account_id].customer_id if account_id else None, d.reason, now)
    return d


def count_refusal(customer_id: int | None, reason: str, now: datetime) -> None:
    """Count a refused attempt per day, customer and reason (dashboards)."""
    from tarifa.calls.models import Refusal

    lookup = {"day": now.date(), "customer_id": customer_id, "reason": reason}
    for _attempt in range(3):
        if Refusal.objects.filter(**lookup).update(count=F("count") + 1):
            return
        try:
            with transaction.atomic():
                Refusal.objects.create(**lookup, count=1)
            return
        except IntegrityError:
            continue


def end_call(switch: str, call_id: str) -> bool:
    """The switch reports the end of a call: its reservation is released (the CDR does it too)."""
    if not call_id or len(call_id) > 255 or "\x00" in call_id:
        return False  # no call can have this id: nothing to look up
    return Reservation.objects.filter(switch=switch, call_id=call_id).delete()[0] > 0


def find_account(identity: str) -> Any:
    """An account by code, SIP user, trunk name or name, for operator tools."""
    from tarifa.customers.models import Account

    found = (
        Account.objects.filter(account_code=identity).first()
        or Account.objects.filter(sipdevices__login=identity).first()
        or Account.objects.filter(kind="trunk", identifier=identity).first()
        or Account.objects.filter(name=identity).first()
    )
    if found is None:
        raise LookupError(f"no account with code, SIP user, trunk or name {identity!r}")
    return found


def simulate_for(identity: str, callee: str, *, caller: str = "", source_ip: str = "", pop: str = "") -> Decision:
    """The decision for a call from this account, reserving nothing (``tarifa call simulate``, admin)."""
    account = find_account(identity)
    device = account.sipdevices.filter(status="active").first()
    request = CallRequest(
        call_id=f"simulation-{time.time_ns()}", callee=callee, caller=caller, switch="simulation",
        source_ip=source_ip, pop=pop,
        sip_user=device.login if device else "",
        trunk=account.identifier if account.kind == "trunk" and not device else "",
        account_code="" if device or account.kind == "trunk" else account.account_code,
    )
    return authorize_call(request, reserve=False)
