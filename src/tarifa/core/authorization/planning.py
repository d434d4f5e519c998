"""The plan: everything decided before any per-call state is read (identify, restrictions,
translation, classification, rate, route candidates in the group's policy order)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import field
from datetime import datetime
from decimal import Decimal
from typing import Final

from tarifa.core import classify as cls
from tarifa.core.authorization.answer import CallRequest, Decision, Refused
from tarifa.core.authorization.record import record
from tarifa.core.authorization.refusal import Refusal
from tarifa.core.authorization.views import (
    PREMIUM,
    VALUE,
    AccountView,
    Catalogue,
    CustomerView,
    Device,
    DidView,
    Group,
    RouteEntry,
)
from tarifa.core.deck import format_money as money
from tarifa.core.identity import AMBIGUOUS, NO_ACCOUNT, ORDER, UNKNOWN_PBX, Identity
from tarifa.core.numbering import InvalidNumber, normalize
from tarifa.core.periods import day_start, month_start
from tarifa.core.rating import RateTerms, Rounding, call_cost
from tarifa.core.routes import Candidate, RoutingPolicy, order
from tarifa.core.translate import Rule
from tarifa.core.translate import apply as translate

FREE: Final = RateTerms(price_1=Decimal(0), price_n=Decimal(0))


@record
class RouteCandidate:
    route: RouteEntry
    vendor_price: Decimal  # per minute, the destination set's first-interval price


@record
class CpsLimit:
    scope: str  # "c:<customer id>", "d:<device key>", "n:<connection id>"
    limit: int


@record
class SpendingWindow:
    """A daily or monthly spending limit: what may be spent since ``since`` (the customer's local
    midnight or 1st of the month)."""

    label: str  # "daily" | "monthly"
    limit: Decimal
    since: datetime


@record
class Plan:
    """What the checks decided before any per-call state is read."""

    account: AccountView
    device: Device | None
    number: str  # as the routes send it (before each connection's rules)
    terms: RateTerms
    decimals: int
    rounding: str
    cap: int  # the longest call allowed before funds
    group: Group | None
    candidates: tuple[RouteCandidate, ...]  # in the group's policy order
    free: bool
    emergency: bool
    spending: tuple[SpendingWindow, ...] = ()
    # computed when first asked for, once per call (the one trip asks twice)
    _cap_cost: Decimal | None = field(default=None, init=False, repr=False, compare=False)
    _limited: tuple[int, ...] | None = field(default=None, init=False, repr=False, compare=False)
    _cps_limits: tuple[CpsLimit, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def cost(self, seconds: int) -> Decimal:
        """What a call of ``seconds`` costs at the plan's terms."""
        if self.free:
            return Decimal(0)
        if seconds == self.cap:
            return self.cap_cost
        return call_cost(self.terms, seconds, self.decimals, self.rounding)

    @property
    def cap_cost(self) -> Decimal:
        """The cost of the longest call (the one-trip reservation's amount)."""
        cost = self._cap_cost
        if cost is None:
            cost = Decimal(0) if self.free else call_cost(self.terms, self.cap, self.decimals, self.rounding)
            object.__setattr__(self, "_cap_cost", cost)
        return cost

    @property
    def limited(self) -> tuple[int, ...]:
        """Ids of the candidate connections with a channel or CPS limit, ascending (the lock order)."""
        ids = self._limited
        if ids is None:
            ids = tuple(sorted({c.route.connection_id for c in self.candidates if c.route.limited}))
            object.__setattr__(self, "_limited", ids)
        return ids

    @property
    def cps_limits(self) -> tuple[CpsLimit, ...]:
        """The CPS counters the call is checked against and counted in: only scopes with a limit
        (an unlimited scope's counter would be written by every call and read by none). The
        first route's connection counter is added when the call is reserved."""
        limits = self._cps_limits
        if limits is None:
            limits = () if self.emergency else self._own_cps_limits()
            object.__setattr__(self, "_cps_limits", limits)
        return limits

    def _own_cps_limits(self) -> tuple[CpsLimit, ...]:
        customer, device = self.account.customer, self.device
        limits = []
        if customer.calls_per_second is not None:
            limits.append(CpsLimit(f"c:{customer.id}", customer.calls_per_second))
        if device is not None and device.cps is not None:
            limits.append(CpsLimit(f"d:{device.key}", device.cps))
        return tuple(limits)

    @property
    def cps_scopes(self) -> list[str]:
        return [limit.scope for limit in self.cps_limits]


