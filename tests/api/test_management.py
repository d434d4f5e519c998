"""The management API's generic layer: tokens and scopes, tenants, validation, pages, the audit log."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tarifa.api.models import ApiToken
from tarifa.audit.models import AuditEntry
from tarifa.customers.models import Customer
from tests.api.world import build

pytestmark = pytest.mark.django_db

#: path -> the object name in the world of each side (1: reseller 1's subtree, 2: reseller 2's)
TENANT_OBJECTS = {
    "customers": "customer",
    "accounts": "account",
    "sip-devices": "sip",
    "ip-devices": "ip",
    "tariffs": "tariff",
    "rates": "rate",
}
OPERATOR_ONLY = [
    "did-plans",
    "service-plans",
    "destination-sets",
    "vendors",
    "connections",
    "routing-groups",
    "route-offers",
    "pops",
    "audit",
]


@pytest.fixture
def tenants(operator):  # type: ignore[no-untyped-def]
    return build(operator)


def _ids(response) -> set[int]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()["items"]}


@pytest.mark.parametrize("token", ["res1_read", "cust1_read"])
@pytest.mark.parametrize("path", list(TENANT_OBJECTS))
def test_a_tenant_sees_its_subtree_and_never_another(client, tenants, token, path) -> None:
    mine, theirs = tenants.objects[f"{TENANT_OBJECTS[path]}1"], tenants.objects[f"{TENANT_OBJECTS[path]}2"]
    listed = _ids(client.get(f"/api/v1/{path}?limit=500", **tenants.auth(token)))
    assert theirs.pk not in listed
    if not (token == "cust1_read" and path in ("tariffs", "rates")):  # the reseller owns those tariffs
        assert mine.pk in listed
        assert client.get(f"/api/v1/{path}/{mine.pk}", **tenants.auth(token)).status_code == 200
    hidden = client.get(f"/api/v1/{path}/{theirs.pk}", **tenants.auth(token))
    missing = client.get(f"/api/v1/{path}/999999", **tenants.auth(token))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["title"] == missing.json()["title"] == "Not found"
    for write in (
        client.patch(f"/api/v1/{path}/{theirs.pk}", {}, content_type="application/json", **tenants.auth(token)),
        client.delete(f"/api/v1/{path}/{theirs.pk}", **tenants.auth(token)),
    ):
        assert write.status_code in (403, 404)  # 403 only for the read-only token: it may not write at all
        if token.endswith("_full"):
            assert write.status_code == 404


def test_the_operator_sees_everything_and_others_no_operator_objects(client, tenants) -> None:
    listed = _ids(client.get("/api/v1/customers?limit=500", **tenants.auth("op_read")))
    assert {c.pk for c in Customer.objects.all()} == listed
    for path in OPERATOR_ONLY:
        assert client.get(f"/api/v1/{path}", **tenants.auth("op_full")).status_code == 200
        refused = client.get(f"/api/v1/{path}", **tenants.auth("res1_full"))
        assert refused.status_code == 403 and refused["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("token", ["op_read", "res1_read", "cust1_read"])
def test_a_read_only_token_cannot_write(client, tenants, token) -> None:
    account = tenants.objects["account1"]
    before = Customer.objects.count()
    created = client.post("/api/v1/customers", {"name": "X"}, content_type="application/json", **tenants.auth(token))
    changed = client.patch(
        f"/api/v1/accounts/{account.pk}", {"name": "renamed"}, content_type="application/json", **tenants.auth(token)
    )
    deleted = client.delete(f"/api/v1/sip-devices/{tenants.objects['sip1'].pk}", **tenants.auth(token))
    assert created.status_code == changed.status_code == deleted.status_code == 403
    assert "scope" in changed.json()["detail"]
    account.refresh_from_db()
    assert account.name == "acct1" and Customer.objects.count() == before
    assert not AuditEntry.objects.exists()


def test_a_scope_per_area(client, tenants) -> None:
    auth = tenants.auth("op_customers")
    assert client.get("/api/v1/customers", **auth).status_code == 200
    assert client.get("/api/v1/accounts", **auth).status_code == 403
    assert client.get("/api/v1/audit", **auth).status_code == 403


def test_create_update_deactivate_a_customer_with_the_audit_log(client, tenants) -> None:
    auth = tenants.auth("res1_full")
    reseller = tenants.objects["reseller1"]
    body = {
        "parent": reseller.pk,
        "name": "New",
        "company": "New Co",
        "web_username": "newco",
        "email": "new@example.com",
        "phone": "+12015550199",
        "country": "US",
        "tariff": tenants.objects["tariff1"].pk,
        "web_password": "Portal-pass-2026!",
    }
    created = client.post("/api/v1/customers", body, content_type="application/json", **auth, REMOTE_ADDR="192.0.2.9")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert Customer.objects.get(pk=pk).path.startswith(reseller.path)
    changed = client.patch(f"/api/v1/customers/{pk}", {"credit_limit": "25.5"}, content_type="application/json", **auth)
    assert changed.status_code == 200 and changed.json()["credit_limit"].startswith("25.5"), changed.content
    gone = client.delete(f"/api/v1/customers/{pk}", **auth)
    assert gone.status_code == 200 and gone.json()["status"] == "inactive"
    entries = list(AuditEntry.objects.filter(object_type="customers.customer", object_id=str(pk)).order_by("id"))
    assert [e.action for e in entries] == ["create", "update", "deactivate"]
    assert entries[0].address == "192.0.2.9" and entries[0].via == "api" and "res1_full" in entries[0].actor
    assert entries[1].before["credit_limit"] != entries[1].after["credit_limit"]
    # the operator reads it through the API, filtered; a reseller may not
    log = client.get(f"/api/v1/audit?object_id={pk}&object_type=customers.customer", **tenants.auth("op_read"))
    assert [item["action"] for item in log.json()["items"]] == ["deactivate", "update", "create"]
    assert client.get("/api/v1/audit", **auth).status_code == 403


def test_a_reseller_cannot_place_a_customer_outside_its_subtree(client, tenants) -> None:
    auth = tenants.auth("res1_full")
    body = {
        "name": "Escape",
        "company": "E",
        "web_username": "escape",
        "email": "e@example.com",
        "phone": "+12015550111",
        "country": "US",
        "tariff": tenants.objects["tariff1"].pk,
        "web_password": "Portal-pass-2026!",
    }
    for parent in (None, tenants.objects["reseller2"].pk, tenants.operator.pk):
        refused = client.post("/api/v1/customers", {**body, "parent": parent}, content_type="application/json", **auth)
        assert refused.status_code == 422, refused.content
        assert {e["field"] for e in refused.json()["errors"]} == {"parent"}
    theirs = client.post(
        "/api/v1/customers",
        {**body, "tariff": tenants.objects["tariff2"].pk, "parent": tenants.objects["reseller1"].pk},
        content_type="application/json",
        **auth,
    )
    assert theirs.status_code == 422 and [e["field"] for e in theirs.json()["errors"]] == ["tariff"]
    own = client.patch(
        f"/api/v1/customers/{tenants.objects['reseller1'].pk}",
        {"credit_limit": "1000"},
        content_type="application/json",
        **auth,
    )
    assert own.status_code == 422 and not Customer.objects.filter(web_username="escape").exists()


def test_a_tenant_keeps_the_operators_objects_a_record_points_at_and_picks_no_others(client, tenants) -> None:
    from tarifa.billing.models import ServicePlan

    plan, other = (ServicePlan.objects.create(name=n, recurring_fee=Decimal("9.99")) for n in ("Line", "Trunk"))
    sip = tenants.objects["sip1"]
    sip.service_plan = plan
    sip.save()
    auth = tenants.auth("res1_full")
    url = f"/api/v1/sip-devices/{sip.pk}"
    renamed = client.patch(url, {"extension": "101"}, content_type="application/json", **auth)
    assert renamed.status_code == 200 and renamed.json()["service_plan"] == plan.pk, renamed.content
    moved = client.patch(url, {"service_plan": other.pk}, content_type="application/json", **auth)
    assert moved.status_code == 422 and [e["field"] for e in moved.json()["errors"]] == ["service_plan"]
    theirs = client.patch(url, {"account": tenants.objects["account2"].pk}, content_type="application/json", **auth)
    assert theirs.status_code == 422 and [e["field"] for e in theirs.json()["errors"]] == ["account"]


def test_refusals_name_field_value_and_rule_like_the_back_office(client, tenants) -> None:
    auth = tenants.auth("op_full")
    refused = client.post(
        "/api/v1/customers",
        {
            "parent": tenants.operator.pk,
            "name": "Bad",
            "company": "B",
            "web_username": "bad user!",
            "email": "not-an-email",
            "phone": "+12015550111",
            "payment_term_days": 99,
        },
        content_type="application/json",
        **auth,
    )
    assert refused.status_code == 422 and refused["Content-Type"] == "application/problem+json"
    errors = {e["field"]: e for e in refused.json()["errors"]}
    assert errors["payment_term_days"]["value"] == 99 and "30" in errors["payment_term_days"]["rule"]
    assert errors["web_username"]["value"] == "bad user!" and "is refused" in errors["web_username"]["reason"]
    assert "email" in errors
    unknown = client.patch(
        f"/api/v1/customers/{tenants.operator.pk}", {"balance": "1000"}, content_type="application/json", **auth
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "balance"


def test_cursor_pages_walk_every_row_once(client, tenants) -> None:
    auth = tenants.auth("op_read")
    for ordering in ("id", "-id", "name", "-name"):
        seen: list[int] = []
        url = f"/api/v1/customers?limit=2&ordering={ordering}"
        while url:
            body = client.get(url, **auth).json()
            seen += [item["id"] for item in body["items"]]
            url = (
                f"/api/v1/customers?limit=2&ordering={ordering}&cursor={body['next_cursor']}"
                if body["next_cursor"]
                else ""
            )
        assert sorted(seen) == sorted(c.pk for c in Customer.objects.all()) and len(seen) == len(set(seen))
    bad = client.get("/api/v1/customers?cursor=garbage", **auth)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"
    assert client.get("/api/v1/customers?limit=0", **auth).status_code == 422


def _cursor(key: object, pk: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([key, pk]).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("parent=99999999999999999999999", "parent"),  # beyond a 64-bit id: refused, not a database error
        ("parent=-99999999999999999999999", "parent"),
        (f"ordering=created_at&cursor={_cursor('0001-01-01T00:00:00+14:00', 1)}", "cursor"),  # UTC before year 1
        (f"ordering=-created_at&cursor={_cursor('9999-12-31T23:59:59-14:00', 1)}", "cursor"),  # UTC after 9999
    ],
)
def test_out_of_range_filters_and_cursors_are_refused_by_name(client, tenants, query, field) -> None:
    refused = client.get(f"/api/v1/customers?{query}", **tenants.auth("op_read"))
    assert refused.status_code == 422, refused.content
    assert refused.json()["errors"][0]["field"] == field


def test_a_malformed_ip_address_filter_is_refused_by_name(client, tenants) -> None:
    """Found by the schema fuzzer on PostgreSQL: ``?address=SPEEX`` reached the inet column (500)."""
    auth = tenants.auth("op_read")
    refused = client.get("/api/v1/ip-devices?address=SPEEX", **auth)
    assert refused.status_code == 422, refused.content
    assert refused.json()["errors"][0]["field"] == "address" and "SPEEX" in refused.json()["detail"]
    assert client.get("/api/v1/ip-devices?address=198.51.100.7", **auth).status_code == 200


def test_secrets_are_masked_in_answers_and_the_audit_log(client, tenants) -> None:
    auth = tenants.auth("op_full")
    sip = tenants.objects["sip1"]
    shown = client.get(f"/api/v1/sip-devices/{sip.pk}", **auth).json()
    assert shown["secret"] == "********"
    client.patch(
        f"/api/v1/sip-devices/{sip.pk}", {"secret": "N3w-secret-value-1"}, content_type="application/json", **auth
    )
    entry = AuditEntry.objects.get(object_type="customers.sipdevice")
    assert entry.before["secret"] == entry.after["secret"] == "********"
    assert "N3w-secret" not in str(entry.after)


def test_expired_revoked_and_switch_tokens_are_refused(client, tenants) -> None:
    token = ApiToken.objects.get(name="op_read")
    auth = tenants.auth("op_read")
    assert client.get("/api/v1/customers", **auth).status_code == 200
    token.expires_at = timezone.now() - timedelta(seconds=1)
    token.save()
    assert client.get("/api/v1/customers", **auth).status_code == 401
    token.expires_at, token.active = None, False
    token.save()
    assert client.get("/api/v1/customers", **auth).status_code == 401
    from tarifa.routing.models import Pop

    _t, raw = ApiToken.issue("kam", switch=Pop.objects.create(name="pop-z"))
    wrong = client.get("/api/v1/customers", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert wrong.status_code == 403 and "switch token" in wrong.json()["detail"]


def test_rate_limit_answers_429_with_retry_after(client, tenants) -> None:
    token = ApiToken.objects.get(name="op_read")
    token.rate_limit = 3
    token.save()
    answers = [client.get("/api/v1/pops", **tenants.auth("op_read")) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert 1 <= int(answers[-1]["Retry-After"]) <= 60 and answers[-1].json()["status"] == 429
    assert client.get("/api/v1/pops", **tenants.auth("op_full")).status_code == 200  # per token


def test_scopes_are_validated() -> None:
    token = ApiToken(name="x", key_hash="a" * 64, prefix="x", operator=True, scopes=["root"])
    with pytest.raises(ValidationError) as refused:
        token.full_clean()
    assert "not a scope" in str(refused.value)
    token.scopes = ["switch"]
    with pytest.raises(ValidationError):
        token.full_clean()


def test_the_audit_log_is_append_only(tenants) -> None:
    from tarifa.changes import Actor, announce, snapshot

    customer = tenants.objects["customer1"]
    announce(Actor(label="test"), customer, "update", None, snapshot(customer))
    entry = AuditEntry.objects.get()
    entry.action = "delete"
    with pytest.raises(ValidationError):
        entry.save()
    with pytest.raises(ValidationError):
        entry.delete()
    with pytest.raises(ValidationError):
        AuditEntry.objects.all().delete()
    with pytest.raises(ValidationError):
        AuditEntry.objects.update(action="x")
    assert AuditEntry.objects.get().action == "update"


def test_a_staff_session_needs_csrf_for_writes(tenants) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass-12345")
    browser = Client(enforce_csrf_checks=True)
    assert browser.login(username="boss", password="Boss-pass-12345")
    assert browser.get("/api/v1/customers").status_code == 200
    pop = {"name": "pop-s", "address": "192.0.2.1"}
    refused = browser.post("/api/v1/pops", pop, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["title"]
    browser.get("/admin/")
    csrf = browser.cookies["csrftoken"].value
    made = browser.post("/api/v1/pops", pop, content_type="application/json", HTTP_X_CSRFTOKEN=csrf)
    assert made.status_code == 201, made.content
    assert AuditEntry.objects.get(object_type="routing.pop").actor == "user boss"


def test_an_audited_back_office_action_reads_each_relation_once_not_per_record(tenants) -> None:
    """The audit hook of admin actions snapshots every selected record before and after: its
    many-to-many fields (an account's POP restriction) are fetched once per action, not per record."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tarifa.admin_base import _audited
    from tarifa.customers.models import Account
    from tarifa.routing.models import Pop

    pop = Pop.objects.create(name="pop-a")
    customer = tenants.objects["customer1"]

    def touch(modeladmin, request, queryset) -> None:  # type: ignore[no-untyped-def]
        queryset.update(max_channels=7)

    class Request:
        user = None
        META = {"REMOTE_ADDR": "192.0.2.1"}

    counts = []
    for extra in (2, 12):
        for n in range(extra):
            Account.objects.create(customer=customer, name=f"bulk{extra}-{n}").pop_restriction.add(pop)
        selected = Account.objects.filter(customer=customer, name__startswith=f"bulk{extra}-")
        with CaptureQueriesContext(connection) as queries:
            _audited(touch, "touch")(None, Request(), selected)
        entries = AuditEntry.objects.filter(
            action="touch", object_id__in=[str(pk) for pk in selected.values_list("pk", flat=True)]
        )
        assert entries.count() == extra and all(e.after["pop_restriction"] == [pop.pk] for e in entries)
        counts.append(len(queries) - extra)  # one audit row written per changed record
    assert counts[0] == counts[1], counts
