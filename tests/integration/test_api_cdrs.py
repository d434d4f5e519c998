"""POST /api/v1/cdrs: switch token, per-item rejects, duplicates, problem details."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tarifa.api.models import ApiToken
from tarifa.cdrs.models import Cdr
from tarifa.routing.models import Pop

pytestmark = pytest.mark.django_db


@pytest.fixture
def switch_token(world):  # type: ignore[no-untyped-def]
    _token, raw = ApiToken.issue("kamailio-1", switch=Pop.objects.create(name="pop-a"))
    return raw


def post(client, token: str | None, body) -> tuple[int, dict, str]:  # type: ignore[no-untyped-def]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    response = client.post(
        "/api/v1/cdrs",
        data=json.dumps(body) if not isinstance(body, str) else body,
        content_type="application/json",
        **headers,
    )
    return response.status_code, response.json(), response["Content-Type"]


CDR = {
    "call_id": "api-1",
    "callee": "442079460958",
    "start_time": "2026-03-02T10:00:00+00:00",
    "duration": 61,
    "sip_user": "alice",
    "connection": "carrier-1",
}


def test_push_stores_rates_and_reports(client, switch_token) -> None:
    bad = {**CDR, "call_id": "api-2", "duration": -5}
    status, body, _ = post(client, switch_token, [CDR, bad, {**CDR, "call_id": "api-3"}])
    assert status == 200
    assert (body["received"], body["stored"], body["duplicates"]) == (3, 2, 0)
    assert body["rejected"][0]["index"] == 2 and "duration" in body["rejected"][0]["reason"]
    assert body["charged"] == "0.0800"
    row = Cdr.objects.get(call_id="api-1")
    assert row.switch == "pop-a" and row.price == Decimal("0.04")
    status, body, _ = post(client, switch_token, {"cdrs": [CDR]})
    assert (body["stored"], body["duplicates"]) == (0, 1)


def test_the_switch_is_the_tokens(client, switch_token) -> None:
    post(client, switch_token, [{**CDR, "switch": "someone-else"}])
    assert Cdr.objects.get().switch == "pop-a"


def test_auth_and_body_problems(client, switch_token) -> None:
    status, body, kind = post(client, None, [CDR])
    assert status == 401 and kind == "application/problem+json" and body["title"] == "Unauthorized"
    status, body, _ = post(client, "trf_wrong", [CDR])
    assert status == 401
    status, body, kind = post(client, switch_token, "{not json")
    assert status == 400 and kind == "application/problem+json" and "line 1" in body["detail"]
    status, body, _ = post(client, switch_token, {"calls": []})
    assert status == 400 and "JSON array" in body["detail"]
    status, body, _ = post(client, switch_token, [CDR] * 10_001)
    assert status == 413


def test_customer_token_cannot_push(client, world) -> None:
    _t, raw = ApiToken.issue("portal", customer=world["customer"])
    status, body, _ = post(client, raw, [CDR])
    assert status == 403 and body["title"] == "Wrong kind of token"  # valid, but a customer's (issue 12, H)


def test_customer_sees_its_calls_as_soon_as_pushed(client, world, switch_token) -> None:
    from tarifa.customers.models import Customer

    _t, raw = ApiToken.issue("portal", customer=world["customer"])
    other = Customer.objects.create(
        parent=world["customer"].parent,
        name="X",
        company="X",
        web_username="x1",
        tariff=world["tariff"],
        email="x@x.example",
        phone="+12015550123",
        country="US",
    )
    _t2, other_raw = ApiToken.issue("other", customer=other)
    post(client, switch_token, [CDR])
    mine = client.get("/api/v1/cdrs", HTTP_AUTHORIZATION=f"Bearer {raw}").json()
    assert [c["call_id"] for c in mine] == ["api-1"] and mine[0]["price"] == "0.040000"
    assert client.get("/api/v1/cdrs", HTTP_AUTHORIZATION=f"Bearer {other_raw}").json() == []
    assert client.get("/api/v1/cdrs", {"limit": 0}, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 422
