"""The origination world (DID plans with origin rates, a LATA plan, payphone and revenue-share
numbers) and its helpers, shared by the origination tests and the new-user findings' tests
(fixtures registered in conftest.py)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from tarifa.core.cdr import CanonicalCdr
from tarifa.dids.lata import import_lata
from tarifa.dids.models import Did, DidPlan, OriginRate, PayphoneOrigin
from tests.factories import T0

D = Decimal


@pytest.fixture
def origination(world):  # type: ignore[no-untyped-def]
    """A tiered plan on +1 201 555 0100 (no included minutes), a toll-free number, a LATA plan,
    a payphone origin and a revenue-share DID."""
    plan = world["plan"]
    plan.included_minutes = 0
    plan.inbound_interval_1, plan.inbound_interval_n = 30, 6
    plan.payphone_surcharge = D("0.25")
    plan.save()
    for prefix, rate, toll_free in (
        ("44", "0.0500", False),
        ("447", "0.1200", False),
        ("1", "0.0300", True),
        ("1212", "0.0250", True),
    ):
        OriginRate.objects.create(plan=plan, prefix=prefix, rate=D(rate), toll_free=toll_free)
    Did.objects.create(number="18005550199", status="assigned", account=world["alice"], plan=plan)
    lata_plan = DidPlan.objects.create(
        name="LATA",
        inbound_rate=D("0.0100"),
        lata_billing=True,
        lata_intra_intrastate=D("0.0010"),
        lata_inter_intrastate=D("0.0020"),
        lata_interstate=D("0.0040"),
    )
    Did.objects.create(number="12125560100", status="assigned", account=world["trunk"], plan=lata_plan)
    import_lata(b"npa_nxx,lata,state\n212555,132,NY\n212556,132,NY\n518555,140,NY\n201555,224,NJ\n", "l.csv")
    PayphoneOrigin.objects.create(prefix="1305555", description="Miami payphones")
    share = DidPlan.objects.create(name="Share", inbound_rate=D("0"), inbound_interval_1=60, inbound_interval_n=60)
    Did.objects.create(
        number="19005550100", status="assigned", account=world["ip"], plan=share, out_payment_rate=D("0.0150")
    )
    return {**world, "lata_plan": lata_plan}


def inbound(call_id: str, callee: str, caller: str, duration: int = 61, minute: int = 0, **kw) -> CanonicalCdr:  # type: ignore[no-untyped-def]
    return CanonicalCdr(
        call_id=call_id,
        callee=callee,
        caller=caller,
        start_time=T0 + timedelta(minutes=minute),
        connect_time=T0 + timedelta(minutes=minute),
        duration=duration,
        switch="sw1",
        direction="inbound",
        **kw,
    )


@pytest.fixture
def cli(monkeypatch):  # type: ignore[no-untyped-def]
    from tarifa import cli as root
    from tarifa import config

    monkeypatch.setattr(config, "embedded_database", lambda: None)
    if not any(group.name == "lata" for group in root.app.registered_groups):
        root._register_commands()
    return lambda *args: CliRunner().invoke(root.app, list(args))


def plan_form(plan: DidPlan, prefix: str) -> dict[str, str]:
    """The DID plan page's form for ``plan`` with one origin rate for ``prefix``."""
    data = {
        "name": plan.name,
        "description": "",
        "monthly_fee": "0",
        "setup_fee": "0",
        "included_minutes": "0",
        "inbound_rate": "0.0100",
        "inbound_interval_1": "60",
        "inbound_interval_n": "60",
        "toll_free_rate": "",
        "payphone_surcharge": "0.25",
        "lata_intra_intrastate": "0",
        "lata_inter_intrastate": "0",
        "lata_interstate": "0",
        "lata_intra_interstate": "",
        "short_call_seconds": "0",
        "short_call_threshold": "0",
        "short_call_penalty": "0",
        "short_call_mode": "per_call",
        "origin_rates-TOTAL_FORMS": "1",
        "origin_rates-INITIAL_FORMS": "0",
        "origin_rates-MIN_NUM_FORMS": "0",
        "origin_rates-MAX_NUM_FORMS": "1000",
        "origin_rates-0-prefix": prefix,
        "origin_rates-0-rate": "0.0400",
    }
    return data
