"""Recurring and one-time service charges posted by the worker (issue 14): exactly once per service
and period, catching up, cancellations, minimum billing, blocking unpaid accounts; and a generated
month of 100 customers checked against an independent recomputation."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest
from django.db.models import Sum

from tarifa.billing.models import IncludedMinutes, MinutePoolUsage, ServiceCharge, ServicePlan, Transaction
from tarifa.billing.payments import add_money
from tarifa.cdrs.ingest import ingest
from tarifa.cdrs.models import Cdr
from tarifa.core.cdr import CanonicalCdr
from tarifa.core.payments import MoneyRequest
from tarifa.customers.models import Account, Customer, IpDevice, SipDevice
from tarifa.dids.models import Did, DidPlan, VirtualNumber
from tarifa.services.recurring import post_cancellation_charge, run_charges
from tests.factories import UK, ask

from . import recurring_world as rw

pytestmark = pytest.mark.django_db
D = Decimal
ZERO = D(0)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def customer(tariff, operator):  # type: ignore[no-untyped-def]
    return Customer.objects.create(
        parent=operator,
        name="Rec",
        company="Rec Ltd",
        web_username="rec",
        tariff=tariff,
        email="rec@x.example",
        phone="+12015550123",
        country="US",
        billing_type="postpaid",
        credit_limit=D("1000"),
    )


def _ledger_matches(customer: Customer) -> None:
    customer.refresh_from_db()
    shared = Transaction.objects.filter(customer=customer, account__isnull=True).aggregate(t=Sum("amount"))["t"]
    assert customer.balance == (shared or D(0))
    for sc in ServiceCharge.objects.filter(customer=customer):
        t = Transaction.objects.get(reference=sc.reference)
        assert t.amount == -sc.amount and t.customer_id == customer.pk


def test_month_end_run_posts_prorated_activations_once(customer) -> None:
    plan = ServicePlan.objects.create(name="Biz", recurring_fee=D("31.00"), setup_fee=D("10"), activation_fee=D("1"))
    acc = Account.objects.create(
        customer=customer,
        name="biz",
        kind="trunk",
        identifier="t1",
        service_plan=plan,
        activation_date=date(2026, 3, 17),
    )
    ext = SipDevice.objects.create(
        account=acc, login="ext1", secret="Secret1x", service_plan=plan, activation_date=date(2026, 3, 31)
    )
    first = run_charges(date(2026, 4, 1))
    got = {(s.service_kind, s.service_id, s.kind, s.period_start, s.amount) for s in ServiceCharge.objects.all()}
    assert got == {
        ("account", acc.pk, "setup", date(2026, 3, 17), D("10.00")),
        ("account", acc.pk, "activation", date(2026, 3, 17), D("1.00")),
        ("account", acc.pk, "recurring", date(2026, 3, 1), D("15.00")),  # Mar 17..31: 15 of 31 days
        ("sip_device", ext.pk, "setup", date(2026, 3, 31), D("10.00")),
        ("sip_device", ext.pk, "activation", date(2026, 3, 31), D("1.00")),
        ("sip_device", ext.pk, "recurring", date(2026, 3, 1), D("1.00")),  # 1 of 31 days
    }
    assert (first.posted, first.amount) == (6, D("38.00"))
    again = run_charges(date(2026, 4, 1))
    assert again.posted == 0 and ServiceCharge.objects.count() == 6
    _ledger_matches(customer)
    assert customer.balance == D("-38.00")
    t = Transaction.objects.get(reference=f"svc:account:{acc.pk}:2026-03-17:recurring:2026-03-01")
    assert t.kind == "recurring_fee" and t.description.endswith("2026-03-01 to 2026-03-31 (15 of 31 days)")


def test_a_worker_down_for_three_days_catches_up(customer) -> None:
    plan = ServicePlan.objects.create(name="Day", period="daily", recurring_fee=D("0.50"))
    acc = Account.objects.create(customer=customer, name="d", service_plan=plan, activation_date=date(2026, 6, 1))
    run_charges(date(2026, 6, 3))  # June 1 and 2
    run_charges(date(2026, 6, 6))  # down on the 4th and 5th: June 3, 4, 5 now
    starts = sorted(ServiceCharge.objects.filter(service_id=acc.pk).values_list("period_start", flat=True))
    assert starts == [date(2026, 6, d) for d in range(1, 6)]
    _ledger_matches(customer)
    assert customer.balance == D("-2.50")


def test_own_balance_account_is_charged_on_its_own_balance(customer) -> None:
    plan = ServicePlan.objects.create(name="Own", recurring_fee=D("3"))
    acc = Account.objects.create(
        customer=customer, name="own", balance_mode="own", service_plan=plan, activation_date=date(2026, 1, 1)
    )
    run_charges(date(2026, 2, 1))
    acc.refresh_from_db()
    customer.refresh_from_db()
    assert acc.balance == D("-3.00") and customer.balance == 0


def test_cancellation_posts_the_prorated_last_period_while_the_account_is_known(customer) -> None:
    acc = Account.objects.create(customer=customer, name="nums")
    did = Did.objects.create(
        number="12125550111",
        status="assigned",
        account=acc,
        activation_date=date(2026, 1, 1),
        plan=DidPlan.objects.create(name="Local", monthly_fee=D("2.80"), setup_fee=D("1")),
    )
    vn = VirtualNumber.objects.create(
        number="7001", primary_did=did, account=acc, activation_date=date(2026, 1, 20), additional_charge=D("3.10")
    )
    run_charges(date(2026, 2, 1))
    # Released on Feb 11 (days Feb 1..10 in service): 2.80 * 10 / 28 = 1.00
    rows = post_cancellation_charge("did", did, date(2026, 2, 11))
    assert [(r.kind, r.period_start, r.amount) for r in rows] == [
        ("recurring", date(2026, 1, 1), D("2.80")),
        ("setup", date(2026, 1, 1), D("1.00")),
        ("recurring", date(2026, 2, 1), D("1.00")),
    ]
    assert post_cancellation_charge("did", did, date(2026, 2, 11)) == rows  # twice: nothing more
    Did.objects.filter(pk=did.pk).update(account=None, status="available")  # what release_did does next
    run_charges(date(2026, 4, 1))
    assert ServiceCharge.objects.filter(service_kind="did").count() == 3
    # the virtual number: Jan 20..31 = 12 of 31 days -> 3.10 * 12 / 31 = 1.20; then Feb, Mar whole
    vn_rows = ServiceCharge.objects.filter(service_kind="virtual_number", service_id=vn.pk).order_by("period_start")
    assert [r.amount for r in vn_rows] == [D("1.20"), D("3.10"), D("3.10")]
    _ledger_matches(customer)


def test_a_did_released_and_assigned_again_is_charged_to_its_new_owner_from_its_new_date(customer) -> None:
    first = Account.objects.create(customer=customer, name="first")
    other = Customer.objects.create(
        parent=customer.parent,
        name="New",
        company="New Ltd",
        web_username="newowner",
        tariff=customer.tariff,
        email="n@x.example",
        phone="+12015550123",
        country="US",
    )
    second = Account.objects.create(customer=other, name="second")
    plan = DidPlan.objects.create(name="Local", monthly_fee=D("2.80"))
    did = Did.objects.create(
        number="12125550122", status="assigned", account=first, activation_date=date(2026, 1, 1), plan=plan
    )
    run_charges(date(2026, 2, 5))  # January
    post_cancellation_charge("did", did, date(2026, 2, 11))  # Feb 1..10: 1.00
    Did.objects.filter(pk=did.pk).update(account=second, activation_date=date(2026, 2, 20))
    run_charges(date(2026, 3, 1))
    rows = ServiceCharge.objects.filter(service_kind="did").order_by("service_start", "period_start")
    assert [(r.customer_id, r.service_start, r.period_start, r.amount) for r in rows] == [
        (customer.pk, date(2026, 1, 1), date(2026, 1, 1), D("2.80")),
        (customer.pk, date(2026, 1, 1), date(2026, 2, 1), D("1.00")),
        (other.pk, date(2026, 2, 20), date(2026, 2, 1), D("0.90")),  # Feb 20..28: 2.80 * 9 / 28
    ]
    _ledger_matches(customer)
    _ledger_matches(other)


def test_releasing_a_did_posts_its_last_prorated_period_before_the_account_is_cleared(customer) -> None:
    from tarifa.dids.service import release_did

    acc = Account.objects.create(customer=customer, name="nums")
    did = Did.objects.create(
        number="12125550133",
        status="assigned",
        account=acc,
        activation_date=date(2026, 1, 1),
        plan=DidPlan.objects.create(name="Local", monthly_fee=D("2.80")),
    )
    run_charges(date(2026, 2, 1))  # January in arrears
    release_did(did, date(2026, 2, 11), quarantine_days=30)
    rows = ServiceCharge.objects.filter(service_kind="did", service_id=did.pk).order_by("period_start")
    assert [(r.customer_id, r.period_start, r.amount) for r in rows] == [
        (customer.pk, date(2026, 1, 1), D("2.80")),
        (customer.pk, date(2026, 2, 1), D("1.00")),
    ]  # Feb 1..10
    did.refresh_from_db()
    assert did.account_id is None and did.status == "quarantined"
    run_charges(date(2026, 4, 1))  # nothing more for a released number
    assert ServiceCharge.objects.filter(service_kind="did", service_id=did.pk).count() == 2
    _ledger_matches(customer)


@pytest.mark.parametrize("kind", ["ip_device", "sip_device", "virtual_number"])
def test_deleting_a_service_with_a_plan_charges_it_up_to_today_first(customer, kind: str) -> None:
    today = datetime.now(UTC).date()
    plan = ServicePlan.objects.create(name="Day", period="daily", recurring_fee=D("0.50"))
    acc = Account.objects.create(customer=customer, name="svc")
    started = today - timedelta(days=3)
    if kind == "ip_device":
        service = IpDevice.objects.create(account=acc, address="192.0.2.77", service_plan=plan, activation_date=started)
    elif kind == "sip_device":
        service = SipDevice.objects.create(
            account=acc, login="gone1", secret="Secret1x", service_plan=plan, activation_date=started
        )
    else:  # a virtual number's own monthly charge: charged up to today too
        did = Did.objects.create(number="12125550144", status="assigned", account=acc)
        service = VirtualNumber.objects.create(
            number="7044",
            primary_did=did,
            account=acc,
            activation_date=today.replace(day=1) - timedelta(days=1),
            additional_charge=D("3.10"),
        )
    pk = service.pk
    service.delete()  # never charged before: what it owes up to today is posted while its row still exists
    rows = list(ServiceCharge.objects.filter(service_kind=kind, service_id=pk).order_by("period_start"))
    if kind == "virtual_number":  # the last day of last month, then this month up to today
        assert rows and rows[0].period_start <= today.replace(day=1) - timedelta(days=1)
    else:
        assert [(r.period_start, r.amount) for r in rows] == [
            (started + timedelta(days=n), D("0.50")) for n in range(3)
        ]
    assert all(r.customer_id == customer.pk for r in rows)
    run_charges(today)
    assert ServiceCharge.objects.filter(service_kind=kind, service_id=pk).count() == len(rows)
    _ledger_matches(customer)


def test_minimum_billing_charges_the_shortfall_at_period_end(customer) -> None:
    plan = ServicePlan.objects.create(name="Min", recurring_fee=D("0"), minimum_amount=D("25.00"))
    acc = Account.objects.create(customer=customer, name="m", service_plan=plan, activation_date=date(2026, 1, 1))
    Cdr.objects.create(
        switch="s",
        call_id="a",
        callee="1",
        start_time=datetime(2026, 1, 5, tzinfo=UTC),
        account=acc,
        customer=customer,
        price=D("7.2500"),
    )
    Cdr.objects.create(
        switch="s",
        call_id="b",
        callee="1",
        start_time=datetime(2026, 2, 1, tzinfo=UTC),
        account=acc,
        customer=customer,
        price=D("30"),
    )  # February's
    run_charges(date(2026, 2, 15))
    assert [(r.kind, r.period_start, r.amount) for r in ServiceCharge.objects.all()] == [
        ("minimum", date(2026, 1, 1), D("17.75"))
    ]
    run_charges(date(2026, 3, 1))
    assert ServiceCharge.objects.count() == 1  # February's usage was above the minimum
    assert Transaction.objects.get(reference__startswith="svc:").kind == "minimum_charge"


def test_a_blocking_plan_refuses_calls_until_a_payment_covers_the_charge(
    net,
    django_capture_on_commit_callbacks,
) -> None:
    """The block refuses even calls the balance would not stop (a free toll-free call), and the
    call cache learns of it and of its release through the version bump (no reset by hand)."""
    alice = net["alice"]
    plan = ServicePlan.objects.create(name="Strict", recurring_fee=D("25.00"), unpaid_action="block")
    Account.objects.filter(pk=alice.pk).update(service_plan=plan, activation_date=date(2026, 3, 1))
    assert ask().allowed and ask("18005550100").allowed  # balance 10, prepaid
    with django_capture_on_commit_callbacks(execute=True):
        result = run_charges(date(2026, 4, 1))
    assert result.blocked == 1
    alice.refresh_from_db()
    assert alice.blocked_for_unpaid
    for callee in ("011" + UK, "18005550100"):
        refused = ask(callee)
        assert not refused.allowed and refused.reason == "unpaid_charges" and refused.sip_code == 402
    assert ask("911").allowed  # emergency calls are never blocked
    with django_capture_on_commit_callbacks(execute=True):
        add_money(net["customer"], MoneyRequest("payment", D("10"), "part"), actor="t")  # balance -5: still short
    alice.refresh_from_db()
    assert alice.blocked_for_unpaid and ask("18005550100").reason == "unpaid_charges"
    with django_capture_on_commit_callbacks(execute=True):
        add_money(net["customer"], MoneyRequest("payment", D("20"), "rest"), actor="t")  # balance 15
    alice.refresh_from_db()
    assert not alice.blocked_for_unpaid
    assert ask().allowed and ask("18005550100").allowed


def test_an_allowing_plan_never_blocks(net) -> None:
    plan = ServicePlan.objects.create(name="Lenient", recurring_fee=D("25.00"))
    Account.objects.filter(pk=net["alice"].pk).update(service_plan=plan, activation_date=date(2026, 3, 1))
    assert run_charges(date(2026, 4, 1)).blocked == 0
    assert not Account.objects.get(pk=net["alice"].pk).blocked_for_unpaid


def test_the_cli_refuses_a_bad_or_future_day(customer) -> None:
    from typer.testing import CliRunner

    from tarifa import cli

    if not any(group.name == "charges" for group in cli.app.registered_groups):
        cli._register_commands()
    bad = CliRunner().invoke(cli.app, ["charges", "run", "--until", "2026-02-30"])
    assert bad.exit_code == 2 and "--until '2026-02-30' is refused: is not a day of the calendar" in bad.output
    ahead = CliRunner().invoke(cli.app, ["charges", "run", "--until", "2999-01-01"])
    assert ahead.exit_code == 2 and "must not be after today" in ahead.output
    plan = ServicePlan.objects.create(name="Cli", recurring_fee=D("4"))
    Account.objects.create(customer=customer, name="c", service_plan=plan, activation_date=date(2026, 1, 1))
    ok = CliRunner().invoke(cli.app, ["charges", "run", "--until", "2026-03-01"])
    assert ok.exit_code == 0 and "2 charge(s) posted, total 8.00" in ok.output


# ---------------------------------------------------------------------------------------------
# The generated month, recomputed independently: day by day, without tarifa.core.recurring.


def _last_day_of_month(d: date) -> int:
    return ((d.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)).day


def _starts_period(d: date, period: str, billing_day: int, weekday: int) -> bool:
    if period == "daily":
        return True
    if period == "weekly":
        return d.weekday() == weekday
    assert period == "monthly"
    return d.day == min(billing_day, _last_day_of_month(d))


def _expected(
    kind: str,
    sid: int,
    period: str,
    billing_day: int,
    weekday: int,
    fee: D,
    prorate: bool,
    activation: date,
    cancellation: date | None,
    places: int,
    setup: D = ZERO,
    activation_fee: D = ZERO,
    minimum: D = ZERO,
    usage: list | None = None,
) -> set[tuple]:
    out: set[tuple] = set()
    q = D(1).scaleb(-places)
    if cancellation is not None and cancellation <= activation:
        return out
    if activation <= rw.RUN_UNTIL:
        if setup:
            out.add((kind, sid, "setup", activation, setup.quantize(q, ROUND_HALF_EVEN)))
        if activation_fee:
            out.add((kind, sid, "activation", activation, activation_fee.quantize(q, ROUND_HALF_EVEN)))
    stop = rw.RUN_UNTIL if cancellation is None else min(rw.RUN_UNTIL, cancellation)
    groups: dict[date, int] = defaultdict(int)
    d = activation
    while d < stop:  # every service day, grouped by the first day of its period (walking back)
        s = d
        while not _starts_period(s, period, billing_day, weekday):
            s -= timedelta(days=1)
        groups[s] += 1
        d += timedelta(days=1)
    for s, days in groups.items():
        nxt = s + timedelta(days=1)
        while not _starts_period(nxt, period, billing_day, weekday):
            nxt += timedelta(days=1)
        due = nxt if cancellation is None else min(nxt, cancellation)
        if due > rw.RUN_UNTIL:
            continue
        length = (nxt - s).days
        amount = (fee * days / length if prorate else fee).quantize(q, ROUND_HALF_EVEN)
        if amount > 0:
            out.add((kind, sid, "recurring", s, amount))
        if minimum:
            spent = sum((p for at, p in usage or [] if s <= at.date() < nxt), D(0))
            short = (minimum * days / length if prorate else minimum).quantize(q, ROUND_HALF_EVEN) - spent
            short = short.quantize(q, ROUND_HALF_EVEN)
            if short > 0:
                out.add((kind, sid, "minimum", s, short))
    return out


def _recompute(month: rw.World) -> set[tuple]:
    places = {"USD": 2, "JPY": 0}
    expected: set[tuple] = set()
    for acc in Account.objects.filter(customer_id__in=month.customers).select_related("service_plan", "customer"):
        p = acc.service_plan
        expected |= _expected(
            "account",
            acc.pk,
            p.period,
            p.billing_day,
            p.weekday,
            p.recurring_fee,
            p.prorate,
            acc.activation_date,
            acc.cancellation_date,
            places[acc.customer.currency],
            p.setup_fee,
            p.activation_fee,
            p.minimum_amount,
            month.cdr_prices.get(acc.pk),
        )
        for kind, model in (("sip_device", SipDevice), ("ip_device", IpDevice)):
            for dev in model.objects.filter(account=acc).select_related("service_plan"):
                q = dev.service_plan
                expected |= _expected(
                    kind,
                    dev.pk,
                    q.period,
                    q.billing_day,
                    q.weekday,
                    q.recurring_fee,
                    q.prorate,
                    dev.activation_date,
                    dev.cancellation_date,
                    places[acc.customer.currency],
                    q.setup_fee,
                    q.activation_fee,
                )
        for vn in VirtualNumber.objects.filter(account=acc):
            expected |= _expected(
                "virtual_number",
                vn.pk,
                "monthly",
                p.billing_day,
                0,
                vn.additional_charge,
                True,
                vn.activation_date,
                None,
                places[acc.customer.currency],
            )
    for did in Did.objects.filter(number__startswith="1212555").select_related("plan"):
        owner = VirtualNumber.objects.select_related("account__service_plan", "account__customer").get(primary_did=did)
        expected |= _expected(
            "did",
            did.pk,
            "monthly",
            owner.account.service_plan.billing_day,
            0,
            did.plan.monthly_fee,
            True,
            did.activation_date,
            month.released.get(did.pk),
            places[owner.account.customer.currency],
            did.plan.setup_fee,
        )
    return expected


def test_a_generated_month_of_100_customers_posts_exactly_the_recomputed_charges() -> None:
    month = rw.build(100)
    day = rw.MONTH_START
    pending = dict(month.released)
    while day <= rw.RUN_UNTIL:  # the worker, once a day; DIDs released by then first (January's on Feb 1)
        for did_id, on in sorted(pending.items()):
            if on <= day:
                did = Did.objects.get(pk=did_id)
                post_cancellation_charge("did", did, on)
                Did.objects.filter(pk=did_id).update(account=None, status="available")
                del pending[did_id]
        run_charges(day)
        day += timedelta(days=1)
    posted = {(s.service_kind, s.service_id, s.kind, s.period_start, s.amount) for s in ServiceCharge.objects.all()}
    expected = _recompute(month)
    assert {k for k, *_ in expected} == {"account", "sip_device", "ip_device", "did", "virtual_number"}
    assert {k for _, _, k, *_ in expected} == {"setup", "activation", "recurring", "minimum"}
    assert posted == expected, (sorted(posted - expected)[:10], sorted(expected - posted)[:10])
    assert ServiceCharge.objects.count() == len(expected)  # nothing twice
    assert run_charges(rw.RUN_UNTIL).posted == 0
    for pk in month.customers:
        _ledger_matches(Customer.objects.get(pk=pk))
    own = Account.objects.filter(customer_id__in=month.customers, balance_mode="own")
    for acc in own:
        total = Transaction.objects.filter(account=acc).aggregate(t=Sum("amount"))["t"] or D(0)
        assert acc.balance == total and total == -sum(
            (s.amount for s in ServiceCharge.objects.filter(account=acc)), D(0)
        )


# ---------------------------------------------------------------------------------------------
# Two processes at once, on the database under test (SQLite file or a fresh PostgreSQL database)


def _tarifa(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tarifa.cli", *args],
        env=env,
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_two_workers_at_once_post_each_charge_exactly_once(tmp_path: Path, migrated_database_url: str) -> None:
    env = dict(
        os.environ,
        TARIFA_VAR_DIR=str(tmp_path),
        TARIFA_DATABASE_URL=migrated_database_url,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    steps = [("manage", "shell", "-c", "from tests.integration.recurring_world import build; build(30)")]
    for step in steps:
        done = _tarifa(env, *step)
        out, err = done.communicate(timeout=600)
        assert done.returncode == 0, out + err
    runs = [_tarifa(env, "charges", "run", "--until", "2026-03-01") for _ in range(2)]
    outputs = [r.communicate(timeout=600) for r in runs]
    assert all(r.returncode == 0 for r in runs), outputs
    import re

    posted = [int(re.search(r"(\d+) charge\(s\) posted", out).group(1)) for out, _ in outputs]  # type: ignore[union-attr]
    check = _tarifa(
        env,
        "manage",
        "shell",
        "-c",
        (
            "from tarifa.billing.models import ServiceCharge, Transaction; "
            "refs = list(Transaction.objects.filter(reference__startswith='svc:').values_list('reference', flat=True)); "
            "scs = list(ServiceCharge.objects.values_list('reference', flat=True)); "
            "print('refs', len(refs), len(set(refs)), 'charges', len(scs), sorted(refs) == sorted(scs))"
        ),
    )
    out, err = check.communicate(timeout=600)
    n = sum(posted)
    assert n > 100 and f"refs {n} {n} charges {n} True" in out, (posted, out, err)
    rerun = _tarifa(env, "charges", "run", "--until", "2026-03-01")
    out, err = rerun.communicate(timeout=600)
    assert " 0 charge(s) posted" in out, out + err


# ---------------------------------------------------------------------------------------------
# Included minutes with rollover, used by CDR charging


def _call(call_id: str, at: datetime, duration: int) -> CanonicalCdr:
    return CanonicalCdr(
        call_id=call_id,
        callee="442079460958",
        start_time=at,
        connect_time=at,
        duration=duration,
        switch="sw1",
        sip_user="alice",
        connection="carrier-1",
    )


def test_rollover_minutes_carry_into_the_next_month_up_to_the_cap(world) -> None:
    plan = ServicePlan.objects.create(name="Roll")
    IncludedMinutes.objects.create(plan=plan, name="UK", prefixes=["44"], minutes=3, rollover_cap=2)
    Account.objects.filter(pk=world["alice"].pk).update(service_plan=plan, activation_date=date(2026, 1, 5))
    ingest([_call("feb", datetime(2026, 2, 10, 9, tzinfo=UTC), 60)], source="t", fmt="test")
    # February used 60 of 180 s (January, no calls, carried min(120, 180) = 120 in: used first)
    feb = MinutePoolUsage.objects.get(period_start=date(2026, 2, 1))
    assert (feb.seconds_used, feb.carried_seconds) == (60, 120)
    # March: February's own 180 s were all left (the 60 used were carried ones): 120 carried (the cap)
    ingest(
        [_call("m1", datetime(2026, 3, 2, 9, tzinfo=UTC), 240), _call("m2", datetime(2026, 3, 3, 9, tzinfo=UTC), 120)],
        source="t",
        fmt="test",
    )
    m1, m2 = Cdr.objects.filter(call_id__in=["m1", "m2"]).order_by("call_id")
    assert (m1.price, m1.pool_seconds) == (D("0"), 240)  # 300 s available: 180 + 120 carried
    assert (m2.price, m2.pool_seconds) == (D("0.0200"), 60)  # 60 s left covered, 60 s charged
    march = MinutePoolUsage.objects.get(period_start=date(2026, 3, 1))
    assert (march.seconds_used, march.carried_seconds) == (300, 120)
    # April: March used its 120 carried and 180 of its own 180: nothing rolls over
    ingest([_call("a1", datetime(2026, 4, 2, 9, tzinfo=UTC), 240)], source="t", fmt="test")
    a1 = Cdr.objects.get(call_id="a1")
    assert (a1.pool_seconds, a1.price) == (180, D("0.0200"))
    assert MinutePoolUsage.objects.get(period_start=date(2026, 4, 1)).carried_seconds == 0


def test_no_rollover_into_the_first_month_of_service(world) -> None:
    plan = ServicePlan.objects.create(name="Roll new")
    IncludedMinutes.objects.create(plan=plan, name="UK", prefixes=["44"], minutes=1, rollover_cap=5)
    Account.objects.filter(pk=world["alice"].pk).update(service_plan=plan, activation_date=date(2026, 3, 1))
    ingest([_call("n1", datetime(2026, 3, 2, 9, tzinfo=UTC), 120)], source="t", fmt="test")
    n1 = Cdr.objects.get(call_id="n1")
    assert (n1.pool_seconds, n1.price) == (60, D("0.0200"))
    assert MinutePoolUsage.objects.get().carried_seconds == 0


def test_the_worker_posts_the_charges_due(customer) -> None:
    from typer.testing import CliRunner

    from tarifa import cli

    if not any(getattr(c, "name", None) == "worker" for c in cli.app.registered_commands):
        cli._register_commands()
    plan = ServicePlan.objects.create(name="Wk", recurring_fee=D("4"), billing_day=1)
    Account.objects.create(customer=customer, name="w", service_plan=plan, activation_date=date(2026, 1, 1))
    done = CliRunner().invoke(cli.app, ["worker", "--once"])
    assert done.exit_code == 0, done.output
    posted = ServiceCharge.objects.count()
    assert posted >= 11 and f"posted {posted} service charge(s)" in done.output  # January to November 2026 at least


def _charged_services(customer: Customer) -> dict[str, object]:
    """One service of each kind on plans, activated 2026-10-10 and charged through November."""
    plan = ServicePlan.objects.create(name="Dev", recurring_fee=D("29.99"), setup_fee=D("10"))
    acc = Account.objects.create(
        customer=customer,
        name="dev",
        kind="trunk",
        identifier="t9",
        service_plan=plan,
        activation_date=date(2026, 10, 10),
    )
    did = Did.objects.create(
        number="12125550177",
        status="assigned",
        account=acc,
        activation_date=date(2026, 10, 10),
        plan=DidPlan.objects.create(name="Local", monthly_fee=D("1.50")),
    )
    services: dict[str, object] = {
        "account": acc,
        "ip_device": IpDevice.objects.create(
            account=acc, address="192.0.2.77", service_plan=plan, activation_date=date(2026, 10, 10)
        ),
        "sip_device": SipDevice.objects.create(
            account=acc, login="dev1", secret="Secret1xSecret1x", service_plan=plan, activation_date=date(2026, 10, 10)
        ),
        "did": did,
        "virtual_number": VirtualNumber.objects.create(
            number="301", primary_did=did, account=acc, activation_date=date(2026, 10, 10), additional_charge=D("2")
        ),
    }
    run_charges(date(2026, 12, 1))
    return services


@pytest.mark.parametrize("kind", ["account", "ip_device", "sip_device", "did", "virtual_number"])
def test_an_activation_date_is_fixed_once_charges_were_posted_from_it(customer, kind: str) -> None:
    from django.core.exceptions import ValidationError

    service = _charged_services(customer)[kind]
    assert ServiceCharge.objects.filter(service_kind=kind, service_id=service.pk).exists()  # type: ignore[attr-defined]
    before = ServiceCharge.objects.count()
    service.activation_date = date(2026, 10, 11)  # type: ignore[attr-defined]
    with pytest.raises(ValidationError) as refused:
        service.full_clean()  # type: ignore[attr-defined]
    (message,) = refused.value.message_dict["activation_date"]
    instead = {
        "did": "release the number and assign it again",
        "virtual_number": "delete it and add a new virtual number",
    }.get(kind, "set a cancellation date and add a new service")
    assert message == (
        "Activation date '2026-10-11' is refused: charges were posted from 2026-10-01 for the activation date "
        f"2026-10-10; {instead}"
    )
    # unchanged it is fine, and a service never charged may move its date
    service.activation_date = date(2026, 10, 10)  # type: ignore[attr-defined]
    service.full_clean()  # type: ignore[attr-defined]
    run_charges(date(2026, 12, 1))
    assert ServiceCharge.objects.count() == before


def test_an_uncharged_activation_date_may_move(customer) -> None:
    plan = ServicePlan.objects.create(name="Later", recurring_fee=D("5"))
    acc = Account.objects.create(
        customer=customer,
        name="later",
        kind="trunk",
        identifier="t7",
        service_plan=plan,
        activation_date=date(2027, 1, 1),
    )
    acc.activation_date = date(2027, 2, 1)
    acc.full_clean()


def test_the_ip_device_change_page_refuses_a_charged_activation_date(customer, client) -> None:
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    admin_client = client
    device = _charged_services(customer)["ip_device"]
    url = f"/admin/customers/ipdevice/{device.pk}/change/"  # type: ignore[attr-defined]
    page = admin_client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    data["activation_date"] = "2026-10-11"
    answer = admin_client.post(url, data)
    assert answer.status_code == 200
    assert "charges were posted from 2026-10-01 for the activation date 2026-10-10" in answer.content.decode()
    device.refresh_from_db()  # type: ignore[attr-defined]
    assert device.activation_date == date(2026, 10, 10)  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["account", "ip_device", "sip_device"])
def test_a_cancellation_date_before_the_activation_date_is_refused(customer, kind: str) -> None:
    from django.core.exceptions import ValidationError

    acc = Account.objects.create(customer=customer, name="c", kind="trunk", identifier="t8")
    service = {
        "account": acc,
        "ip_device": IpDevice(account=acc, address="192.0.2.78"),
        "sip_device": SipDevice(account=acc, login="c1", secret="Secret1xSecret1x"),
    }[kind]
    service.activation_date, service.cancellation_date = date(2026, 11, 20), date(2026, 11, 10)
    with pytest.raises(ValidationError) as refused:
        service.full_clean()
    assert refused.value.message_dict["cancellation_date"] == [
        "Cancellation date '2026-11-10' is refused: must be on or after the activation date 2026-11-20"
    ]
    service.cancellation_date = date(2026, 11, 20)
    service.full_clean()


def test_a_charge_the_ledger_refuses_is_isolated_reported_and_the_worker_goes_on(customer) -> None:
    """Attack item 2: a plan fee forced into the database beyond what a balance can hold. The other
    customers' charges of the same chunk are posted; the bad service is reported by name with the
    reason, nothing of it posted, and tried again next run; ``tarifa worker --once`` logs one line and
    exits 0 (its reservation sweep done)."""
    from typer.testing import CliRunner

    from tarifa import cli

    other = Customer.objects.create(
        parent=customer.parent, name="Fine", web_username="fine", tariff=customer.tariff, country="US"
    )
    good = ServicePlan.objects.create(name="Good", recurring_fee=D("4"))
    bad = ServicePlan.objects.create(name="Huge", recurring_fee=D("1"))
    ServicePlan.objects.filter(pk=bad.pk).update(recurring_fee=D("999999999999.999999"), billing_day=31)
    Account.objects.create(customer=customer, name="huge", service_plan=bad, activation_date=date(2025, 1, 1))
    Account.objects.create(customer=customer, name="fine-too", service_plan=good, activation_date=date(2025, 1, 1))
    fine = Account.objects.create(customer=other, name="fine", service_plan=good, activation_date=date(2025, 1, 1))
    result = run_charges(date(2026, 3, 1))
    assert result.posted == 28 and result.amount == D("112.00"), result  # 14 months of 4.00 each
    assert len(result.failed) == 1 and "huge" in result.failed[0][0], result.failed
    assert "Balance after" in result.failed[0][1] and "is refused" in result.failed[0][1], result.failed
    assert ServiceCharge.objects.filter(service_id=fine.pk).count() == 14
    assert not ServiceCharge.objects.filter(amount__gt=D("1000")).exists()
    again = run_charges(date(2026, 3, 1))
    assert again.posted == 0 and len(again.failed) == 1  # tried again, still refused, nothing else twice
    _ledger_matches(customer)
    _ledger_matches(other)

    if not any(group.name == "charges" for group in cli.app.registered_groups):
        cli._register_commands()
    ran = CliRunner().invoke(cli.app, ["worker", "--once"])
    assert ran.exit_code == 0, ran.output
    assert "expired 0 reservation(s)" in ran.output
    errors = [line for line in ran.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "huge" in errors[0] and "Balance after" in errors[0], ran.output
    charged = CliRunner().invoke(cli.app, ["charges", "run", "--until", "2026-03-01"])
    assert charged.exit_code == 1 and "were not posted" in charged.output, charged.output
