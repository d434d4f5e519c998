"""The decision on a call attempt, as pure functions over plain data (DESIGN.md §3-§6, seed 001).

The service ``tarifa.calls.authorize.authorize_call`` runs it in two steps around the database:

1. :func:`plan` — from the configuration snapshot (:class:`Catalogue`: accounts, devices, DIDs,
   rules, routing groups, price lists) and the request: identify the account, check its
   restrictions, translate, normalise and classify the number, find the rate and the routing
   candidates in the group's policy order. Everything that needs no per-call state.
2. :func:`judge` — on the :class:`CallState` read under the customer's lock (balance,
   reservations, CPS counts, busy channels): limits, funds and max duration, usable routes.
   It returns a :class:`Verdict` and changes nothing, so the one-round-trip path can compare it
   with what the database already did and drop it if they differ.

No Django, no I/O: the policy is unit-tested without a database (tests/unit/test_authorization.py);
the storage (``tarifa.calls.storage``) reads and writes the state, the service ties the two.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Final, Protocol, Self

from tarifa.core import classify as cls
from tarifa.core.deck import format_money as money
from tarifa.core.identity import AMBIGUOUS, NO_ACCOUNT, ORDER, AccountIndex, Identity
from tarifa.core.numbering import InvalidNumber, normalize
from tarifa.core.periods import day_start, month_start
from tarifa.core.rating import RateTable, RateTerms, call_cost, max_duration
from tarifa.core.routes import Candidate, order
from tarifa.core.translate import Rule
from tarifa.core.translate import apply as translate


class Refusal(StrEnum):
    """Why a call is refused, with the SIP status the switch answers with (docs/authorization.md).
    The value is the ``reason`` of the API's answer and of the dashboards' counts."""

    sip_code: int

    def __new__(cls, value: str, sip_code: int) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.sip_code = sip_code
        return member

    UNKNOWN_ACCOUNT = "unknown_account", 403
    AMBIGUOUS_ACCOUNT = AMBIGUOUS, 403
    ACCOUNT_DISABLED = "account_disabled", 403
    IP_NOT_ALLOWED = "ip_not_allowed", 403
    POP_NOT_ALLOWED = "pop_not_allowed", 403
    INVALID_NUMBER = "invalid_number", 484
    INSUFFICIENT_FUNDS = "insufficient_funds", 402
    DESTINATION_FORBIDDEN = "destination_forbidden", 403
    INTERNATIONAL_DISABLED = "international_disabled", 403
    COUNTRY_NOT_ALLOWED = "country_not_allowed", 403
    RATE_ABOVE_CAP = "rate_above_cap", 403
    NO_RATE = "no_rate", 404
    CONCURRENT_LIMIT = "concurrent_limit", 486
    CPS_LIMIT = "cps_limit", 503
    NO_ROUTE = "no_route", 503
    LOSS_ROUTE = "loss_route", 503
    PREMIUM_RATE_DISABLED = "premium_rate_disabled", 403
    DIRECTORY_411_ONLY = "directory_411_only", 403


VALUE: Final = "value"  # an account's route choice per class (customers.choices.RouteChoice)
PREMIUM: Final = "premium"
FREE: Final = RateTerms(price_1=Decimal(0), price_n=Decimal(0))

# --- the snapshot's views -----------------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class CustomerView:
    """What the decision reads of a customer (built by ``calls.cache`` from the model)."""

    id: int
    code: str
    company: str
    status: str
    active: bool
    tariff_id: int
    home: str  # ISO country code (US when none): emergency numbers and the domestic zone
    billing_decimals: int
    max_call_duration: int
    deny_loss_routes: bool = False
    codecs: tuple[str, ...] = ()  # the codec list when codec checking is on
    call_with_media: bool = True
    max_call_sessions: int | None = None
    calls_per_second: int | None = None
    daily_spending_limit: Decimal | None = None
    monthly_spending_limit: Decimal | None = None
    time_zone: str = "UTC"


@dataclass(frozen=True, slots=True)
class AccountView:
    """What the decision reads of an account, with its restrictions and its customer."""

    id: int
    customer: CustomerView
    code: str
    name: str
    status: str
    active: bool
    tariff_id: int | None = None
    own_balance: bool = False
    max_channels: int | None = None
    domestic_route: str = VALUE
    international_route: str = VALUE
    tollfree_route: str = VALUE
    tollfree_carrier: str = ""
    allow_411: bool = False
    allow_international: bool = False
    allow_premium_rate: bool = False
    allowed_countries: tuple[str, ...] = ()
    international_rate_cap: Decimal | None = None
    max_call_time_domestic: int | None = None
    max_call_time_international: int | None = None
    e911_caller_id: str = ""
    dialing_mode: str = "nanp"
    caller_id_number: str = ""
    allowed_codecs: tuple[str, ...] = ()
    rtp_timeout: int | None = None
    rtp_hold_timeout: int | None = None
    dtmf_mode: str = "auto"
    networks: tuple[Network, ...] = ()  # the IP restriction; empty: any address
    pops: frozenset[str] = frozenset()  # the POP restriction; empty: any POP

    @property
    def customer_id(self) -> int:
        return self.customer.id

    def route_choice(self, dclass: str) -> str:
        """The account's value/premium choice for calls of class ``dclass`` (value for the others)."""
        return {cls.DOMESTIC: self.domestic_route, cls.INTERNATIONAL: self.international_route,
                cls.TOLL_FREE: self.tollfree_route}.get(dclass, VALUE)


