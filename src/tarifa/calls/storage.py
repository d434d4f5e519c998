"""The per-call state of an authorisation in the database: lock, read, reserve, release.

The decision itself is pure (``tarifa.core.authorization``); this module is the only one of the
authorisation that talks to the database, with one implementation of :class:`CallStore` per
database, each owning its transaction handling:

* :class:`SqliteStore`: plain statements in Django's atomic block (``BEGIN IMMEDIATE``: SQLite's
  one write lock serialises the calls).
* :class:`PostgresStore`: the PL/pgSQL functions of migrations calls 0004-0007.
  ``tarifa_call_state`` takes the customer's and the limited connections' advisory locks and
  reads the state in one statement; ``tarifa_call_reserve`` counts the CPS scopes and inserts the
  reservation. In a server's request (autocommit, client-side binding) ``BEGIN`` travels with the
  first and ``COMMIT`` with the second (two round trips, no transaction strings of their own).
  There, too, :meth:`PostgresStore.one_trip` sends ``tarifa_call_authorize``: lock, read and —
  when the state leaves room for the call as planned — reserve, in one prepared statement whose
  numbers travel packed in one ``bigint[]`` each way (:class:`Packed`, :class:`Slot`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import IntEnum
from typing import Any, Protocol

from django.db import connection, transaction
from django.db.models import Sum

from tarifa.billing.models import Transaction
from tarifa.calls.models import CallRate, Reservation
from tarifa.core.authorization import Allowed, CallRequest, CallState, Funds, Held, Plan
from tarifa.core.payments import TransactionKind
from tarifa.core.periods import micros
from tarifa.customers.choices import BillingType
from tarifa.customers.models import Account, Customer
from tarifa.db import any_of, call_prepared

RESERVATION_MARGIN = 120  # seconds a reservation outlives the call's max duration
_UNITS = Reservation._meta.get_field("amount")  # money in the database: integer micro-units


def _money(units: int | None) -> Decimal:
    value = _UNITS.from_db_value(units, None, connection)
    assert value is not None
    return value


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _dt(value: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


@dataclass(frozen=True, slots=True)
class OneTrip:
    """What ``tarifa_call_authorize`` did: the state it read and, when it had room for the call
    as planned, the reservation it made (and the CPS scopes it counted the call in)."""

    state: CallState
    reservation_id: int | None
    connection_id: int | None
    counted: tuple[str, ...]
    second: int


class CallStore(Protocol):
    """The database side of one authorisation (one object per call)."""

    def transaction(self, reserve: bool) -> AbstractContextManager[None]:
        """The decision's transaction; a simulation (``reserve`` False) rolls back."""

    def read(self, plan: Plan, now: datetime) -> CallState:
        """Take the call's locks, then read its state (inside :meth:`transaction`)."""

    def reserve(self, plan: Plan, req: CallRequest, now: datetime, verdict: Allowed) -> int:
        """Hold the allowed call's amount and count it in its CPS scopes (inside :meth:`transaction`)."""

    def held(self, req: CallRequest) -> Held | None:
        """The reservation this call id holds already (a switch's retry)."""

    def one_trip(self, plan: Plan, req: CallRequest, now: datetime) -> OneTrip | None:
        """Lock, read and reserve the planned call in one statement; None when this connection
        cannot (SQLite; inside a caller's transaction)."""

    def release(self, trip: OneTrip) -> None:
        """Undo a one-trip reservation the decision does not stand behind."""


def store() -> CallStore:
    """The store of this thread's database connection."""
    return PostgresStore() if connection.vendor == "postgresql" else SqliteStore()


class _Common:
    """What both databases do alike: retries' look-up, spending sums."""

    def held(self, req: CallRequest) -> Held | None:
        found = Reservation.objects.filter(switch=req.switch, call_id=req.call_id).first()
        if found is None:
            return None
        return Held(found.pk, found.amount, found.max_duration, found.connection_id)

    def _spent(self, plan: Plan) -> dict[str, Decimal]:
        """Call charges and adjustments posted in each of the plan's spending windows (read
        under the customer's lock, so two calls cannot both spend the last of a limit)."""
        spent = {}
        for window in plan.spending:
            total = Transaction.objects.filter(
                customer_id=plan.account.customer_id,
                kind__in=(TransactionKind.CALL_CHARGE, TransactionKind.ADJUSTMENT),
                created_at__gte=window.since,
            ).aggregate(s=Sum("amount"))["s"]
            spent[window.label] = -(total or Decimal(0))
        return spent

    def one_trip(self, plan: Plan, req: CallRequest, now: datetime) -> OneTrip | None:
        return None

    def release(self, trip: OneTrip) -> None:
        raise NotImplementedError("only PostgreSQL reserves in one trip")


