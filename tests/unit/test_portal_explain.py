"""The portal's "why did my call fail?" wording and its money display: pure, no database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tarifa.core.authorization import Refusal
from tarifa.portal.explain import ADVICE, customer_steps, explain
from tarifa.portal.templatetags.portal import money

TRACE = [
    "SIP user 'alice': account A1, device sip:1",
    "number 442079460958: international (abroad), country GB, type fixed_line",
    "rate 44 D44: 0.0200/min 60/60 (tariff 7)",
    "connection cheap at capacity (10 channels)",
    "dropped 1 loss route(s)",
    "REFUSED no_route (SIP 503): no connection of group 'Value' has a price for 442079460958",
]


def test_every_refusal_has_advice() -> None:
    assert set(ADVICE) == set(Refusal)


def test_the_carriers_are_left_out() -> None:
    steps = customer_steps(TRACE, "no_route")
    text = " ".join(steps)
    assert "cheap" not in text and "Value" not in text and "tariff 7" not in text and "loss route" not in text
    assert steps[-1] == "REFUSED no_route (SIP 503): No carrier could take this call."
    assert "rate 44 D44: 0.0200/min 60/60" in steps


def test_a_restriction_points_to_its_settings_group() -> None:
    refused = explain(False, "international_disabled", 403, ["REFUSED international_disabled (SIP 403): off"])
    assert (refused.group, refused.sip_code) == ("restrictions", 403)
    assert refused.steps == ["REFUSED international_disabled (SIP 403): off"]
    assert explain(True, "", 200, []).what == "The call would be allowed now."
    assert explain(False, "something_new", 403, []).todo == "Contact support."


@pytest.mark.parametrize(
    ("value", "places", "shown"),
    [
        (Decimal("106.077700"), 4, "106.0777"),
        (Decimal("5.000000"), 4, "5.00"),
        (Decimal("-0.125"), 2, "-0.13"),
        (Decimal("1.23456789"), 6, "1.234568"),
        ("not money", 4, "not money"),
    ],
)
def test_money_is_shown_to_the_billing_decimals(value: object, places: int, shown: str) -> None:
    assert money(value, places) == shown