@dataclass(frozen=True, slots=True)
class Device:
    """A SIP or IP device: its own concurrent-call and CPS limits."""

    key: str  # "sip:<id>" or "ip:<id>": the reservation's device and the CPS scope
    account_id: int
    max_sessions: int | None
    cps: int | None


@dataclass(frozen=True, slots=True)
class RouteEntry:
    """One connection of a routing group with the destination set that prices it."""

    connection_id: int
    connection_name: str
    vendor: str
    address: str
    transport: str
    tech_prefix: str
    max_channels: int | None
    max_cps: int | None
    destination_set_id: int
    priority: int
    weight: int
    rules: tuple[Rule, ...] = ()
    emergency_format: str = ""  # "": tech prefix + the emergency number; else "{number}" in it

    @property
    def limited(self) -> bool:
        """Whether the connection has a channel or CPS limit (its state is read under its lock)."""
        return bool(self.max_channels or self.max_cps)


@dataclass(frozen=True, slots=True)
class Group:
    id: int
    name: str
    policy: str
    tariff_id: int | None
    entries: tuple[RouteEntry, ...]


@dataclass(frozen=True, slots=True)
class DialingPattern:
    """A customer's dialing route: numbers matching ``pattern`` go through group ``group_id``."""

    pattern: str
    group_id: int


@dataclass(frozen=True, slots=True)
class InboundPlan:
    rate: Decimal
    interval_1: int
    interval_n: int


@dataclass(frozen=True, slots=True)
class DidView:
    number: str
    account_id: int
    forward_to: str | None = None  # a DID forwarded to this number
    device_login: str = ""  # the SIP device the DID rings; neither: the account's devices
    plan: InboundPlan | None = None


@dataclass(frozen=True, slots=True)
class PriceList:
    """A tariff's (or destination set's) rates and its rounding."""

    table: RateTable
    rounding: str


