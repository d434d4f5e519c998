"""The judgement on the state read under the locks: limits, funds and max duration, usable
routes. Pure: a :data:`Verdict` carries its trace and is applied by the caller."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field
from decimal import Decimal

from tarifa.core.authorization.answer import Allowed, Held, Refused, RouteAnswer, Verdict
from tarifa.core.authorization.planning import Plan
from tarifa.core.authorization.record import record
from tarifa.core.authorization.refusal import Refusal
from tarifa.core.authorization.views import RouteEntry
from tarifa.core.deck import format_money as money
from tarifa.core.rating import call_cost, max_duration
from tarifa.core.translate import apply as translate


@record
class Funds:
    """The balance the call draws on (the account's when it has its own) and its customer's terms."""

    balance: Decimal
    credit_limit: Decimal
    postpaid: bool


@record
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


def limit_reached(plan: Plan, state: CallState) -> Refused | None:
    """The first concurrent-call or CPS limit the state has reached; None: room."""
    account, device, customer = plan.account, plan.device, plan.account.customer
    checks = (
        (state.customer_calls, customer.max_call_sessions, "customer", Refusal.CONCURRENT_LIMIT),
        (state.account_calls, account.max_channels, "account", Refusal.CONCURRENT_LIMIT),
        (state.device_calls, device.max_sessions if device else None, "device", Refusal.CONCURRENT_LIMIT),
        (state.cps.get(f"c:{customer.id}", 0), customer.calls_per_second, "customer", Refusal.CPS_LIMIT),
        (
            state.cps.get(f"d:{device.key}", 0) if device else 0,
            device.cps if device else None,
            "device",
            Refusal.CPS_LIMIT,
        ),
    )
    for used, limit, scope, refusal in checks:
        if limit is not None and used >= limit:
            what = "calls in progress" if refusal is Refusal.CONCURRENT_LIMIT else "calls this second"
            return Refused(refusal, f"{scope} has {used} {what}, limit {limit}")
    return None


def spendable(balance: Decimal, credit_limit: Decimal, postpaid: bool) -> Decimal:
    """What a balance may still pay: down to 0 when prepaid, down to minus the credit limit when
    postpaid -- the one statement of this rule (calls here; service charges' unpaid block too)."""
    return balance + (credit_limit if postpaid else 0)


def available_funds(plan: Plan, state: CallState, trace: list[str] | None) -> Decimal:
    """Prepaid: balance - reservations; postpaid: balance + credit limit - reservations; within the
    daily and monthly spending limits (spent since the window's start plus the calls in progress)."""
    funds = state.funds
    reserved = state.account_reserved if plan.account.own_balance else state.shared_reserved
    credit = funds.credit_limit if funds.postpaid else 0
    available = spendable(funds.balance, funds.credit_limit, funds.postpaid) - reserved
    if trace is not None:
        trace.append(
            f"{'postpaid' if funds.postpaid else 'prepaid'}: balance {funds.balance}, credit limit {credit}, "
            f"reserved {reserved} -> available {available}"
        )
    for window in plan.spending:
        room = window.limit - state.spent.get(window.label, Decimal(0)) - state.reserved
        if trace is not None:
            trace.append(
                f"{window.label} spending limit {window.limit} since {window.since:%Y-%m-%d %H:%M} UTC: {room} left"
            )
        available = min(available, room)
    return available


def usable_routes(plan: Plan, state: CallState, trace: list[str] | None, held: int | None = None) -> list[RouteEntry]:
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
            sent = (
                route.emergency_format.replace("{number}", plan.number)
                if route.emergency_format
                else route.tech_prefix + plan.number
            )
        else:
            sent = route.tech_prefix + translate(route.rules, "destination", plan.number, plan.number)
        out.append(
            {
                "connection": route.connection_name,
                "vendor": route.vendor,
                "address": route.address,
                "transport": route.transport,
                "number": sent,
                "vendor_price": money(prices[route.connection_id]),
            }
        )
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
            return reached
        if trace is not None:
            trace.append(
                f"limits: {state.customer_calls} customer / {state.account_calls} account calls in progress, "
                f"{state.cps.get(f'c:{plan.account.customer_id}', 0)} this second"
            )
        available = available_funds(plan, state, trace)
        if plan.free:
            duration = plan.cap
        else:
            duration = max_duration(plan.terms, available, plan.decimals, plan.rounding, plan.cap)
        if duration <= 0:
            interval = call_cost(
                plan.terms, plan.terms.interval_1 + plan.terms.free_seconds, plan.decimals, plan.rounding
            )
            return Refused(
                Refusal.INSUFFICIENT_FUNDS,
                f"available {available} does not pay the first interval ({interval})",
                tuple(trace or ()),
            )
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
        trace.append(
            f"call id {call_id!r} already holds reservation {held.reservation_id}: the same answer, "
            f"{held.max_duration} s, {money(held.amount)} reserved (a retry is counted once)"
        )
    return Allowed(held.max_duration, held.amount, None, answers, tuple(trace or ()))


def stands_behind(plan: Plan, verdict: Verdict, reserved_connection: int | None) -> bool:
    """Whether the verdict is the call the one-round-trip statement reserved: the longest call
    (the cap) at its cost, through the connection the statement chose."""
    return (
        isinstance(verdict, Allowed)
        and verdict.duration == plan.cap
        and verdict.amount == plan.cap_cost
        and verdict.connection_id == reserved_connection
    )
