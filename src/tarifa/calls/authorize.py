"""Real-time call authorisation and least-cost routing: the service (DESIGN.md §4-§6, seed 001 and 003).

``authorize_call`` answers a softswitch: may this call go, through which routes, with which
number, for how long. It ties three parts together:

* the decision, pure (``tarifa.core.authorization``): :func:`plan` on the process snapshot
  (``calls.cache``), then :func:`judge` on the per-call state;
* the state, in the database (``calls.storage``, one store per database): balance,
  reservations, concurrent calls and calls per second, read under the customer's lock (and any
  limited connection's) and written in the same transaction, so several processes on several
  machines stay exact;
* the retries' rules: a call id that holds a reservation gets the same answer.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from django.db import IntegrityError, OperationalError, transaction
from django.db.models import F

from tarifa import config
from tarifa.calls import cache, storage
from tarifa.calls.models import Reservation
from tarifa.core.authorization import (
    Allowed,
    CallRequest,
    Decision,
    Held,
    Plan,
    Refusal,
    answer_held,
    judge,
    plan,
    stands_behind,
)
from tarifa.customers.choices import AccountKind, Status
from tarifa.customers.models import Account

logger = logging.getLogger("tarifa.calls")

SYSTEM_CAP = config.max_call_seconds()

__all__ = [
    "CallRequest",
    "Decision",
    "Refusal",
    "authorize_call",
    "count_refusal",
    "end_call",
    "find_account",
    "simulate_for",
]


def _may_go_in_one_trip(planned: Plan, reserve: bool) -> bool:
    """Whether the call may be tried in one statement (``CallStore.one_trip``): a call that
    reserves, and no part of the decision that needs more than the state (emergency calls, a
    zero cap, spending limits: their transactions)."""
    return reserve and not planned.emergency and planned.cap > 0 and not planned.spending


def _decide_in_one_trip(store: storage.CallStore, planned: Plan, req: CallRequest, d: Decision, now: datetime) -> bool:
    """One statement locks and reads the state and, when it leaves room for the longest call the
    plan allows, reserves it. The decision is then taken from that state by :func:`judge`, as in
    the transaction; it must be the one the database acted on. True when ``d`` is final; False
    when this connection cannot, or the state allows a call other than the planned one (funds
    for a shorter call): nothing was kept, and the caller decides in a transaction."""
    trip = store.one_trip(planned, req, now)
    if trip is None:
        return False
    try:
        verdict = judge(planned, trip.state, d.tracing)
    except BaseException:
        if trip.reservation_id is not None:  # no decision stands behind the hold: release it
            store.release(trip)
        raise
    if trip.reservation_id is None:
        if isinstance(verdict, Allowed):
            return False  # allowed, but not as planned: the transaction decides
        # refused on the locked state (nothing written) unless it holds this very call
        held = store.held(req) if trip.state.customer_calls else None
        if held is None:
            d.apply(verdict)
        else:
            d.apply(answer_held(planned, held, trip.state, req.call_id, d.tracing), held.reservation_id)
        return True
    if not stands_behind(planned, verdict, trip.connection_id):
        # Never keep a hold the decision does not stand behind; decide again in a transaction.
        store.release(trip)
        logger.error(
            "call %s: the one-trip reservation (%s s, connection %s) differs from the decision (%s); deciding again",
            req.call_id,
            planned.cap,
            trip.connection_id,
            verdict,
        )
        return False
    assert isinstance(verdict, Allowed)
    d.apply(
        verdict, trip.reservation_id, f"ALLOWED for {verdict.duration} s, reserving {verdict.amount} (one round trip)"
    )
    return True


def _decide_in_transaction(
    store: storage.CallStore,
    planned: Plan,
    req: CallRequest,
    d: Decision,
    now: datetime,
    reserve: bool,
    held: Held | None,
) -> None:
    """Lock and read the call's state, judge, and reserve. A call id that already holds a
    reservation (``held``, or found when the state would refuse the call: the call's own
    reservation fills the limit) is answered with it."""
    with store.transaction(reserve):
        state = store.read(planned, now)
        if held is None:
            verdict = judge(planned, state, d.tracing)
            if isinstance(verdict, Allowed):
                reservation_id = store.reserve(planned, req, now, verdict) if reserve else None
                d.apply(
                    verdict,
                    reservation_id,
                    f"ALLOWED for {verdict.duration} s, reserving {verdict.amount}"
                    + ("" if reserve else " (simulation: nothing reserved)"),
                )
                return
            # refused, unless the state holds this very call (a simulation holds nothing)
            held = store.held(req) if reserve and state.customer_calls else None
            if held is None:
                d.apply(verdict)
                return
        d.apply(answer_held(planned, held, state, req.call_id, d.tracing), held.reservation_id)


def authorize_call(
    req: CallRequest, *, reserve: bool = True, now: datetime | None = None, trace: bool = True
) -> Decision:
    """Decide on one call attempt; with ``reserve`` the call's maximum cost is held until it ends.
    Without ``trace`` the decision's steps are not written down (refusals keep their reason)."""
    now = now or datetime.now(UTC)
    snap = cache.snapshot()
    store = storage.store()
    held: Held | None = None
    for attempt in range(10):
        d = Decision(allowed=False, call_id=req.call_id, tracing=trace)
        planned = plan(snap, req, d, now, SYSTEM_CAP)
        if planned is None:
            break
        try:
            if (
                held is None
                and _may_go_in_one_trip(planned, reserve)
                and _decide_in_one_trip(store, planned, req, d, now)
            ):
                break
            _decide_in_transaction(store, planned, req, d, now, reserve, held)
            break
        except IntegrityError:
            # The same call id authorised twice (a switch's retry): answer with the reservation
            # it holds, on a fresh reading of the state (for its routes); if the reservation was
            # released meanwhile, decide again (a new reservation can be made).
            held = store.held(req)
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
    from tarifa.calls.models import Refusal as RefusalCount

    lookup = {"day": now.date(), "customer_id": customer_id, "reason": reason}
    for _attempt in range(3):
        if RefusalCount.objects.filter(**lookup).update(count=F("count") + 1):
            return
        try:
            with transaction.atomic():
                RefusalCount.objects.create(**lookup, count=1)
            return
        except IntegrityError:
            continue