class Catalogue(Protocol):
    """The read-mostly configuration a decision looks up (``calls.cache.Snapshot``)."""

    @property
    def accounts(self) -> Mapping[int, AccountView]: ...
    @property
    def index(self) -> AccountIndex: ...  # active accounts of active customers
    @property
    def index_all(self) -> AccountIndex: ...  # every account (a disabled one is refused as disabled)
    @property
    def by_sip(self) -> Mapping[str, Device]: ...
    @property
    def by_ip(self) -> Mapping[str, Device]: ...
    @property
    def dids(self) -> Mapping[str, DidView]: ...
    @property
    def account_dids(self) -> Mapping[int, AbstractSet[str]]: ...
    @property
    def customer_rules(self) -> Mapping[int, Sequence[Rule]]: ...
    @property
    def dialing_routes(self) -> Mapping[int, Sequence[DialingPattern]]: ...
    @property
    def offers(self) -> Mapping[tuple[str, str, str], int]: ...  # (class, choice, toll-free carrier) -> group
    @property
    def groups(self) -> Mapping[int, Group]: ...

    def tariff(self, tariff_id: int) -> PriceList: ...
    def destination_set(self, set_id: int) -> RateTable: ...


# --- request and answer --------------------------------------------------------------------------------


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


RouteAnswer = dict[str, str]  # one route of the answer, fields of api.calls.RouteOut
RateAnswer = dict[str, str | int]
MediaAnswer = dict[str, str | bool | int | list[str] | None]


@dataclass
class Decision:
    """The answer to the switch, filled in by :func:`plan` and then :meth:`apply` (the API's
    ``AuthorizeOut`` has exactly these fields but ``tracing``)."""

    allowed: bool
    reason: str = ""  # a Refusal, or "" when allowed
    sip_code: int = 200
    call_id: str = ""
    account: str = ""
    customer: str = ""
    number: str = ""
    destination_class: str = ""
    country: str = ""
    max_duration: int = 0
    caller_id: str = ""
    rate: RateAnswer | None = None
    media: MediaAnswer | None = None
    routes: list[RouteAnswer] = field(default_factory=list)
    reservation_id: int | None = None
    reserved: str = "0"
    trace: list[str] = field(default_factory=list)
    tracing: bool = True  # False: the steps are not written down (the switch did not ask for them)

    def note(self, step: str) -> None:
        if self.tracing:
            self.trace.append(step)

    def refuse(self, refusal: Refusal, why: str) -> None:
        self.allowed, self.reason, self.sip_code = False, refusal, refusal.sip_code
        self.trace.append(f"REFUSED {refusal} (SIP {refusal.sip_code}): {why}")

    def apply(self, verdict: Verdict, reservation_id: int | None = None, how: str = "") -> None:
        """Take the judge's verdict (and the reservation that stands behind it)."""
        if self.tracing:
            self.trace.extend(verdict.trace)
        if isinstance(verdict, Refused):
            self.refuse(verdict.refusal, verdict.why)
            return
        self.allowed, self.reason, self.sip_code = True, "", 200
        self.max_duration, self.reserved, self.reservation_id = verdict.duration, money(verdict.amount), reservation_id
        if verdict.routes is not None:
            self.routes = list(verdict.routes)
        if how and self.tracing:
            self.trace.append(how)


# --- the plan --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteCandidate:
    route: RouteEntry
    vendor_price: Decimal  # per minute, the destination set's first-interval price


@dataclass(frozen=True, slots=True)
class CpsLimit:
    scope: str  # "c:<customer id>", "d:<device key>", "n:<connection id>"
    limit: int


@dataclass(frozen=True, slots=True)
class SpendingWindow:
    """A daily or monthly spending limit: what may be spent since ``since`` (the customer's local
    midnight or 1st of the month)."""

    label: str  # "daily" | "monthly"
    limit: Decimal
    since: datetime


