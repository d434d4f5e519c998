"""Translation rules whose replacement cannot be applied (user report A): refused when saved,
skipped (never a 500) when an old row still holds one."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import checks
from django.core.exceptions import ValidationError
from django.urls import reverse

from tarifa.calls import cache
from tarifa.calls.authorize import simulate_for
from tarifa.customers.models import TranslationRule
from tests.factories import UK, ask

pytestmark = pytest.mark.django_db
BAD = [r"\2", "\\", r"\q", r"\g<1", r"\g<x>", r"\10"]


@pytest.mark.parametrize("replace", BAD)
def test_saving_a_rule_with_a_replacement_that_does_not_fit_is_refused(net, replace: str) -> None:
    rule = TranslationRule(customer=net["customer"], kind="destination", match=r"^(\d+)$", replace=replace)
    with pytest.raises(ValidationError) as caught:
        rule.full_clean()
    message = " ".join(caught.value.message_dict["replace"])
    assert message.startswith(f"Replace with {replace!r} is refused: not a valid replacement")
    assert r"'^(\\d+)$'" in message and "1 group" in message


def test_the_back_office_refuses_the_rule_naming_field_value_and_rule(client, net) -> None:
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    response = client.post(
        reverse("admin:customers_translationrule_add"),
        {
            "kind": "destination",
            "connection": net["dear"].pk,
            "priority": "100",
            "match": r"^(\d+)$",
            "replace": r"\2",
            "dst_prefix": "",
            "description": "",
            "active": "on",
        },
    )
    assert response.status_code == 200
    assert "Replace with &#x27;\\\\2&#x27; is refused: not a valid replacement" in response.content.decode()
    assert not TranslationRule.objects.filter(replace=r"\2").exists()


@pytest.fixture
def stored_bad_rules(net):  # type: ignore[no-untyped-def]
    """Rows saved before the check existed (create() does not validate)."""
    TranslationRule.objects.create(customer=net["customer"], kind="destination", match=r"^9(\d+)$", replace=r"\2")
    TranslationRule.objects.create(customer=net["customer"], kind="source", match=r"^(\d+)$", replace=r"\g<x>")
    TranslationRule.objects.create(connection=net["dear"], kind="destination", match=r"^(\d+)$", replace="\\")
    cache.reset()
    return net


def test_a_stored_broken_rule_is_skipped_by_authorisation(stored_bad_rules) -> None:  # type: ignore[no-untyped-def]
    d = ask(callee="011" + UK, caller="12015550100")
    assert d.allowed and d.number == UK and d.caller_id == "12015550100"
    assert {r["connection"]: r["number"] for r in d.routes}["dear"] == UK
    assert any("skipped" in step and r"\g<x>" in step for step in d.trace)


def test_a_stored_broken_rule_does_not_break_simulation_nor_the_page(client, stored_bad_rules) -> None:  # type: ignore[no-untyped-def]
    assert simulate_for("alice", "9011" + UK).reason != ""  # answers (the 9 is not stripped), never raises
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    url = reverse("admin:customers_account_simulate_call", args=[stored_bad_rules["alice"].pk])
    response = client.post(url, {"callee": "011" + UK, "caller": "12015550100"})
    assert response.status_code == 200 and "skipped" in response.content.decode()


def test_manage_check_warns_about_stored_broken_rules(stored_bad_rules) -> None:  # type: ignore[no-untyped-def]
    found = [m for m in checks.run_checks() if m.id == "customers.W001"]
    assert len(found) == 3 and all("cannot be applied" in m.msg for m in found)