def end_call(switch: str, call_id: str) -> bool:
    """The switch reports the end of a call: its reservation is released (the CDR does it too)."""
    if not call_id or len(call_id) > 255 or "\x00" in call_id:
        return False  # no call can have this id: nothing to look up
    return Reservation.objects.filter(switch=switch, call_id=call_id).delete()[0] > 0


def find_account(identity: str) -> Account:
    """An account by code, SIP user, trunk name or name, for operator tools."""
    found = (
        Account.objects.filter(account_code=identity).first()
        or Account.objects.filter(sipdevices__login=identity).first()
        or Account.objects.filter(kind=AccountKind.TRUNK, identifier=identity).first()
        or Account.objects.filter(name=identity).first()
    )
    if found is None:
        raise LookupError(f"no account with code, SIP user, trunk or name {identity!r}")
    return found


def simulate_for(identity: str, callee: str, *, caller: str = "", source_ip: str = "", pop: str = "") -> Decision:
    """The decision for a call from this account, reserving nothing (``tarifa call simulate``, admin)."""
    account = find_account(identity)
    device = account.sipdevices.filter(status=Status.ACTIVE).first()
    request = CallRequest(
        call_id=f"simulation-{time.time_ns()}",
        callee=callee,
        caller=caller,
        switch="simulation",
        source_ip=source_ip,
        pop=pop,
        sip_user=device.login if device else "",
        trunk=account.identifier if account.kind == AccountKind.TRUNK and not device else "",
        account_code="" if device or account.kind == AccountKind.TRUNK else account.account_code,
    )
    return authorize_call(request, reserve=False)