@dataclass(frozen=True)
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

    def cost(self, seconds: int) -> Decimal:
        """What a call of ``seconds`` costs at the plan's terms."""
        if self.free:
            return Decimal(0)
        if seconds == self.cap:
            return self.cap_cost
        return call_cost(self.terms, seconds, self.decimals, self.rounding)

    @cached_property
    def cap_cost(self) -> Decimal:
        """The cost of the longest call (the one-trip reservation's amount), computed once."""
        return Decimal(0) if self.free else call_cost(self.terms, self.cap, self.decimals, self.rounding)

    @cached_property
    def limited(self) -> tuple[int, ...]:
        """Ids of the candidate connections with a channel or CPS limit, ascending (the lock order)."""
        return tuple(sorted({c.route.connection_id for c in self.candidates if c.route.limited}))

    @cached_property
    def cps_limits(self) -> tuple[CpsLimit, ...]:
        """The CPS counters the call is checked against and counted in: only scopes with a limit
        (an unlimited scope's counter would be written by every call and read by none). The
        first route's connection counter is added when the call is reserved."""
        if self.emergency:
            return ()
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


_IDENTITY_LABELS: Final = {"sip_user": "SIP user", "trunk": "trunk", "extension": "PBX extension",
                           "account_code": "account code", "source_ip": "source IP"}


@dataclass(frozen=True, slots=True)
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
        d.note(f"inbound call to DID {did.number}")
        account = snap.accounts.get(did.account_id)
        return None if account is None else _Caller(account, None, did)

    if req.did and req.did.lstrip("+") in snap.dids:
        return by_did(req.did)
    identity = Identity(sip_user=req.sip_user, trunk=req.trunk, extension=req.extension,
                        account_code=req.account_code, source_ip=req.source_ip)
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
        d.note(f"{label}: account {account.code}" + (f", device {device.key}" if device else ""))
        return _Caller(account, device)
    if found.reason == AMBIGUOUS:
        codes = ", ".join(snap.accounts[a].code for a in found.candidates)
        d.refuse(Refusal.AMBIGUOUS_ACCOUNT, f"{label} names {len(found.candidates)} accounts ({codes}); "
                                            "the request's other identities do not tell which")
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


def restriction(account: AccountView, dest: cls.Destination, number: str, d: Decision
                ) -> tuple[Refusal, str] | None:
    """The account's restriction that refuses the destination (seed 001) with why, or None."""
    if dest.number_class == cls.DIRECTORY:
        if dest.number_type == cls.DIRECTORY_555:
            return (Refusal.DIRECTORY_411_ONLY,
                    f"{number} (NPA-555-1212) is not offered: dial 411 for directory assistance")
        if not account.allow_411:
            return Refusal.DESTINATION_FORBIDDEN, "411 directory assistance is not allowed for this account"
    if dest.number_class == cls.PREMIUM_RATE:
        if not account.allow_premium_rate:
            why = (f"{number} is a premium-rate number ({dest.region or 'unknown country'}); "
                   "premium-rate calls are off for this account")
            return Refusal.PREMIUM_RATE_DISABLED, why
        d.note("premium-rate calls allowed for this account")
    if dest.abroad:
        if not account.allow_international:
            why = {cls.PREMIUM_RATE: " (a premium-rate number abroad)",
                   cls.UNKNOWN: " (a number that may be abroad: its country is unknown)"}.get(dest.number_class, "")
            return Refusal.INTERNATIONAL_DISABLED, f"international calls are off for this account{why}"
        if account.allowed_countries and dest.region not in account.allowed_countries:
            return (Refusal.COUNTRY_NOT_ALLOWED,
                    f"{dest.region or 'unknown country'} is not in {list(account.allowed_countries)}")
    return None


def rank(candidates: Sequence[RouteCandidate], group: Group | None, call_id: str) -> tuple[RouteCandidate, ...]:
    """The candidates in the routing group's policy order. Each policy ranks a connection by its
    own key (price, priority, or a weight drawn from the call id), so dropping the connections at
    capacity later keeps the rest in this order: the ranking is done once, before any state."""
    by_id = {c.route.connection_id: c for c in candidates}
    ranking = order([Candidate(c.route.connection_id, c.vendor_price, c.route.priority, c.route.weight)
                     for c in candidates], group.policy if group else "priority", call_id)
    return tuple(by_id[c.connection_id] for c in ranking)


