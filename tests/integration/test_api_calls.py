"""The authorisation endpoints as a switch sees them, and the operator's simulation tools."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tarifa.calls.models import Reservation
from tests.factories import UK

pytestmark = pytest.mark.django_db


def call(client, token, **body):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/calls/authorize",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_authorize_and_end_over_http(client, token) -> None:
    response = call(client, token, call_id="h1", callee="011" + UK, sip_user="alice", trace=True)
    assert response.status_code == 200
    body = response.json()
    assert body["allowed"] is True and body["max_duration"] > 0 and body["reservation_id"]
    assert body["routes"][0]["number"].endswith(UK) and body["media"]["rtp_timeout"] == 60
    assert any("ALLOWED" in step for step in body["trace"])
    assert Reservation.objects.get(call_id="h1").switch == "pop-a"
    end = client.post("/api/v1/calls/h1/end", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert end.json() == {"released": True} and not Reservation.objects.exists()


def test_refusal_over_http(client, token) -> None:
    body = call(client, token, call_id="h2", callee="011" + UK, sip_user="nobody").json()
    assert (body["allowed"], body["reason"], body["sip_code"], body["trace"]) == (False, "unknown_account", 403, None)


def test_bad_request_is_a_problem_naming_the_field(client, token) -> None:
    response = call(client, token, callee="011" + UK)
    assert response.status_code == 422 and response["Content-Type"] == "application/problem+json"
    assert any(e["field"] == "call_id" for e in response.json()["errors"])
    assert call(client, "bad", call_id="x", callee="1").status_code == 401


def test_simulate_cli_and_admin(client, net, tmp_path) -> None:
    from tarifa.calls.authorize import simulate_for

    decision = simulate_for("alice", "011" + UK)
    assert decision.allowed and not Reservation.objects.exists()
    client.force_login(get_user_model().objects.create_superuser("boss", "b@example.com", "Boss-pass1"))
    url = reverse("admin:customers_account_simulate_call", args=[net["alice"].pk])
    page = client.post(url, {"callee": "011882123456"}).content.decode()
    assert "Refused: destination_forbidden (SIP 403)" in page and "forbidden in the tariff" in page
    page = client.post(url, {"callee": "011" + UK}).content.decode()
    assert "Allowed for" in page and "cheap" in page


def test_a_nul_character_is_refused_naming_the_field(client, token) -> None:
    """PostgreSQL text cannot hold NUL: refused before anything reaches the database."""
    response = call(client, token, call_id="n\u00001", callee="011" + UK, sip_user="alice")
    assert response.status_code == 422
    assert [(e["field"], "NUL" in e["reason"]) for e in response.json()["errors"]] == [("call_id", True)]
    assert not Reservation.objects.exists()
    end = client.post("/api/v1/calls/n%001/end", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert end.status_code == 200 and end.json() == {"released": False}
