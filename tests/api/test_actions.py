"""The management API's actions (api/actions.py): rate decks, DID assign/release, a simulated call,
re-rating -- their verdicts, their refusals (field, value, rule) and who may use them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from tarifa.api import actions
from tarifa.api.models import ApiToken
from tarifa.audit.models import AuditEntry
from tarifa.dids.models import Did, DidPlan
from tarifa.rating.models import Rate
from tarifa.routing.models import DestinationSet, Vendor
from tests.api.world import build

pytestmark = pytest.mark.django_db

HEADER = "prefix,destination,price_1,price_n,interval_1,interval_n\n"
DECK = HEADER + "44,United Kingdom,0.0200,0.0200,60,60\n33,France,0.0300,0.0300,60,60\n"


@pytest.fixture
def tenants(operator):  # type: ignore[no-untyped-def]
    return build(operator)


def _deck(text: str = DECK, name: str = "deck.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def _post(client, path, token, tenants, **data):  # type: ignore[no-untyped-def]
    return client.post(path, data, **tenants.auth(token))


# --- decks ----------------------------------------------------------------------------------------


def test_import_export_and_diff_a_tariffs_deck(client, tenants) -> None:
    tariff = tenants.objects["tariff1"]
    url = f"/api/v1/tariffs/{tariff.pk}/deck"
    done = _post(client, url, "op_full", tenants, file=_deck(), mode="add")
    assert done.status_code == 200, done.content
    body = done.json()
    assert (body["added"], body["changed"]) == (1, 1)  # 33 new; 44 had price 0 in the world
    assert Rate.objects.filter(tariff=tariff, prefix="33").exists()
    entry = AuditEntry.objects.get(action="deck_import", object_id=str(tariff.pk))
    assert "token op_full" in entry.actor and entry.after["file"] == "deck.csv"

    exported = client.get(url, **tenants.auth("op_read"))
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    assert b"33,France,0.03," in exported.content
    xlsx = client.get(url + "?format=xlsx", **tenants.auth("op_read"))
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"

    changed = DECK.replace("33,France,0.0300,0.0300", "33,France,0.0400,0.0400")
    diff = _post(client, url + "/diff", "op_read", tenants, file=_deck(changed))
    assert diff.status_code == 200, diff.content
    d = diff.json()
    assert d["unchanged"] == 1 and d["added"] == [] and d["removed"] == []
    assert [c["prefix"] for c in d["changed"]] == ["33"] and "price_1" in d["changed"][0]["fields"]
    assert Rate.objects.get(tariff=tariff, prefix="33").price_1 == Decimal("0.0300")  # a diff stores nothing


def test_a_bad_deck_names_line_field_value_and_rule_and_imports_nothing(client, tenants) -> None:
    tariff = tenants.objects["tariff1"]
    before = Rate.objects.filter(tariff=tariff).count()
    bad = HEADER + "44,UK,0.02,0.02,60,60\n4x,Nowhere,abc,0.01,60,60\n"
    answer = _post(client, f"/api/v1/tariffs/{tariff.pk}/deck", "op_full", tenants, file=_deck(bad))
    assert answer.status_code == 422 and answer["Content-Type"] == "application/problem+json"
    errors = answer.json()["errors"]
    assert all(e.get("line") == 3 for e in errors), errors
    assert {e["field"] for e in errors} >= {"prefix", "price_1"}
    assert any(e["value"] == "abc" and e["rule"] for e in errors)
    assert Rate.objects.filter(tariff=tariff).count() == before


def test_deck_form_refusals_are_the_back_offices(client, tenants) -> None:
    url = f"/api/v1/tariffs/{tenants.objects['tariff1'].pk}/deck"
    wrong = _post(client, url, "op_full", tenants, file=_deck(name="deck.pdf"), mode="merge")
    assert wrong.status_code == 422
    fields = {e["field"]: e for e in wrong.json()["errors"]}
    assert set(fields) == {"file", "mode"}
    assert fields["mode"]["value"] == "merge"
    missing = client.post(url, {}, **tenants.auth("op_full"))
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "file"
    fmt = client.get(url + "?format=pdf", **tenants.auth("op_full"))
    assert fmt.status_code == 422 and fmt.json()["errors"][0]["rule"] == "must be csv or xlsx"


def test_a_deck_above_the_limit_is_refused_naming_it(client, tenants, monkeypatch) -> None:
    monkeypatch.setattr(actions, "DECK_MAX_BYTES", 1000)
    url = f"/api/v1/tariffs/{tenants.objects['tariff1'].pk}/deck"
    big = HEADER + "".join(f"{44000 + n},UK,0.02,0.02,60,60\n" for n in range(200))
    answer = _post(client, url, "op_full", tenants, file=_deck(big))
    assert answer.status_code == 413
    assert "must be at most 1000 bytes" in answer.json()["detail"]
    assert not Rate.objects.filter(prefix="44000").exists()


def test_decks_are_scoped_to_the_tokens_tariffs(client, tenants) -> None:
    mine, theirs = tenants.objects["tariff1"], tenants.objects["tariff2"]
    assert _post(client, f"/api/v1/tariffs/{mine.pk}/deck", "res1_full", tenants, file=_deck()).status_code == 200
    other = _post(client, f"/api/v1/tariffs/{theirs.pk}/deck", "res1_full", tenants, file=_deck())
    assert other.status_code == 404
    assert client.get(f"/api/v1/tariffs/{theirs.pk}/deck", **tenants.auth("res1_full")).status_code == 404
    assert client.get(f"/api/v1/tariffs/{mine.pk}/deck", **tenants.auth("cust1_full")).status_code == 404
    read_only = _post(client, f"/api/v1/tariffs/{mine.pk}/deck", "res1_read", tenants, file=_deck())
    assert read_only.status_code == 403
    assert not Rate.objects.filter(tariff=theirs, prefix="33").exists()


def test_destination_set_decks_are_the_operators(client, tenants) -> None:
    dset = DestinationSet.objects.create(name="Carrier A-Z", vendor=Vendor.objects.create(name="Carrier"))
    url = f"/api/v1/destination-sets/{dset.pk}/deck"
    assert _post(client, url, "op_full", tenants, file=_deck(), mode="replace").status_code == 200
    assert dset.rates.count() == 2
    assert client.get(url, **tenants.auth("res1_full")).status_code == 403
    assert _post(client, url, "res1_full", tenants, file=_deck()).status_code == 403


# --- DIDs -----------------------------------------------------------------------------------------


@pytest.fixture
def did_world(tenants):  # type: ignore[no-untyped-def]
    plan = DidPlan.objects.create(name="Local", monthly_fee=Decimal("1.00"))
    free = Did.objects.create(number="12125550123")
    return plan, free


def test_assign_and_release_a_did(client, tenants, did_world) -> None:
    plan, did = did_world
    account = tenants.objects["account1"]
    url = f"/api/v1/dids/{did.pk}"
    answer = client.post(
        url + "/assign",
        {"account": account.account_code, "plan": plan.pk, "cost_center": "HQ"},
        content_type="application/json",
        **tenants.auth("op_full"),
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "assigned" and answer.json()["account"] == account.pk
    did.refresh_from_db()
    assert did.cost_center == "HQ"
    assert AuditEntry.objects.filter(action="assign", object_id=str(did.pk)).exists()

    again = client.post(
        url + "/assign",
        {"account": account.account_code, "plan": plan.pk},
        content_type="application/json",
        **tenants.auth("op_full"),
    )
    assert again.status_code == 422
    assert again.json()["errors"][0]["field"] == "number" and "cannot be assigned" in again.json()["detail"]

    # the number is now in reseller 1's view (read-only tokens may not write), never in reseller 2's
    _t, res2 = ApiToken.issue("res2_full", customer=tenants.objects["reseller2"], scopes=["full"])
    other = client.post(url + "/release", {}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {res2}")
    assert other.status_code == 404
    for read_only in ("res1_read", "cust1_read"):
        answer = client.post(url + "/release", {}, content_type="application/json", **tenants.auth(read_only))
        assert answer.status_code == 403
    released = client.post(
        url + "/release", {"quarantine_days": 30}, content_type="application/json", **tenants.auth("op_full")
    )
    assert released.status_code == 200, released.content
    assert released.json()["status"] == "quarantined"
    assert released.json()["quarantine_until"] == (timezone.now().date() + timedelta(days=30)).isoformat()


def test_did_refusals_name_field_value_and_rule(client, tenants, did_world) -> None:
    plan, did = did_world
    url = f"/api/v1/dids/{did.pk}/assign"
    unknown = client.post(
        url, {"account": "nobody", "plan": plan.pk}, content_type="application/json", **tenants.auth("op_full")
    )
    assert unknown.status_code == 422
    error = unknown.json()["errors"][0]
    assert error["field"] == "account" and error["value"] == "nobody" and "no account" in error["rule"]
    future = client.post(
        f"/api/v1/dids/{did.pk}/release",
        {"on": "2999-01-01"},
        content_type="application/json",
        **tenants.auth("op_full"),
    )
    assert future.status_code == 422 and future.json()["errors"][0]["field"] == "release_date"


def test_a_tenant_cannot_reach_inventory_dids(client, tenants, did_world) -> None:
    plan, did = did_world
    body = {"account": tenants.objects["account1"].account_code, "plan": plan.pk}
    answer = client.post(
        f"/api/v1/dids/{did.pk}/assign", body, content_type="application/json", **tenants.auth("res1_full")
    )
    assert answer.status_code == 404  # an unassigned number is not in a tenant's view
    did.refresh_from_db()
    assert did.account_id is None


# --- simulate, re-rate ----------------------------------------------------------------------------


def test_simulate_a_call_returns_the_decision_and_its_trace(client, tenants) -> None:
    account = tenants.objects["account1"]
    body = {"account": account.account_code, "callee": "442071234567"}
    answer = client.post("/api/v1/calls/simulate", body, content_type="application/json", **tenants.auth("op_read"))
    assert answer.status_code == 200, answer.content
    decision = answer.json()
    assert decision["trace"] and decision["account"] == account.account_code
    assert decision["allowed"] is (decision["reason"] == "")
    refused = client.post(
        "/api/v1/calls/simulate",
        {"account": account.account_code, "callee": "44", "pop": "nowhere"},
        content_type="application/json",
        **tenants.auth("op_read"),
    )
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "pop"
    assert refused.json()["errors"][0]["value"] == "nowhere"
    tenant = client.post("/api/v1/calls/simulate", body, content_type="application/json", **tenants.auth("res1_full"))
    assert tenant.status_code == 403
    nobody = client.post(
        "/api/v1/calls/simulate",
        {"account": "nobody", "callee": "44"},
        content_type="application/json",
        **tenants.auth("op_read"),
    )
    assert nobody.status_code == 422 and nobody.json()["errors"][0]["field"] == "account"


def test_rerate_a_period(client, tenants) -> None:
    body = {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z", "reason": "UK fix"}
    done = client.post("/api/v1/cdrs/rerate", body, content_type="application/json", **tenants.auth("op_full"))
    assert done.status_code == 200, done.content
    assert done.json()["examined"] == 0 and "from 2026-03-01" in done.json()["criteria"]
    assert AuditEntry.objects.filter(action="rerate", object_id=str(done.json()["run"])).exists()
    backwards = {**body, "from": "2026-05-01T00:00:00Z"}
    refused = client.post("/api/v1/cdrs/rerate", backwards, content_type="application/json", **tenants.auth("op_full"))
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "from"
    bad = client.post(
        "/api/v1/cdrs/rerate", {**body, "to": "soon"}, content_type="application/json", **tenants.auth("op_full")
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["value"] == "soon"
    who = client.post(
        "/api/v1/cdrs/rerate",
        {**body, "customer": "nobody"},
        content_type="application/json",
        **tenants.auth("op_full"),
    )
    assert who.status_code == 422 and who.json()["errors"][0]["field"] == "customer"
    assert (
        client.post("/api/v1/cdrs/rerate", body, content_type="application/json", **tenants.auth("op_read")).status_code
        == 403
    )
    assert (
        client.post(
            "/api/v1/cdrs/rerate", body, content_type="application/json", **tenants.auth("res1_full")
        ).status_code
        == 403
    )


def test_the_upload_goes_to_disk_and_an_announced_oversize_body_is_not_read(client, tenants, monkeypatch) -> None:
    from django.core.files.uploadedfile import TemporaryUploadedFile

    seen: list[object] = []
    parse = actions._rows
    monkeypatch.setattr(actions, "_rows", lambda target, upload: seen.append(upload) or parse(target, upload))
    url = f"/api/v1/tariffs/{tenants.objects['tariff1'].pk}/deck"
    assert _post(client, url, "op_full", tenants, file=_deck()).status_code == 200
    assert isinstance(seen[0], TemporaryUploadedFile)  # written chunk by chunk to a file, not held in memory
    huge = str(actions.DECK_MAX_BYTES + 10 * actions.CHUNK)
    refused = client.post(url, {"file": _deck()}, CONTENT_LENGTH=huge, **tenants.auth("op_full"))
    assert refused.status_code == 413
    assert refused.json()["errors"][0] == {
        "field": "file",
        "value": int(huge),
        "rule": "must be at most 33554432 bytes (32 MiB)",
        "reason": f"The deck upload of {huge} bytes is refused: must be at most 33554432 bytes (32 MiB)",
    }


def test_a_staff_session_imports_a_deck_with_its_csrf_token(tenants) -> None:
    """A browser's session: Django's CSRF check reads the multipart form before the operation (with
    Django's own upload handlers); the deck is imported all the same."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass-12345")
    browser = Client(enforce_csrf_checks=True)
    assert browser.login(username="boss", password="Boss-pass-12345")
    url = f"/api/v1/tariffs/{tenants.objects['tariff2'].pk}/deck"
    assert browser.post(url, {"file": _deck()}).status_code == 403  # no CSRF token
    browser.get("/admin/")
    done = browser.post(url, {"file": _deck()}, HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value)
    assert done.status_code == 200, done.content
    assert AuditEntry.objects.get(action="deck_import").actor == "user boss"


def test_a_non_ascii_tariff_name_gives_a_plain_export_file_name(client, tenants) -> None:
    """Attack finding F9: the name kept non-ASCII letters and the whole header came out RFC 2047-encoded."""
    tariff = tenants.objects["tariff1"]
    type(tariff).objects.filter(pk=tariff.pk).update(name="Ünïcödé 名前 2026")
    exported = client.get(f"/api/v1/tariffs/{tariff.pk}/deck", **tenants.auth("op_read"))
    assert exported.status_code == 200
    header = exported["Content-Disposition"]
    assert header.startswith("attachment; filename=") and header.isascii() and "=?utf-8?" not in header, header
    assert header.endswith('.csv"') and "2026" in header