def spending_windows(customer: CustomerView, now: datetime) -> tuple[SpendingWindow, ...]:
    """The customer's daily and monthly spending limits with the start of the day and month they
    count from, in the customer's time zone."""
    windows = []
    for limit, start, label in ((customer.daily_spending_limit, day_start, "daily"),
                                (customer.monthly_spending_limit, month_start, "monthly")):
        if limit is not None:
            windows.append(SpendingWindow(label, limit, start(now, customer.time_zone)))
    return tuple(windows)


def plan(snap: Catalogue, req: CallRequest, d: Decision, now: datetime, system_cap: int) -> Plan | None:
    """Everything decided before the per-call state: None when the call is refused (``d`` says
    why); else the plan, with ``d`` holding account, number, class, rate, media and caller ID."""
    caller = identify(snap, req, d)
    if caller is None:
        if d.reason != Refusal.AMBIGUOUS_ACCOUNT:
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
    restricted = not emergency  # POP and IP restrictions guard money; an emergency call costs none (docs)
    if restricted and (req.source_ip and not ip_allowed(account, req.source_ip)
                       or (not req.source_ip and account.networks)):
        d.refuse(Refusal.IP_NOT_ALLOWED, f"{req.source_ip or 'no address'} is outside the account's IP restriction")
        return None
    if restricted and account.pops and req.pop not in account.pops:
        d.refuse(Refusal.POP_NOT_ALLOWED, f"POP {req.pop!r} is not among {sorted(account.pops)}")
        return None
    d.note(f"account {account.name} ({account.code}) of {customer.company}: active, "
           + ("IP and POP allowed" if restricted else "IP and POP restrictions do not apply to emergency calls"))
    d.media = {
        "codecs": list(account.allowed_codecs or customer.codecs), "with_media": customer.call_with_media,
        "rtp_timeout": account.rtp_timeout, "rtp_hold_timeout": account.rtp_hold_timeout,
        "dtmf_mode": account.dtmf_mode,
    }
    cap = min(system_cap, customer.max_call_duration)
    if caller.did is not None:
        return _plan_inbound(snap, d, account, caller.did, cap)
    sent = req.caller or account.caller_id_number  # seed 001: the account's caller ID when the device sends none
    d.caller_id = sent
    if sent != req.caller:
        d.note(f"caller ID: the account's {sent!r} (the switch sent none)")
    if number != req.callee:
        d.note(f"translation: callee {req.callee!r} -> {number!r}")
    if emergency:
        return _plan_emergency(snap, req, d, account, number, system_cap)
    return _plan_outbound(snap, req, d, caller, number, sent, rules, cap, now)


def _plan_outbound(snap: Catalogue, req: CallRequest, d: Decision, caller: _Caller, dialled_number: str,
                   sent: str, rules: Sequence[Rule], cap: int, now: datetime) -> Plan | None:
    account, customer = caller.account, caller.account.customer
    try:
        number = normalize(dialled_number, account.dialing_mode)
    except InvalidNumber as exc:
        d.refuse(Refusal.INVALID_NUMBER, f"{dialled_number!r}: {exc.reason}")
        return None
    d.number = number
    d.caller_id = translate(rules, "source", sent, number)
    if d.caller_id != sent:
        d.note(f"translation: caller {sent!r} -> {d.caller_id!r} (destination {number})")
    dest = cls.classify(dialled_number, number, customer.home)
    d.destination_class, d.country = dest.number_class, dest.region
    d.note(f"number {number}: {dest.number_class}{' (abroad)' if dest.abroad else ''}, "
           f"country {dest.region or '?'}, type {dest.number_type}")
    refused = restriction(account, dest, number, d)
    if refused is not None:
        d.refuse(*refused)
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
    d.rate = {"prefix": entry.prefix, "destination": entry.destination, "price_1": money(terms.price_1),
              "price_n": money(terms.price_n), "interval_1": terms.interval_1,
              "interval_n": terms.interval_n, "connect_fee": money(terms.connect_fee)}
    d.note(f"rate {entry.prefix} {entry.destination}: {money(terms.price_1)}/min "
           f"{terms.interval_1}/{terms.interval_n} (tariff {tariff_id})")
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
        if len(kept) < len(candidates):
            d.note(f"dropped {len(candidates) - len(kept)} loss route(s)")
        candidates = kept
    free = terms.price_1 == 0 and terms.price_n == 0 and terms.connect_fee == 0 and terms.min_charge == 0
    return Plan(account, caller.device, number, terms, customer.billing_decimals, prices.rounding, cap, group,
                rank(candidates, group, req.call_id), free, False, spending_windows(customer, now))


