"""The authorisation's policy as pure functions (core.authorization): no database, no Django.

The integration tests (tests/integration/test_authorize*.py) check the same rules through the
service and the database on SQLite and PostgreSQL; these pin each rule on plain data."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tarifa.core import authorization as az
from tarifa.core.authorization import (
    AccountView,
    Allowed,
    CallRequest,
    CallState,
    CustomerView,
    Decision,
    Device,
    Funds,
    Group,
    Held,
    Plan,
    PriceList,
    Refusal,
    Refused,
    RouteEntry,
)
from tarifa.core.identity import AccountIndex
from tarifa.core.rating import RateEntry, RateTable, RateTerms, call_cost, max_duration
from tarifa.core.translate import Rule

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
UK = "442079460958"
CAP = 14400


def _table(*rates: tuple[str, str], forbidden: tuple[str, ...] = ()) -> RateTable:
    return RateTable(
        RateEntry(
            prefix,
            f"D{prefix}",
            RateTerms(price_1=Decimal(price), price_n=Decimal(price), forbidden=prefix in forbidden),
        )
        for prefix, price in rates
    )


CUSTOMER = CustomerView(
    id=1,
    code="C1",
    company="C Ltd",
    status="active",
    active=True,
    tariff_id=10,
    home="US",
    billing_decimals=4,
    max_call_duration=7200,
    max_call_sessions=100,
    calls_per_second=100,
)
ALICE = AccountView(
    id=11,
    customer=CUSTOMER,
    code="A11",
    name="alice",
    status="active",
    active=True,
    allow_international=True,
    e911_caller_id="12015550199",
)
CHEAP = RouteEntry(101, "cheap", "Cheap", "gw.cheap.example:5060", "udp", "99#", None, None, 201, 1, 1)
DEAR = RouteEntry(102, "dear", "Dear", "gw.dear.example:5060", "udp", "", None, None, 202, 0, 1)


@dataclass
class World:
    """A Catalogue on plain dicts (what calls.cache.Snapshot is, without the database)."""

    accounts: dict[int, AccountView] = field(default_factory=dict)
    index: AccountIndex = field(default_factory=AccountIndex)
    index_all: AccountIndex = field(default_factory=AccountIndex)
    by_sip: dict[str, Device] = field(default_factory=dict)
    by_ip: dict[str, Device] = field(default_factory=dict)
    dids: dict[str, az.DidView] = field(default_factory=dict)
    account_dids: dict[int, set[str]] = field(default_factory=dict)
    customer_rules: dict[int, list[Rule]] = field(default_factory=dict)
    dialing_routes: dict[int, list[az.DialingPattern]] = field(default_factory=dict)
    offers: dict[tuple[str, str, str], int] = field(default_factory=dict)
    groups: dict[int, Group] = field(default_factory=dict)
    tariffs: dict[int, PriceList] = field(default_factory=dict)
    sets: dict[int, RateTable] = field(default_factory=dict)

    def tariff(self, tariff_id: int) -> PriceList:
        return self.tariffs[tariff_id]

    def destination_set(self, set_id: int) -> RateTable:
        return self.sets[set_id]

    def add(self, account: AccountView, sip: str = "", device: Device | None = None) -> None:
        self.accounts[account.id] = account
        indexes = (self.index, self.index_all) if account.active and account.customer.active else (self.index_all,)
        for index in indexes:
            index.account(account.id, account.customer_id, code=account.code)
            if sip:
                index.device("sip_user", sip, account.id)
        if sip:
            self.by_sip[sip] = device or Device(f"sip:{account.id}", account.id, None, None)


def _world(
    account: AccountView = ALICE,
    *,
    device: Device | None = None,
    policy: str = "least_cost",
    tariff: RateTable | None = None,
) -> World:
    world = World()
    world.add(account, "alice", device)
    world.tariffs[10] = PriceList(
        tariff
        or _table(
            ("44", "0.02"),
            ("4470", "0.3048"),
            ("1", "0.01"),
            ("33", "0.03"),
            ("882", "1"),
            ("1800", "0"),
            ("1411", "0.99"),
            ("1900", "2"),
            forbidden=("882",),
        ),
        "half_up",
    )
    world.sets[201] = _table(("44", "0.01"), ("1", "0.005"), ("33", "0.02"))
    world.sets[202] = _table(("44", "0.015"), ("1", "0.006"), ("33", "0.04"))
    world.groups[1] = Group(1, "Value", policy, None, (DEAR, CHEAP))
    for dclass in ("domestic", "international", "tollfree", "directory", "emergency"):
        world.offers[(dclass, "value", "")] = 1
    return world


def _plan(world: World, callee: str = "011" + UK, **kw: str) -> tuple[Plan | None, Decision]:
    kw.setdefault("sip_user", "alice")
    request = CallRequest(call_id=kw.pop("call_id", "c1"), callee=callee, **kw)
    d = Decision(allowed=False, call_id=request.call_id)
    return az.plan(world, request, d, NOW, CAP), d


def _refused(world: World, callee: str = "011" + UK, **kw: str) -> Refusal:
    planned, d = _plan(world, callee, **kw)
    assert planned is None and not d.allowed, d
    refusal = next(r for r in Refusal if r == d.reason)
    assert d.sip_code == refusal.sip_code
    return refusal


def _state(balance: str = "10", **kw: object) -> CallState:
    funds = kw.pop("funds", Funds(Decimal(balance), Decimal(0), False))
    values: dict[str, object] = {
        "customer_calls": 0,
        "account_calls": 0,
        "device_calls": 0,
        "reserved": Decimal(0),
        "shared_reserved": Decimal(0),
        "account_reserved": Decimal(0),
    }
    values.update(kw)
    return CallState(funds=funds, **values)  # type: ignore[arg-type]


# --- the vocabulary ---------------------------------------------------------------------------------------


def test_every_refusal_carries_the_sip_code_the_docs_list() -> None:
    assert {r.value: r.sip_code for r in Refusal} == {
        "unknown_account": 403,
        "ambiguous_account": 403,
        "unknown_pbx": 403,
        "account_disabled": 403,
        "ip_not_allowed": 403,
        "pop_not_allowed": 403,
        "invalid_number": 484,
        "insufficient_funds": 402,
        "unpaid_charges": 402,
        "destination_forbidden": 403,
        "international_disabled": 403,
        "country_not_allowed": 403,
        "rate_above_cap": 403,
        "no_rate": 404,
        "concurrent_limit": 486,
        "cps_limit": 503,
        "no_route": 503,
        "loss_route": 503,
        "premium_rate_disabled": 403,
        "directory_411_only": 403,
    }
    assert str(Refusal.NO_RATE) == "no_rate" and f"{Refusal.NO_RATE}" == "no_rate"  # the API's reason text
    assert Refusal.NO_RATE in {"no_rate"}  # equal to its text


# --- identification and restrictions ----------------------------------------------------------------------


def test_unknown_and_disabled_accounts_are_refused() -> None:
    assert _refused(_world(), sip_user="mallory") is Refusal.UNKNOWN_ACCOUNT
    assert _refused(_world(replace(ALICE, active=False, status="inactive"))) is Refusal.ACCOUNT_DISABLED
    stopped = replace(ALICE, customer=replace(CUSTOMER, active=False, status="inactive"))
    _, d = _plan(_world(stopped))
    assert d.reason == Refusal.ACCOUNT_DISABLED and "customer inactive" in d.trace[-1]


def test_an_identity_naming_two_accounts_is_ambiguous() -> None:
    world = _world()
    other = replace(ALICE, id=12, code="A12", name="bob")
    world.add(other, "alice")  # a second account with the same SIP login
    _, d = _plan(world)
    assert d.reason == Refusal.AMBIGUOUS_ACCOUNT and "A11, A12" in d.trace[-1]


def test_ip_and_pop_restrictions_but_not_for_emergency_calls() -> None:
    locked = replace(ALICE, networks=(ipaddress.ip_network("198.51.100.0/24"),), pops=frozenset({"nyc"}))
    world = _world(locked)
    assert _refused(world, source_ip="203.0.113.5", pop="nyc") is Refusal.IP_NOT_ALLOWED
    assert _refused(world, pop="nyc") is Refusal.IP_NOT_ALLOWED  # no address at all
    assert _refused(world, source_ip="not an address", pop="nyc") is Refusal.IP_NOT_ALLOWED
    assert _refused(world, source_ip="198.51.100.7", pop="lon") is Refusal.POP_NOT_ALLOWED
    planned, _d = _plan(world, source_ip="198.51.100.7", pop="nyc")
    assert planned is not None
    emergency, d = _plan(world, "911", source_ip="203.0.113.5", pop="lon")
    assert emergency is not None and emergency.emergency and "do not apply to emergency calls" in " ".join(d.trace)


def test_international_calls_and_allowed_countries() -> None:
    assert _refused(_world(replace(ALICE, allow_international=False))) is Refusal.INTERNATIONAL_DISABLED
    assert _refused(_world(replace(ALICE, allowed_countries=("FR",)))) is Refusal.COUNTRY_NOT_ALLOWED
    planned, d = _plan(_world(replace(ALICE, allowed_countries=("GB",))))
    assert planned is not None and (d.number, d.destination_class, d.country) == (UK, "international", "GB")
    # a domestic call needs neither
    planned, d = _plan(_world(replace(ALICE, allow_international=False, allowed_countries=("FR",))), "2125551234")
    assert planned is not None and d.destination_class == "domestic"


def test_premium_rate_numbers_need_their_own_permission() -> None:
    assert _refused(_world(), "19005550123") is Refusal.PREMIUM_RATE_DISABLED
    planned, d = _plan(_world(replace(ALICE, allow_premium_rate=True)), "19005550123")
    assert planned is not None and d.destination_class == "premium_rate"
    assert "premium-rate calls allowed for this account" in d.trace


def test_directory_assistance_is_411_only_and_needs_allow_411() -> None:
    assert _refused(_world(), "411") is Refusal.DESTINATION_FORBIDDEN
    planned, d = _plan(_world(replace(ALICE, allow_411=True)), "411")
    assert planned is not None and d.destination_class == "directory"
    assert _refused(_world(replace(ALICE, allow_411=True)), "2125551212") is Refusal.DIRECTORY_411_ONLY


def test_invalid_number_no_rate_forbidden_rate_and_rate_cap() -> None:
    assert _refused(_world(), "12") is Refusal.INVALID_NUMBER
    assert _refused(_world(), "01149301234567") is Refusal.NO_RATE  # no 49 in this tariff
    assert _refused(_world(), "011882123456789") is Refusal.DESTINATION_FORBIDDEN
    capped = _world(replace(ALICE, international_rate_cap=Decimal("0.10")))
    assert _refused(capped, "011447012345678") is Refusal.RATE_ABOVE_CAP  # 4470: 0.3048/min
    planned, _d = _plan(capped)  # 44: 0.02/min
    assert planned is not None


def test_routes_no_group_no_price_and_loss_routes() -> None:
    world = _world()
    world.offers.clear()
    world.groups[2] = Group(2, "Other", "priority", None, ())
    assert _refused(world) is Refusal.NO_ROUTE  # two groups and no offer: no group
    unpriced = _world()
    unpriced.sets.update({201: _table(("1", "0.005")), 202: _table(("1", "0.006"))})
    planned, d = _plan(unpriced)
    assert d.reason == Refusal.NO_ROUTE and "no connection of group 'Value' has a price" in d.trace[-1]
    lossy = _world(replace(ALICE, customer=replace(CUSTOMER, deny_loss_routes=True)), tariff=_table(("44", "0.005")))
    assert _refused(lossy) is Refusal.LOSS_ROUTE
    half = _world(replace(ALICE, customer=replace(CUSTOMER, deny_loss_routes=True)), tariff=_table(("44", "0.012")))
    planned, d = _plan(half)
    assert planned is not None and [c.route.connection_name for c in planned.candidates] == ["cheap"]
    assert "dropped 1 loss route(s)" in d.trace


def test_candidates_follow_the_groups_policy() -> None:
    planned, _d = _plan(_world(policy="least_cost"))
    assert planned is not None and [c.route.connection_name for c in planned.candidates] == ["cheap", "dear"]
    planned, _d = _plan(_world(policy="priority"))
    assert planned is not None and [c.route.connection_name for c in planned.candidates] == ["dear", "cheap"]


def test_the_cap_is_the_least_of_system_customer_and_class_limits() -> None:
    planned, _d = _plan(_world())
    assert planned is not None and planned.cap == 7200  # the customer's max call duration
    planned, _d = _plan(_world(replace(ALICE, max_call_time_international=600)))
    assert planned is not None and planned.cap == 600
    planned, _d = _plan(_world(replace(ALICE, max_call_time_international=600)), "2125551234")
    assert planned is not None and planned.cap == 7200  # a domestic call: the domestic limit (none)


def test_emergency_calls_are_free_and_reach_vendors_as_the_emergency_number() -> None:
    world = _world()
    world.groups[1] = Group(1, "Value", "least_cost", None, (replace(DEAR, emergency_format="*1{number}"), CHEAP))
    planned, d = _plan(world, "911", caller="12015550100")
    assert planned is not None and planned.emergency and planned.free and planned.cap == CAP
    assert d.caller_id == "12015550199"  # the caller is none of the account's DIDs: the e911 caller ID
    verdict = az.judge(planned, _state("0", customer_calls=500))  # no funds, over every limit: still allowed
    assert isinstance(verdict, Allowed) and verdict.amount == 0 and verdict.duration == CAP
    assert verdict.routes is not None and {r["number"] for r in verdict.routes} == {"*1911", "99#911"}


def test_a_caller_that_sends_none_gets_the_accounts_caller_id() -> None:
    _, d = _plan(_world(replace(ALICE, caller_id_number="12015550111")))
    assert d.caller_id == "12015550111"
    _, d = _plan(_world(replace(ALICE, caller_id_number="12015550111")), caller="12015550100")
    assert d.caller_id == "12015550100"


def test_an_inbound_did_is_priced_by_its_plan() -> None:
    world = _world()
    world.dids["12015550100"] = az.DidView(
        "12015550100", ALICE.id, forward_to="15551230000", plan=az.InboundPlan(Decimal("0.006"), 60, 60)
    )
    planned, d = _plan(world, "12015550100", sip_user="", did="12015550100")
    assert planned is not None and not planned.free and planned.group is None
    assert d.routes == [{"type": "forward", "number": "15551230000"}] and d.destination_class == "inbound"


# --- the judgement ----------------------------------------------------------------------------------------


def _planned(world: World | None = None, callee: str = "011" + UK) -> Plan:
    planned, _d = _plan(world or _world(), callee)
    assert planned is not None
    return planned


@pytest.mark.parametrize(
    ("state", "refusal"),
    [
        ({"customer_calls": 100}, Refusal.CONCURRENT_LIMIT),
        ({"cps": {"c:1": 100}}, Refusal.CPS_LIMIT),
    ],
)
def test_customer_limits(state: dict[str, object], refusal: Refusal) -> None:
    verdict = az.judge(_planned(), _state("10", **state))
    assert isinstance(verdict, Refused) and verdict.refusal is refusal


def test_account_and_device_limits() -> None:
    device = Device("sip:7", ALICE.id, 1, 2)
    world = _world(replace(ALICE, max_channels=2), device=device)
    planned = _planned(world)
    assert planned.device == device and [c.scope for c in planned.cps_limits] == ["c:1", "d:sip:7"]
    for state, refusal, why in (
        ({"account_calls": 2}, Refusal.CONCURRENT_LIMIT, "account has 2 calls in progress, limit 2"),
        ({"device_calls": 1}, Refusal.CONCURRENT_LIMIT, "device has 1 calls in progress, limit 1"),
        ({"cps": {"d:sip:7": 2}}, Refusal.CPS_LIMIT, "device has 2 calls this second, limit 2"),
    ):
        verdict = az.judge(planned, _state(**state))
        assert isinstance(verdict, Refused) and (verdict.refusal, verdict.why) == (refusal, why)
    assert isinstance(az.judge(planned, _state(account_calls=1, cps={"d:sip:7": 1})), Allowed)


def test_funds_give_the_max_duration_by_the_rating_inverse() -> None:
    planned = _planned()
    verdict = az.judge(planned, _state("0.50"))
    assert isinstance(verdict, Allowed) and verdict.duration == 1500 == max_duration(
        planned.terms, Decimal("0.50"), 4, "half_up", 7200
    )
    assert verdict.amount == call_cost(planned.terms, 1500, 4, "half_up") == Decimal("0.5")
    full = az.judge(planned, _state("10"))
    assert isinstance(full, Allowed) and full.duration == 7200 and full.amount == planned.cap_cost
    assert full.routes is not None and [r["connection"] for r in full.routes] == ["cheap", "dear"]
    assert full.routes[0]["number"] == "99#" + UK and full.routes[0]["vendor_price"] == "0.01"


def test_insufficient_funds_prepaid_postpaid_reservations_and_own_balance() -> None:
    planned = _planned()
    verdict = az.judge(planned, _state("0.0001"))
    assert isinstance(verdict, Refused) and verdict.refusal is Refusal.INSUFFICIENT_FUNDS
    # reservations of calls in progress come off the balance
    assert isinstance(az.judge(planned, _state("1", shared_reserved=Decimal("0.9999"))), Refused)
    # postpaid: the credit limit counts
    credit = _state(funds=Funds(Decimal("-9.80"), Decimal("10.30"), True))
    allowed = az.judge(planned, credit)
    assert isinstance(allowed, Allowed) and allowed.duration == 1500
    # prepaid: the credit limit does not
    assert isinstance(az.judge(planned, _state(funds=Funds(Decimal("-9.80"), Decimal("10.30"), False))), Refused)
    # an account with its own balance counts its own reservations, not the customer's
    own = _planned(_world(replace(ALICE, own_balance=True)))
    state = _state("0.5", shared_reserved=Decimal("0.5"), account_reserved=Decimal(0))
    assert isinstance(az.judge(own, state), Allowed) and isinstance(az.judge(planned, state), Refused)


def test_spending_limits_count_what_was_spent_and_what_is_reserved() -> None:
    limited = replace(ALICE, customer=replace(CUSTOMER, daily_spending_limit=Decimal(1), time_zone="America/New_York"))
    planned = _planned(_world(limited))
    assert [(w.label, w.since) for w in planned.spending] == [("daily", datetime(2026, 5, 4, 4, 0, tzinfo=UTC))]
    verdict = az.judge(planned, _state("10", reserved=Decimal("0.25"), spent={"daily": Decimal("0.25")}))
    assert isinstance(verdict, Allowed) and verdict.duration == 1500  # 0.50 left: 25 minutes at 0.02
    verdict = az.judge(planned, _state("10", spent={"daily": Decimal(1)}))
    assert isinstance(verdict, Refused) and verdict.refusal is Refusal.INSUFFICIENT_FUNDS


def test_connections_at_capacity_are_dropped_and_all_full_is_no_route() -> None:
    world = _world()
    world.groups[1] = Group(1, "Value", "least_cost", None, (replace(DEAR, max_channels=1), replace(CHEAP, max_cps=2)))
    planned = _planned(world)
    assert planned.limited == (101, 102)
    verdict = az.judge(planned, _state(cps={"n:101": 2}))
    assert isinstance(verdict, Allowed) and verdict.connection_id == 102
    assert "connection cheap at its CPS limit (2)" in verdict.trace
    verdict = az.judge(planned, _state(cps={"n:101": 2}, busy={102: 1}))
    assert isinstance(verdict, Refused) and verdict.refusal is Refusal.NO_ROUTE


def test_a_retry_gets_its_held_reservation_with_its_connection_first() -> None:
    world = _world()
    world.groups[1] = Group(1, "Value", "least_cost", None, (DEAR, replace(CHEAP, max_channels=1)))
    planned = _planned(world)
    held = Held(reservation_id=5, amount=Decimal("2.4"), max_duration=7200, connection_id=101)
    # its own channel fills cheap's one channel and the customer's one session: not a refusal
    answer = az.answer_held(planned, held, _state(customer_calls=1, busy={101: 1}), "again")
    assert (answer.duration, answer.amount) == (7200, Decimal("2.4"))
    assert answer.routes is not None and [r["connection"] for r in answer.routes] == ["cheap", "dear"]
    assert "already holds reservation 5" in answer.trace[-1]
    d = Decision(allowed=False, call_id="again")
    d.apply(answer, held.reservation_id)
    assert d.allowed and (d.reservation_id, d.reserved, d.max_duration) == (5, "2.4", 7200)


def test_the_one_trip_hold_stands_only_behind_the_planned_call() -> None:
    planned = _planned()
    full = az.judge(planned, _state("10"))
    short = az.judge(planned, _state("0.5"))
    assert az.stands_behind(planned, full, 101)
    assert not az.stands_behind(planned, full, 102)  # another connection than the decision's first
    assert not az.stands_behind(planned, short, 101)  # a shorter call than the cap
    assert not az.stands_behind(planned, Refused(Refusal.NO_ROUTE, "x"), 101)


def test_a_refused_verdict_is_applied_with_its_reason_and_trace() -> None:
    d = Decision(allowed=False, call_id="c")
    d.apply(Refused(Refusal.CPS_LIMIT, "customer has 2 calls this second, limit 2", ("limits read",)))
    assert (d.allowed, d.reason, d.sip_code) == (False, "cps_limit", 503)
    assert d.trace == ["limits read", "REFUSED cps_limit (SIP 503): customer has 2 calls this second, limit 2"]
    quiet = Decision(allowed=False, call_id="c", tracing=False)
    quiet.apply(Refused(Refusal.CPS_LIMIT, "why", ("limits read",)))
    assert quiet.trace == ["REFUSED cps_limit (SIP 503): why"]  # a refusal always says why


def test_the_catalogue_protocol_is_met_by_plain_data() -> None:
    world: az.Catalogue = _world()  # mypy checks the structure; at run time it is only used
    assert isinstance(world.accounts, Mapping) and isinstance(world.account_dids, Mapping)
    assert isinstance(world.customer_rules, Mapping) and not isinstance(world.offers, Sequence | AbstractSet)


def test_an_account_blocked_for_unpaid_charges_is_refused_but_emergency_calls_pass() -> None:
    world = _world(replace(ALICE, blocked_for_unpaid=True))
    assert _refused(world) is Refusal.UNPAID_CHARGES
    emergency, _d = _plan(world, "911")
    assert emergency is not None and emergency.emergency