class SqliteStore(_Common):
    """Plain statements inside the atomic block, whose ``BEGIN IMMEDIATE`` holds SQLite's one
    write lock: the reads and the reservation are serialised with every other writer."""

    @contextmanager
    def transaction(self, reserve: bool) -> Iterator[None]:
        with transaction.atomic():
            yield None
            if not reserve:
                transaction.set_rollback(True)

    def read(self, plan: Plan, now: datetime) -> CallState:
        account, device = plan.account, plan.device
        second = int(now.timestamp())
        table, rates = _q(Reservation._meta.db_table), _q(CallRate._meta.db_table)
        condition, scope_params = any_of("scope", plan.cps_scopes or [""])

        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT balance, credit_limit, billing_type FROM {_q(Customer._meta.db_table)} WHERE id = %s",
                [account.customer_id],
            )
            balance, credit, billing = cursor.fetchone()
            if account.own_balance:
                cursor.execute(f"SELECT balance FROM {_q(Account._meta.db_table)} WHERE id = %s", [account.id])
                balance = cursor.fetchone()[0]
            cursor.execute(
                f"SELECT COUNT(*), COALESCE(SUM(amount), 0), "
                f"COALESCE(SUM(CASE WHEN account_id = %s THEN 1 ELSE 0 END), 0), "
                f"COALESCE(SUM(CASE WHEN account_id = %s THEN amount ELSE 0 END), 0), "
                f"COALESCE(SUM(CASE WHEN device = %s THEN 1 ELSE 0 END), 0), "
                f"COALESCE(SUM(CASE WHEN own_balance THEN 0 ELSE amount END), 0), 'calls', 0 "
                f"FROM {table} WHERE customer_id = %s AND expires_at >= %s "
                f"UNION ALL SELECT 0, 0, 0, 0, 0, 0, scope, count FROM {rates} WHERE {condition} AND second = %s",
                [
                    account.id,
                    account.id,
                    device.key if device else "",
                    account.customer_id,
                    _dt(now),
                    *scope_params,
                    second,
                ],
            )
            rows = cursor.fetchall()
            busy: dict[int, int] = {}
            cps = {row[6]: row[7] for row in rows[1:]}
            if plan.limited:
                in_ids, id_params = any_of("connection_id", list(plan.limited))
                in_scopes, n_params = any_of("scope", [f"n:{cid}" for cid in plan.limited])
                cursor.execute(
                    f"SELECT connection_id, COUNT(*), '' FROM {table} "
                    f"WHERE {in_ids} AND expires_at >= %s GROUP BY connection_id "
                    f"UNION ALL SELECT 0, count, scope FROM {rates} WHERE {in_scopes} AND second = %s",
                    [*id_params, _dt(now), *n_params, second],
                )
                for cid, count, scope in cursor.fetchall():
                    if scope:
                        cps[scope] = count
                    else:
                        busy[cid] = count
        calls, reserved, account_calls, account_units, device_calls, shared_units, _label, _n = rows[0]
        return CallState(
            funds=Funds(_money(balance), _money(credit), billing == BillingType.POSTPAID),
            customer_calls=calls,
            account_calls=account_calls,
            device_calls=device_calls,
            reserved=_money(reserved),
            shared_reserved=_money(shared_units),
            account_reserved=_money(account_units),
            cps=cps,
            busy=busy,
            spent=self._spent(plan) if plan.spending else {},
        )

    def reserve(self, plan: Plan, req: CallRequest, now: datetime, verdict: Allowed) -> int:
        second = int(now.timestamp())
        scopes = _counted(plan, verdict)
        values = _reservation_values(plan, req, now, verdict)
        columns = ", ".join(_RESERVATION_COLUMNS)
        placeholders = ", ".join(["%s"] * len(values))
        rates = _q(CallRate._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {_q(Reservation._meta.db_table)} ({columns}) VALUES ({placeholders}) RETURNING id", values
            )
            reservation_id: int = cursor.fetchone()[0]
            if scopes:
                cursor.executemany(
                    f"INSERT INTO {rates} (scope, second, count) VALUES (%s, %s, 1) "
                    f"ON CONFLICT (scope, second) DO UPDATE SET count = {rates}.count + 1",
                    [[scope, second] for scope in scopes],
                )
        return reservation_id