_IDENTITY_LABELS: Final = {
    "sip_user": "SIP user",
    "trunk": "trunk",
    "extension": "PBX extension",
    "account_code": "account code",
    "source_ip": "source IP",
}


@record
class _Caller:
    account: AccountView
    device: Device | None = None
    did: DidView | None = None  # an inbound call to this DID


def identify(snap: Catalogue, req: CallRequest, d: Decision) -> _Caller | None:
    """The calling account (and device) or the DID called: the DID the switch names; else the
    identities in the one matching order of :mod:`tarifa.core.identity` (shared with CDR rating);
    else, when the request carries no identity at all, the callee as a DID. An identity naming
    several accounts that the others do not settle is refused as ``ambiguous_account`` (None,
    ``d`` says why); None with no refusal: no account."""

    def by_did(number: str) -> _Caller | None:
        did = snap.dids[number.lstrip("+")]
        if d.tracing:
            d.trace.append(f"inbound call to DID {did.number}")
        account = snap.accounts.get(did.account_id)
        return None if account is None else _Caller(account, None, did)

    if req.did and req.did.lstrip("+") in snap.dids:
        return by_did(req.did)
    identity = Identity(
        sip_user=req.sip_user,
        trunk=req.trunk,
        extension=req.extension,
        account_code=req.account_code,
        source_ip=req.source_ip,
    )
    found = snap.index.resolve(identity)
    if found.reason == NO_ACCOUNT:
        found = snap.index_all.resolve(identity)  # a disabled account: refused as disabled later
    label = f"{_IDENTITY_LABELS.get(found.via, found.via)} {getattr(req, found.via, '')!r}" if found.via else ""
    if found.account_id is not None:
        account = snap.accounts[found.account_id]
        devices = snap.by_sip if found.via == "sip_user" else snap.by_ip if found.via == "source_ip" else None
        device = devices.get(getattr(req, found.via)) if devices is not None else None
        if device is not None and device.account_id != account.id:
            device = None
        if d.tracing:
            d.trace.append(f"{label}: account {account.code}" + (f", device {device.key}" if device else ""))
        return _Caller(account, device)
    if found.reason == AMBIGUOUS:
        codes = ", ".join(snap.accounts[a].code for a in found.candidates)
        d.refuse(
            Refusal.AMBIGUOUS_ACCOUNT,
            f"{label} names {len(found.candidates)} accounts ({codes}); "
            "the request's other identities do not tell which",
        )
        return None
    if found.reason == UNKNOWN_PBX:
        d.refuse(
            Refusal.UNKNOWN_PBX,
            f"{label} is not an extension of the PBX the call comes from "
            f"(source IP {req.source_ip or 'none'}); no other identity names an account",
        )
        return None
    given = any(getattr(identity, kind) for kind in ORDER)
    if not given and req.callee.lstrip("+") in snap.dids:  # no caller identity: a call to one of our DIDs
        return by_did(req.callee)
    d.note("no account matches the identities in the request" if given else "no identity in the request")
    return None


def ip_allowed(account: AccountView, source_ip: str) -> bool:
    """Whether ``source_ip`` is inside the account's IP restriction (none: any address)."""
    if not account.networks:
        return True
    try:
        address = ipaddress.ip_address(source_ip)
    except ValueError:
        return False
    return any(address in net for net in account.networks)


def routing_group(snap: Catalogue, account: AccountView, number: str, dclass: str) -> Group | None:
    """The customer's dialing routes (pattern -> group) first, else the route offer for (class,
    the account's value/premium choice, toll-free carrier), else the only group there is."""
    for route in snap.dialing_routes.get(account.customer_id, ()):
        if re.search(route.pattern, number):
            return snap.groups.get(route.group_id)
    choice = account.route_choice(dclass)
    carrier = account.tollfree_carrier if dclass == cls.TOLL_FREE else ""
    for key in ((dclass, choice, carrier), (dclass, choice, ""), (dclass, VALUE, ""), (cls.INTERNATIONAL, choice, "")):
        group_id = snap.offers.get(key)
        if group_id is not None:
            return snap.groups.get(group_id)
    return next(iter(snap.groups.values()), None) if len(snap.groups) == 1 else None


def pricing_tariff(account: AccountView, group: Group | None, dclass: str) -> int:
    """Which tariff prices the call: the account's own tariff; else, when the account chose the
    premium route for this class and that route's group has a tariff, the group's (premium price
    list); else the customer's tariff (with its overrides)."""
    if account.tariff_id:
        return account.tariff_id
    if account.route_choice(dclass) == PREMIUM and group is not None and group.tariff_id:
        return group.tariff_id
    return account.customer.tariff_id