def _plan_inbound(snap: Catalogue, d: Decision, account: AccountView, did: DidView, cap: int) -> Plan:
    inbound = did.plan
    terms = FREE if inbound is None else RateTerms(
        price_1=inbound.rate, price_n=inbound.rate, interval_1=inbound.interval_1, interval_n=inbound.interval_n,
    )
    d.number, d.destination_class = did.number, "inbound"
    if did.forward_to is not None:
        d.routes = [{"type": "forward", "number": did.forward_to}]
    elif did.device_login:
        d.routes = [{"type": "sip_device", "login": did.device_login}]
    else:
        d.routes = [{"type": "sip_device", "login": login} for login, dev in snap.by_sip.items()
                    if dev.account_id == account.id]
    d.rate = {"prefix": did.number, "destination": "DID inbound", "price_1": money(terms.price_1),
              "price_n": money(terms.price_n), "interval_1": terms.interval_1, "interval_n": terms.interval_n,
              "connect_fee": "0"}
    d.note(f"inbound: {terms.price_1}/min, delivered to {d.routes}")
    free = terms.price_1 == 0 and terms.price_n == 0
    return Plan(account, None, did.number, terms, account.customer.billing_decimals, "half_up", cap, None, (),
                free, False)


def _plan_emergency(snap: Catalogue, req: CallRequest, d: Decision, account: AccountView, number: str,
                    system_cap: int) -> Plan:
    """Emergency calls always go, whatever the balance and restrictions (seed 001 e911 rule), and
    reach each vendor as the emergency number (:func:`route_answers`)."""
    d.number, d.destination_class, d.country = number.lstrip("+"), cls.EMERGENCY, account.customer.home
    own = snap.account_dids.get(account.id, frozenset())
    caller = (d.caller_id or req.caller).lstrip("+")
    if caller not in own and account.e911_caller_id:
        d.caller_id = account.e911_caller_id
        d.note(f"emergency: caller ID {caller!r} is not one of the account's DIDs, using e911 caller ID")
    else:
        d.note("emergency: always allowed")
    group = routing_group(snap, account, d.number, cls.EMERGENCY)
    candidates = [RouteCandidate(route, Decimal(0)) for route in (group.entries if group else ())]
    return Plan(account, None, d.number, FREE, account.customer.billing_decimals, "half_up", system_cap, group,
                rank(candidates, group, d.call_id), True, True)


# --- the judgement on the state -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Funds:
    """The balance the call draws on (the account's when it has its own) and its customer's terms."""

    balance: Decimal
    credit_limit: Decimal
    postpaid: bool


@dataclass(frozen=True, slots=True)
class CallState:
    """The per-call state, read under the customer's (and limited connections') locks."""

    funds: Funds
    customer_calls: int  # live reservations of the customer
    account_calls: int
    device_calls: int
    reserved: Decimal  # the customer's whole reservations (spending limits)
    shared_reserved: Decimal  # those on the customer's balance
    account_reserved: Decimal  # those of the account
    cps: Mapping[str, int] = field(default_factory=dict)  # calls this second by limited scope
    busy: Mapping[int, int] = field(default_factory=dict)  # live reservations by limited connection
    spent: Mapping[str, Decimal] = field(default_factory=dict)  # by spending window label, since its start