_RESERVATION_COLUMNS = (
    "switch",
    "call_id",
    "customer_id",
    "account_id",
    "own_balance",
    "connection_id",
    "device",
    "amount",
    "max_duration",
    "created_at",
    "expires_at",
)


def _reservation_values(plan: Plan, req: CallRequest, now: datetime, verdict: Allowed) -> list[Any]:
    """The reservation's row, in the order of ``_RESERVATION_COLUMNS`` (and of ``tarifa_call_reserve``)."""
    account, device = plan.account, plan.device
    return [
        req.switch,
        req.call_id,
        account.customer_id,
        account.id,
        account.own_balance,
        verdict.connection_id,
        device.key if device else "",
        _UNITS.get_prep_value(verdict.amount),
        verdict.duration,
        _dt(now),
        _dt(now + timedelta(seconds=verdict.duration + RESERVATION_MARGIN)),
    ]


def _counted(plan: Plan, verdict: Allowed) -> list[str]:
    """The CPS scopes an allowed call is counted in: the plan's limited ones and its first
    route's connection when that has a CPS limit."""
    first = verdict.first
    return plan.cps_scopes + ([f"n:{first.connection_id}"] if first is not None and first.max_cps is not None else [])


# --- PostgreSQL ------------------------------------------------------------------------------------------


class Packed(IntEnum):
    """Positions (0-based) of the fixed head of ``p``, the numbers ``tarifa_call_authorize``
    takes (migration calls 0007, whose docstring counts them 1-based as SQL does). After the
    head: the k limits of the CPS scopes, then m and the m limited connection ids, then one
    (connection id, max channels, max CPS) triple per candidate route in routing order."""

    CUSTOMER = 0
    ACCOUNT = 1
    OWN_BALANCE = 2  # 1/0
    NOW = 3  # µs since the epoch
    SECOND = 4  # the second counted for CPS
    AMOUNT = 5  # to reserve, in micro-units; NULL: a free call
    MAX_DURATION = 6
    EXPIRES = 7  # µs since the epoch
    CUSTOMER_SESSIONS = 8  # concurrent-call limits; NULL: none
    ACCOUNT_CHANNELS = 9
    DEVICE_SESSIONS = 10
    CPS_SCOPES = 11  # k


class Slot(IntEnum):
    """Positions (0-based) of the ``state`` ``tarifa_call_authorize`` returns; after them one
    count per CPS scope it returns, then (connection id, live calls) pairs of the limited
    connections."""

    BALANCE = 0
    CREDIT_LIMIT = 1
    CALLS = 2
    RESERVED = 3
    ACCOUNT_CALLS = 4
    ACCOUNT_RESERVED = 5
    DEVICE_CALLS = 6
    SHARED_RESERVED = 7
    RESERVATION_ID = 8
    CONNECTION_ID = 9
    COUNTS = 10