def dialled(rules: Sequence[Rule], callee: str, home: str) -> tuple[str, bool]:
    """(the number after the customer's destination rules, whether it is an emergency number).
    An emergency number dialled as such stays what it is, whatever the rules would make of it
    (a generic rewrite never applies to 911); one the rules make (a PBX's outside-line 9 + 911)
    counts too."""
    if cls.is_emergency(callee, home):
        return callee.lstrip("+"), True
    number = translate(rules, "destination", callee, callee)
    return number, number != callee and cls.is_emergency(number, home)


def restriction(account: AccountView, dest: cls.Destination, number: str, d: Decision) -> Refused | None:
    """The account's restriction that refuses the destination (seed 001), or None."""
    if dest.number_class == cls.DIRECTORY:
        if dest.number_type == cls.DIRECTORY_555:
            return Refused(
                Refusal.DIRECTORY_411_ONLY, f"{number} (NPA-555-1212) is not offered: dial 411 for directory assistance"
            )
        if not account.allow_411:
            return Refused(Refusal.DESTINATION_FORBIDDEN, "411 directory assistance is not allowed for this account")
    if dest.number_class == cls.PREMIUM_RATE:
        if not account.allow_premium_rate:
            why = (
                f"{number} is a premium-rate number ({dest.region or 'unknown country'}); "
                "premium-rate calls are off for this account"
            )
            return Refused(Refusal.PREMIUM_RATE_DISABLED, why)
        d.note("premium-rate calls allowed for this account")
    if dest.abroad:
        if not account.allow_international:
            why = {
                cls.PREMIUM_RATE: " (a premium-rate number abroad)",
                cls.UNKNOWN: " (a number that may be abroad: its country is unknown)",
            }.get(dest.number_class, "")
            return Refused(Refusal.INTERNATIONAL_DISABLED, f"international calls are off for this account{why}")
        if account.allowed_countries and dest.region not in account.allowed_countries:
            return Refused(
                Refusal.COUNTRY_NOT_ALLOWED,
                f"{dest.region or 'unknown country'} is not in {list(account.allowed_countries)}",
            )
    return None


def rank(candidates: Sequence[RouteCandidate], group: Group | None, call_id: str) -> tuple[RouteCandidate, ...]:
    """The candidates in the routing group's policy order. Each policy ranks a connection by its
    own key (price, priority, or a weight drawn from the call id), so dropping the connections at
    capacity later keeps the rest in this order: the ranking is done once, before any state."""
    by_id = {c.route.connection_id: c for c in candidates}
    ranking = order(
        [Candidate(c.route.connection_id, c.vendor_price, c.route.priority, c.route.weight) for c in candidates],
        group.policy if group else RoutingPolicy.PRIORITY,
        call_id,
    )
    return tuple(by_id[c.connection_id] for c in ranking)


def spending_windows(customer: CustomerView, now: datetime) -> tuple[SpendingWindow, ...]:
    """The customer's daily and monthly spending limits with the start of the day and month they
    count from, in the customer's time zone."""
    windows = []
    for limit, start, label in (
        (customer.daily_spending_limit, day_start, "daily"),
        (customer.monthly_spending_limit, month_start, "monthly"),
    ):
        if limit is not None:
            windows.append(SpendingWindow(label, limit, start(now, customer.time_zone)))
    return tuple(windows)