@dataclass(frozen=True, slots=True)
class Held:
    """A reservation the call id holds already (a switch's retry)."""

    reservation_id: int
    amount: Decimal
    max_duration: int
    connection_id: int | None


@dataclass(frozen=True, slots=True)
class Allowed:
    duration: int
    amount: Decimal  # to reserve
    first: RouteEntry | None  # the route the call takes first (its channel and CPS are the call's)
    routes: tuple[RouteAnswer, ...] | None  # None: the plan's (inbound calls)
    trace: tuple[str, ...] = ()

    @property
    def connection_id(self) -> int | None:
        return None if self.first is None else self.first.connection_id


@dataclass(frozen=True, slots=True)
class Refused:
    refusal: Refusal
    why: str
    trace: tuple[str, ...] = ()


Verdict = Allowed | Refused


def limit_reached(plan: Plan, state: CallState) -> tuple[Refusal, str] | None:
    """The first concurrent-call or CPS limit the state has reached, with why; None: room."""
    account, device, customer = plan.account, plan.device, plan.account.customer
    checks = (
        (state.customer_calls, customer.max_call_sessions, "customer", Refusal.CONCURRENT_LIMIT),
        (state.account_calls, account.max_channels, "account", Refusal.CONCURRENT_LIMIT),
        (state.device_calls, device.max_sessions if device else None, "device", Refusal.CONCURRENT_LIMIT),
        (state.cps.get(f"c:{customer.id}", 0), customer.calls_per_second, "customer", Refusal.CPS_LIMIT),
        (state.cps.get(f"d:{device.key}", 0) if device else 0, device.cps if device else None, "device",
         Refusal.CPS_LIMIT),
    )
    for used, limit, scope, refusal in checks:
        if limit is not None and used >= limit:
            what = "calls in progress" if refusal is Refusal.CONCURRENT_LIMIT else "calls this second"
            return refusal, f"{scope} has {used} {what}, limit {limit}"
    return None


def available_funds(plan: Plan, state: CallState, trace: list[str] | None) -> Decimal:
    """Prepaid: balance - reservations; postpaid: balance + credit limit - reservations; within the
    daily and monthly spending limits (spent since the window's start plus the calls in progress)."""
    funds = state.funds
    reserved = state.account_reserved if plan.account.own_balance else state.shared_reserved
    credit = funds.credit_limit if funds.postpaid else 0
    available = funds.balance - reserved + credit
    if trace is not None:
        trace.append(f"{'postpaid' if funds.postpaid else 'prepaid'}: balance {funds.balance}, credit limit {credit}, "
                     f"reserved {reserved} -> available {available}")
    for window in plan.spending:
        room = window.limit - state.spent.get(window.label, Decimal(0)) - state.reserved
        if trace is not None:
            trace.append(f"{window.label} spending limit {window.limit} since {window.since:%Y-%m-%d %H:%M} UTC: "
                         f"{room} left")
        available = min(available, room)
    return available


def usable_routes(plan: Plan, state: CallState, trace: list[str] | None, held: int | None = None
                  ) -> list[RouteEntry]:
    """The plan's ranked routes less the connections at capacity (``state`` was read under their
    locks). A retried call's ``held`` connection comes first: its channel is the call's."""
    kept: list[RouteEntry] = []
    for candidate in plan.candidates:
        route = candidate.route
        if route.connection_id == held:
            kept.insert(0, route)
            continue
        if route.max_channels is not None and state.busy.get(route.connection_id, 0) >= route.max_channels:
            if trace is not None:
                trace.append(f"connection {route.connection_name} at capacity ({route.max_channels} channels)")
            continue
        if route.max_cps is not None and state.cps.get(f"n:{route.connection_id}", 0) >= route.max_cps:
            if trace is not None:
                trace.append(f"connection {route.connection_name} at its CPS limit ({route.max_cps})")
            continue
        kept.append(route)
    return kept


