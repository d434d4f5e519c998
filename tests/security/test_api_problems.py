"""What the API says when it refuses (issue 12, user report items 14 and H): every validation problem
names the field, the value and the rule in the house style, on the switch endpoints (served without Django) and through
django-ninja alike; a valid token of the wrong kind is told so (403), not taken for no token (401)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tarifa.api.models import ApiToken
from tarifa.routing.models import Pop

pytestmark = pytest.mark.django_db


@pytest.fixture
def tokens(world: dict[str, Any]) -> dict[str, str]:
    _t, switch = ApiToken.issue("kamailio-1", switch=Pop.objects.create(name="pop-a"))
    _t, customer = ApiToken.issue("portal", customer=world["customer"])
    return {"switch": switch, "customer": customer}


def _authorize(client: Any, token: str, body: dict[str, Any]) -> Any:
    return client.post(
        "/api/v1/calls/authorize",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


@pytest.mark.parametrize(
    "body,field,reason",
    [
        ({"call_id": "x"}, "callee", "callee is required"),
        ({"call_id": "x", "callee": 5}, "callee", "callee 5 is refused: must be text (a JSON string)"),
        (
            {"call_id": "x", "callee": "1", "trace": "yes"},
            "trace",
            "trace 'yes' is refused: must be true or false (a JSON boolean)",
        ),
        ({"call_id": "x", "callee": "1", "source_ip": "1.2.3"}, "source_ip", "source_ip '1.2.3' is not an IP address"),
    ],
)
def test_authorisation_refusals_name_field_value_and_rule(
    client: Any, tokens: dict[str, str], body: dict[str, Any], field: str, reason: str
) -> None:
    response = _authorize(client, tokens["switch"], body)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": field, "reason": reason}]


def test_authorisation_takes_a_valid_source_ip(client: Any, tokens: dict[str, str]) -> None:
    response = _authorize(client, tokens["switch"], {"call_id": "x", "callee": "1", "source_ip": "192.0.2.10"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "query,field,reason",
    [
        ("limit=abc", "limit", "limit 'abc' is refused: must be a whole number"),
        (
            "since=notadate",
            "since",
            "since 'notadate' is refused: must be a date and time in ISO 8601, e.g. 2026-03-02T10:00:00Z",
        ),
        (
            "until=2026-13-01",
            "until",
            "until '2026-13-01' is refused: must be a date and time in ISO 8601, e.g. 2026-03-02T10:00:00Z",
        ),
    ],
)
def test_cdr_listing_refusals_name_field_value_and_rule(
    client: Any, tokens: dict[str, str], query: str, field: str, reason: str
) -> None:
    response = client.get(f"/api/v1/cdrs?{query}", HTTP_AUTHORIZATION=f"Bearer {tokens['customer']}")
    assert response.status_code == 422 and response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"] == [{"field": field, "reason": reason}]


def test_a_token_of_the_wrong_kind_is_told_so(client: Any, tokens: dict[str, str]) -> None:
    """A customer's token on the switch endpoints, a switch's on the customer's CDR listing: 403 saying
    which kind it is and which is needed; an unknown token stays 401."""
    call = {"call_id": "x", "callee": "1"}
    for response in (
        _authorize(client, tokens["customer"], call),
        client.post("/api/v1/calls/x/end", HTTP_AUTHORIZATION=f"Bearer {tokens['customer']}"),
        client.post(
            "/api/v1/cdrs",
            data="[]",
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {tokens['customer']}",
        ),
    ):
        assert response.status_code == 403, response.content
        assert response.json()["title"] == "Wrong kind of token"
        assert response.json()["detail"].startswith("This is a customer token; this operation needs a switch token")
    response = client.get("/api/v1/cdrs", HTTP_AUTHORIZATION=f"Bearer {tokens['switch']}")
    assert response.status_code == 403
    assert response.json()["detail"].startswith("This is a switch token; this operation needs a customer token")
    for response in (
        _authorize(client, "trf_unknown", call),
        client.get("/api/v1/cdrs", HTTP_AUTHORIZATION="Bearer trf_unknown"),
    ):
        assert response.status_code == 401 and response.json()["title"] == "Unauthorized"