def pack(plan: Plan, now: datetime) -> list[int | None]:
    """``p`` of ``tarifa_call_authorize`` for the planned call: the longest call (the cap) at its cost."""
    account, device, customer = plan.account, plan.device, plan.account.customer
    head: list[int | None] = [0] * len(Packed)
    head[Packed.CUSTOMER] = customer.id
    head[Packed.ACCOUNT] = account.id
    head[Packed.OWN_BALANCE] = 1 if account.own_balance else 0
    head[Packed.NOW] = micros(now)
    head[Packed.SECOND] = int(now.timestamp())
    head[Packed.AMOUNT] = None if plan.free else _UNITS.get_prep_value(plan.cap_cost)
    head[Packed.MAX_DURATION] = plan.cap
    head[Packed.EXPIRES] = micros(now + timedelta(seconds=plan.cap + RESERVATION_MARGIN))
    head[Packed.CUSTOMER_SESSIONS] = customer.max_call_sessions
    head[Packed.ACCOUNT_CHANNELS] = account.max_channels
    head[Packed.DEVICE_SESSIONS] = device.max_sessions if device else None
    head[Packed.CPS_SCOPES] = len(plan.cps_limits)
    numbers = head + [limit.limit for limit in plan.cps_limits] + [len(plan.limited), *plan.limited]
    for candidate in plan.candidates:
        route = candidate.route
        numbers += (route.connection_id, route.max_channels, route.max_cps)
    return numbers


def _array(values: Sequence[int | str | None]) -> str:
    """A PostgreSQL array literal of integers and CPS scope names (``c:12``, ``d:sip:3``,
    ``n:7``; none needs quoting), NULL for None: sent as one text parameter, which costs the
    driver far less than a Python list it must inspect element by element on every call."""
    return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"


def _state(
    plan: Plan,
    amount: int | None,
    credit: int | None,
    billing: str | None,
    calls: int,
    reserved: int,
    account_calls: int,
    account_units: int,
    device_calls: int,
    shared_units: int,
    cps: dict[str, int],
    busy: dict[int, int],
    spent: dict[str, Decimal],
) -> CallState:
    if billing is None or amount is None:  # as the plain statements: no customer row is an error
        raise LookupError(f"customer {plan.account.customer_id} not found")
    return CallState(
        funds=Funds(_money(amount), _money(credit), billing == BillingType.POSTPAID),
        customer_calls=calls,
        account_calls=account_calls,
        device_calls=device_calls,
        reserved=_money(reserved),
        shared_reserved=_money(shared_units),
        account_reserved=_money(account_units),
        cps=cps,
        busy=busy,
        spent=spent,
    )


def unpack(plan: Plan, row: tuple[Any, ...]) -> tuple[CallState, int | None, int | None]:
    """(state, reservation id, connection id) from the row of ``tarifa_call_authorize``."""
    numbers, billing, scopes = row
    scopes = scopes or []
    counts = numbers[Slot.COUNTS : Slot.COUNTS + len(scopes)]
    pairs = numbers[Slot.COUNTS + len(scopes) :]
    state = _state(
        plan,
        numbers[Slot.BALANCE],
        numbers[Slot.CREDIT_LIMIT],
        billing,
        numbers[Slot.CALLS],
        numbers[Slot.RESERVED],
        numbers[Slot.ACCOUNT_CALLS],
        numbers[Slot.ACCOUNT_RESERVED],
        numbers[Slot.DEVICE_CALLS],
        numbers[Slot.SHARED_RESERVED],
        dict(zip(scopes, counts, strict=True)),
        dict(zip(pairs[0::2], pairs[1::2], strict=True)),
        {},
    )
    return state, numbers[Slot.RESERVATION_ID], numbers[Slot.CONNECTION_ID]


_AUTHORIZE_SQL = "SELECT * FROM tarifa_call_authorize(%s::bigint[], %s::text[], %s::text, %s::text, %s::text)"
_STATE_SQL = "SELECT * FROM tarifa_call_state(%s, %s, %s, %s, %s, %s::text[], %s, %s::bigint[])"
_RESERVE_SQL = "SELECT tarifa_call_reserve(%s::text[], %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


def _autocommit() -> bool:
    """In autocommit mode outside any caller's transaction: a server's request."""
    return connection.get_autocommit() and not connection.in_atomic_block