def plan(snap: Catalogue, req: CallRequest, d: Decision, now: datetime, system_cap: int) -> Plan | None:
    """Everything decided before the per-call state: None when the call is refused (``d`` says
    why); else the plan, with ``d`` holding account, number, class, rate, media and caller ID."""
    caller = identify(snap, req, d)
    if caller is None:
        if d.reason not in (Refusal.AMBIGUOUS_ACCOUNT, Refusal.UNKNOWN_PBX):
            d.refuse(Refusal.UNKNOWN_ACCOUNT, "no account matches the identity sent by the switch")
        return None
    account, customer = caller.account, caller.account.customer
    d.account, d.customer = account.code, customer.code
    if not (account.active and customer.active):
        d.refuse(Refusal.ACCOUNT_DISABLED, f"account {account.status}, customer {customer.status}")
        return None
    home = customer.home
    rules = snap.customer_rules.get(customer.id, ())
    number, emergency = dialled(rules, req.callee, home) if caller.did is None else (req.callee, False)
    if account.blocked_for_unpaid and not emergency:  # emergency calls cost nothing and are never blocked
        d.refuse(
            Refusal.UNPAID_CHARGES,
            "a service charge of the account's plan is unpaid: calls are blocked until a payment covers the balance",
        )
        return None
    restricted = not emergency  # POP and IP restrictions guard money; an emergency call costs none (docs)
    if restricted and (
        (req.source_ip and not ip_allowed(account, req.source_ip)) or (not req.source_ip and account.networks)
    ):
        d.refuse(Refusal.IP_NOT_ALLOWED, f"{req.source_ip or 'no address'} is outside the account's IP restriction")
        return None
    if restricted and account.pops and req.pop not in account.pops:
        d.refuse(Refusal.POP_NOT_ALLOWED, f"POP {req.pop!r} is not among {sorted(account.pops)}")
        return None
    if d.tracing:
        d.trace.append(
            f"account {account.name} ({account.code}) of {customer.company}: active, "
            + ("IP and POP allowed" if restricted else "IP and POP restrictions do not apply to emergency calls")
        )
    d.media = {
        "codecs": list(account.allowed_codecs or customer.codecs),
        "with_media": customer.call_with_media,
        "rtp_timeout": account.rtp_timeout,
        "rtp_hold_timeout": account.rtp_hold_timeout,
        "dtmf_mode": account.dtmf_mode,
    }
    cap = min(system_cap, customer.max_call_duration)
    if caller.did is not None:
        return _plan_inbound(snap, d, account, caller.did, cap)
    sent = req.caller or account.caller_id_number  # seed 001: the account's caller ID when the device sends none
    d.caller_id = sent
    if d.tracing and sent != req.caller:
        d.trace.append(f"caller ID: the account's {sent!r} (the switch sent none)")
    if d.tracing and number != req.callee:
        d.trace.append(f"translation: callee {req.callee!r} -> {number!r}")
    if emergency:
        return _plan_emergency(snap, req, d, account, number, system_cap)
    return _plan_outbound(snap, req, d, caller, number, sent, rules, cap, now)


def _plan_outbound(
    snap: Catalogue,
    req: CallRequest,
    d: Decision,
    caller: _Caller,
    dialled_number: str,
    sent: str,
    rules: Sequence[Rule],
    cap: int,
    now: datetime,
) -> Plan | None:
    account, customer = caller.account, caller.account.customer
    try:
        number = normalize(dialled_number, account.dialing_mode)
    except InvalidNumber as exc:
        d.refuse(Refusal.INVALID_NUMBER, f"{dialled_number!r}: {exc.reason}")
        return None
    d.number = number
    d.caller_id = translate(rules, "source", sent, number, d.trace if d.tracing else None)
    if d.tracing and d.caller_id != sent:
        d.trace.append(f"translation: caller {sent!r} -> {d.caller_id!r} (destination {number})")
    dest = cls.classify(dialled_number, number, customer.home)
    d.destination_class, d.country = dest.number_class, dest.region
    if d.tracing:
        d.trace.append(
            f"number {number}: {dest.number_class}{' (abroad)' if dest.abroad else ''}, "
            f"country {dest.region or '?'}, type {dest.number_type}"
        )
    refused = restriction(account, dest, number, d)
    if refused is not None:
        d.refuse(refused.refusal, refused.why)
        return None
    class_cap = account.max_call_time_international if dest.abroad else account.max_call_time_domestic
    if class_cap and dest.number_class != cls.DIRECTORY:
        cap = min(cap, class_cap)
    route_class = dest.route_class
    group = routing_group(snap, account, number, route_class)
    tariff_id = pricing_tariff(account, group, route_class)
    prices = snap.tariff(tariff_id)
    entry = prices.table.find(number, now)
    if entry is None:
        d.refuse(Refusal.NO_RATE, f"tariff {tariff_id} has no rate for {number}")
        return None
    terms = entry.terms
    d.rate = {
        "prefix": entry.prefix,
        "destination": entry.destination,
        "price_1": money(terms.price_1),
        "price_n": money(terms.price_n),
        "interval_1": terms.interval_1,
        "interval_n": terms.interval_n,
        "connect_fee": money(terms.connect_fee),
    }
    if d.tracing:
        d.trace.append(
            f"rate {entry.prefix} {entry.destination}: {money(terms.price_1)}/min "
            f"{terms.interval_1}/{terms.interval_n} (tariff {tariff_id})"
        )
    if terms.forbidden:
        d.refuse(Refusal.DESTINATION_FORBIDDEN, f"prefix {entry.prefix} is forbidden in the tariff")
        return None
    if dest.abroad and account.international_rate_cap is not None and terms.price_1 > account.international_rate_cap:
        d.refuse(Refusal.RATE_ABOVE_CAP, f"{terms.price_1}/min is above the cap {account.international_rate_cap}/min")
        return None
    if group is None:
        d.refuse(Refusal.NO_ROUTE, f"no routing group for {route_class} calls")
        return None
    candidates = []
    for route in group.entries:
        vendor_entry = snap.destination_set(route.destination_set_id).find(number, now)
        if vendor_entry is None or vendor_entry.terms.forbidden:
            continue
        candidates.append(RouteCandidate(route, vendor_entry.terms.price_1))
    if not candidates:
        d.refuse(Refusal.NO_ROUTE, f"no connection of group {group.name!r} has a price for {number}")
        return None
    if customer.deny_loss_routes:
        kept = [c for c in candidates if c.vendor_price <= terms.price_1]
        if not kept:
            d.refuse(Refusal.LOSS_ROUTE, f"every route costs more than the customer's {terms.price_1}/min")
            return None
        if d.tracing and len(kept) < len(candidates):
            d.trace.append(f"dropped {len(candidates) - len(kept)} loss route(s)")
        candidates = kept
    free = terms.price_1 == 0 and terms.price_n == 0 and terms.connect_fee == 0 and terms.min_charge == 0
    return Plan(
        account,
        caller.device,
        number,
        terms,
        customer.billing_decimals,
        prices.rounding,
        cap,
        group,
        rank(candidates, group, req.call_id),
        free,
        False,
        spending_windows(customer, now),
    )