def route_answers(plan: Plan, routes: Sequence[RouteEntry]) -> tuple[RouteAnswer, ...]:
    """Each route as the switch receives it, with the number as that connection wants it."""
    prices = {c.route.connection_id: c.vendor_price for c in plan.candidates}
    out = []
    for route in routes:
        if plan.emergency:  # as the connection wants emergency numbers; its translation rules never apply
            sent = route.emergency_format.replace("{number}", plan.number) if route.emergency_format \
                else route.tech_prefix + plan.number
        else:
            sent = route.tech_prefix + translate(route.rules, "destination", plan.number, plan.number)
        out.append({
            "connection": route.connection_name, "vendor": route.vendor, "address": route.address,
            "transport": route.transport, "number": sent, "vendor_price": money(prices[route.connection_id]),
        })
    return tuple(out)


def judge(plan: Plan, state: CallState, tracing: bool = True) -> Verdict:
    """The decision on a state read under the locks: limits, funds and max duration, usable
    routes. Pure: the verdict carries its trace and is applied by the caller."""
    trace: list[str] | None = [] if tracing else None
    if plan.emergency:
        duration = plan.cap
    else:
        reached = limit_reached(plan, state)
        if reached is not None:
            return Refused(*reached, trace=tuple(trace or ()))
        if trace is not None:
            trace.append(f"limits: {state.customer_calls} customer / {state.account_calls} account calls in progress, "
                         f"{state.cps.get(f'c:{plan.account.customer_id}', 0)} this second")
        available = available_funds(plan, state, trace)
        if plan.free:
            duration = plan.cap
        else:
            duration = max_duration(plan.terms, available, plan.decimals, plan.rounding, plan.cap)
        if duration <= 0:
            interval = call_cost(plan.terms, plan.terms.interval_1 + plan.terms.free_seconds, plan.decimals,
                                 plan.rounding)
            return Refused(Refusal.INSUFFICIENT_FUNDS, f"available {available} does not pay the first interval ({interval})",
                           tuple(trace or ()))
    first: RouteEntry | None = None
    answers: tuple[RouteAnswer, ...] | None = None
    if plan.group is not None:
        routes = usable_routes(plan, state, trace)
        if not routes and not plan.emergency:
            return Refused(Refusal.NO_ROUTE, "every connection of the routing group is at capacity", tuple(trace or ()))
        answers = route_answers(plan, routes)
        first = routes[0] if routes else None
    return Allowed(duration, plan.cost(duration), first, answers, tuple(trace or ()))


def answer_held(plan: Plan, held: Held, state: CallState, call_id: str, tracing: bool = True) -> Allowed:
    """A retried call id gets what it holds: the same reservation, max duration and amount, its
    connection first (then the others with room now). Nothing is reserved or counted again, and
    the limits the call itself fills do not refuse it."""
    trace: list[str] | None = [] if tracing else None
    answers = None
    if plan.group is not None:
        answers = route_answers(plan, usable_routes(plan, state, trace, held.connection_id))
    if trace is not None:
        trace.append(f"call id {call_id!r} already holds reservation {held.reservation_id}: the same answer, "
                     f"{held.max_duration} s, {money(held.amount)} reserved (a retry is counted once)")
    return Allowed(held.max_duration, held.amount, None, answers, tuple(trace or ()))


def stands_behind(plan: Plan, verdict: Verdict, reserved_connection: int | None) -> bool:
    """Whether the verdict is the call the one-round-trip statement reserved: the longest call
    (the cap) at its cost, through the connection the statement chose."""
    return (isinstance(verdict, Allowed) and verdict.duration == plan.cap and verdict.amount == plan.cap_cost
            and verdict.connection_id == reserved_connection)