class PostgresStore(_Common):
    """The functions of migrations calls 0004-0007. In a server's request with client-side
    binding the transaction is *carried*: ``BEGIN`` in the same query as ``tarifa_call_state``,
    ``COMMIT`` in the same query as ``tarifa_call_reserve`` (a refused call or a simulation ends
    with its own ``COMMIT``/``ROLLBACK``, an error with ``ROLLBACK``); elsewhere Django's atomic
    block (a savepoint inside a caller's transaction)."""

    def __init__(self) -> None:
        self._carried = False  # this transaction's BEGIN/COMMIT travel with the functions
        self._open = False  # a carried transaction has begun and not ended

    @contextmanager
    def transaction(self, reserve: bool) -> Iterator[None]:
        if not (_autocommit() and not connection.settings_dict["OPTIONS"].get("server_side_binding")):
            with transaction.atomic():
                yield None
                if not reserve:
                    transaction.set_rollback(True)
            return
        self._carried, self._open = True, False
        try:
            yield None
        except BaseException:
            if self._open:
                try:
                    with connection.cursor() as cursor:
                        cursor.execute("ROLLBACK")
                except Exception:  # noqa: BLE001  (any failure: the connection is closed below)
                    connection.close()  # state unknown: never reuse it
            raise
        finally:
            self._carried = False
        if self._open:  # refused, or a simulation: nothing to keep
            with connection.cursor() as cursor:
                cursor.execute("COMMIT" if reserve else "ROLLBACK")
            self._open = False

    def read(self, plan: Plan, now: datetime) -> CallState:
        account, device = plan.account, plan.device
        params: list[Any] = [
            account.customer_id,
            account.id,
            account.own_balance,
            device.key if device else "",
            now,
            plan.cps_scopes + [f"n:{cid}" for cid in plan.limited],
            int(now.timestamp()),
            list(plan.limited),
        ]
        with connection.cursor() as cursor:
            if self._carried:
                self._open = True
                cursor.execute("BEGIN; " + _STATE_SQL, params)
                cursor.nextset()
            else:
                cursor.execute(_STATE_SQL, params)
            (
                amount,
                credit,
                billing,
                calls,
                reserved,
                account_calls,
                account_units,
                device_calls,
                shared_units,
                scopes,
                counts,
                connection_ids,
                connection_calls,
            ) = cursor.fetchone()
        return _state(
            plan,
            amount,
            credit,
            billing,
            calls,
            reserved,
            account_calls,
            account_units,
            device_calls,
            shared_units,
            dict(zip(scopes or [], counts or [], strict=True)),
            dict(zip(connection_ids or [], connection_calls or [], strict=True)),
            self._spent(plan) if plan.spending else {},
        )

    def reserve(self, plan: Plan, req: CallRequest, now: datetime, verdict: Allowed) -> int:
        params = [_counted(plan, verdict), int(now.timestamp()), *_reservation_values(plan, req, now, verdict)]
        with connection.cursor() as cursor:
            cursor.execute(_RESERVE_SQL + "; COMMIT" if self._open else _RESERVE_SQL, params)
            reservation_id: int = cursor.fetchone()[0]
        self._open = False
        return reservation_id

    def one_trip(self, plan: Plan, req: CallRequest, now: datetime) -> OneTrip | None:
        if not _autocommit():
            return None
        device = plan.device
        scopes = plan.cps_scopes
        params = [
            _array(pack(plan, now)),
            _array(scopes + [f"n:{cid}" for cid in plan.limited]),
            req.switch,
            req.call_id,
            device.key if device else "",
        ]
        # (an IntegrityError: this call id holds a reservation already; the service answers with it)
        row = call_prepared(_AUTHORIZE_SQL, params)
        assert row is not None
        state, reservation_id, connection_id = unpack(plan, row)
        # what the statement counted when it reserved: the limited scopes and the route's connection
        counted = list(scopes)
        if any(c.route.connection_id == connection_id and c.route.max_cps is not None for c in plan.candidates):
            counted.append(f"n:{connection_id}")
        return OneTrip(state, reservation_id, connection_id, tuple(counted), int(now.timestamp()))

    def release(self, trip: OneTrip) -> None:
        """Undo what ``tarifa_call_authorize`` wrote for one call, in one statement: its
        reservation and its count in the CPS counters it counted it in."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH gone AS (DELETE FROM {_q(Reservation._meta.db_table)} WHERE id = %s RETURNING id) "
                f"UPDATE {_q(CallRate._meta.db_table)} SET count = count - 1 "
                f"WHERE scope = ANY(%s) AND second = %s AND count > 0 AND EXISTS (SELECT 1 FROM gone)",
                [trip.reservation_id, list(trip.counted), trip.second],
            )