def _plan_inbound(snap: Catalogue, d: Decision, account: AccountView, did: DidView, cap: int) -> Plan:
    inbound = did.plan
    terms = (
        FREE
        if inbound is None
        else RateTerms(
            price_1=inbound.rate,
            price_n=inbound.rate,
            interval_1=inbound.interval_1,
            interval_n=inbound.interval_n,
        )
    )
    d.number, d.destination_class = did.number, "inbound"
    if did.forward_to is not None:
        d.routes = [{"type": "forward", "number": did.forward_to}]
    elif did.device_login:
        d.routes = [{"type": "sip_device", "login": did.device_login}]
    else:
        d.routes = [
            {"type": "sip_device", "login": login} for login, dev in snap.by_sip.items() if dev.account_id == account.id
        ]
    d.rate = {
        "prefix": did.number,
        "destination": "DID inbound",
        "price_1": money(terms.price_1),
        "price_n": money(terms.price_n),
        "interval_1": terms.interval_1,
        "interval_n": terms.interval_n,
        "connect_fee": "0",
    }
    if d.tracing:
        d.trace.append(f"inbound: {terms.price_1}/min, delivered to {d.routes}")
    free = terms.price_1 == 0 and terms.price_n == 0
    return Plan(
        account,
        None,
        did.number,
        terms,
        account.customer.billing_decimals,
        Rounding.HALF_UP,
        cap,
        None,
        (),
        free,
        False,
    )


def _plan_emergency(
    snap: Catalogue, req: CallRequest, d: Decision, account: AccountView, number: str, system_cap: int
) -> Plan:
    """Emergency calls always go, whatever the balance and restrictions (seed 001 e911 rule), and
    reach each vendor as the emergency number (:func:`route_answers`)."""
    d.number, d.destination_class, d.country = number.lstrip("+"), cls.EMERGENCY, account.customer.home
    own = snap.account_dids.get(account.id, frozenset())
    caller = (d.caller_id or req.caller).lstrip("+")
    if caller not in own and account.e911_caller_id:
        d.caller_id = account.e911_caller_id
        if d.tracing:
            d.trace.append(f"emergency: caller ID {caller!r} is not one of the account's DIDs, using e911 caller ID")
    else:
        d.note("emergency: always allowed")
    group = routing_group(snap, account, d.number, cls.EMERGENCY)
    candidates = [RouteCandidate(route, Decimal(0)) for route in (group.entries if group else ())]
    return Plan(
        account,
        None,
        d.number,
        FREE,
        account.customer.billing_decimals,
        Rounding.HALF_UP,
        system_cap,
        group,
        rank(candidates, group, d.call_id),
        True,
        True,
    )
