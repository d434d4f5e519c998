"""The switch endpoints as served by ``tarifa.api.switch_endpoints``: through the WSGI application that ``tarifa serve``
runs (no middleware stack) and through Django (test client) they answer alike, with the same
status codes, problem documents and field-named errors as the rest of the API."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.test import RequestFactory

from tarifa.api import switch_endpoints
from tarifa.api.call_schemas import AuthorizeOut
from tarifa.calls.models import Reservation
from tests.factories import UK
from tests.wsgi_call import call_wsgi

pytestmark = pytest.mark.django_db
PATH = "/api/v1/calls/authorize"
SECURITY = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
APP = switch_endpoints.wsgi(WSGIHandler())


def via_wsgi(
    method: str,
    path: str,
    body: bytes = b"",
    auth: str | None = None,
    content_type: str = "application/json",
    **extra: str,
) -> tuple[int, dict[str, str], bytes]:
    """One request through the WSGI application tarifa serve runs (tarifa.wsgi), in this test's transaction."""
    if auth is not None:
        extra["HTTP_AUTHORIZATION"] = auth
    extra.setdefault("HTTP_HOST", "testserver")  # as a client sends it (without one the request goes to Django)
    environ = RequestFactory().generic(method, path, body, content_type=content_type, **extra).environ
    return call_wsgi(APP, environ)


def via_django(
    client,
    method: str,
    path: str,
    body: bytes = b"",
    auth: str | None = None,  # type: ignore[no-untyped-def]
    content_type: str = "application/json",
    **extra: str,
) -> tuple[int, dict[str, str], bytes]:
    if auth is not None:
        extra["HTTP_AUTHORIZATION"] = auth
    response = client.generic(method, path, body, content_type=content_type, **extra)
    return response.status_code, dict(response.headers), response.content


def problem(status: int, title: str, detail: str = "", errors: list | None = None, path: str = PATH) -> dict:
    doc: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "instance": path}
    if detail:
        doc["detail"] = detail
    if errors:
        doc["errors"] = errors
    return doc


UNAUTHORIZED = problem(401, "Unauthorized", "A valid API token is required (Authorization: Bearer <token>).")


def unparsable(reason: str) -> dict:
    return problem(
        400, "Cannot parse request body", f"The request body is {reason}.", [{"field": "", "reason": reason}]
    )


def refused(status: int, errors: list) -> dict:
    return problem(status, "Unprocessable request", "Some fields were refused.", errors)


CASES = [
    # (name, body, expected status, expected problem document or None for a decision)
    ("bad JSON", b'{"call_id":', 400, unparsable("not valid JSON: Expecting value at line 1 column 12 (character 11)")),
    (
        "not UTF-8",
        b'{"call_id": "\xff", "callee": "1"}',
        400,
        unparsable("not UTF-8, UTF-16 or UTF-32 text: invalid start byte at byte 13"),
    ),
    ("too deeply nested", b"[" * 20_000 + b"]" * 20_000, 400, unparsable("nested too deeply to be a request document")),
    ("empty body", b"", 422, refused(422, [{"field": "", "reason": "request body is required"}])),
    (
        "a list",
        b"[]",
        422,
        refused(422, [{"field": "", "reason": "request body [] is refused: must be a JSON object"}]),
    ),
    (
        "null",
        b"null",
        422,
        refused(422, [{"field": "", "reason": "request body null is refused: must be a JSON object"}]),
    ),
    (
        "a number",
        b"5",
        422,
        refused(422, [{"field": "", "reason": "request body 5 is refused: must be a JSON object"}]),
    ),
    ("missing call_id", b'{"callee": "1"}', 422, refused(422, [{"field": "call_id", "reason": "call_id is required"}])),
    (
        "call_id too long",
        json.dumps({"call_id": "x" * 256, "callee": "1"}).encode(),
        422,
        refused(
            422,
            [{"field": "call_id", "reason": "call_id '" + "x" * 59 + "... is refused: must be at most 255 characters"}],
        ),
    ),
    (
        "empty callee and more",
        json.dumps({"callee": "", "call_id": 5, "did": "1" * 21}).encode(),
        422,
        refused(
            422,
            [
                {"field": "call_id", "reason": "call_id 5 is refused: must be text (a JSON string)"},
                {"field": "callee", "reason": "callee '' is refused: must not be empty"},
                {"field": "did", "reason": "did '111111111111111111111' is refused: must be at most 20 characters"},
            ],
        ),
    ),
    (
        "null caller",
        b'{"call_id": "x", "callee": "1", "caller": null}',
        422,
        refused(422, [{"field": "caller", "reason": "caller null is refused: must be text (a JSON string)"}]),
    ),
    (
        "trace as a string",
        b'{"call_id": "x", "callee": "1", "trace": "yes"}',
        422,
        refused(422, [{"field": "trace", "reason": "trace 'yes' is refused: must be true or false (a JSON boolean)"}]),
    ),
    (
        "trace as a number",
        b'{"call_id": "x", "callee": "1", "trace": 1}',
        422,
        refused(422, [{"field": "trace", "reason": "trace 1 is refused: must be true or false (a JSON boolean)"}]),
    ),
    (
        "source_ip not an address",
        b'{"call_id": "x", "callee": "1", "source_ip": "1.2.3"}',
        422,
        refused(422, [{"field": "source_ip", "reason": "source_ip '1.2.3' is not an IP address"}]),
    ),
    ("trace false, unknown field ignored", b'{"call_id": "x", "callee": "1", "trace": false, "other": 1}', 200, None),
    ("UTF-16", '{"call_id": "x\u00e9", "callee": "1"}'.encode("utf-16"), 200, None),
]


@pytest.mark.parametrize("name,body,status,expected", CASES, ids=[c[0] for c in CASES])
def test_requests_answered_alike_by_wsgi_and_django(client, token, name, body, status, expected) -> None:
    auth = f"Bearer {token}"
    got_wsgi = via_wsgi("POST", PATH, body, auth)
    got_django = via_django(client, "POST", PATH, body, auth)
    assert got_wsgi[0] == got_django[0] == status
    assert got_wsgi[1] == got_django[1]
    assert got_wsgi[2] == got_django[2]
    headers, document = got_wsgi[1], json.loads(got_wsgi[2])
    assert {k: headers[k] for k in SECURITY} == SECURITY and int(headers["Content-Length"]) == len(got_wsgi[2])
    if expected is None:
        assert headers["Content-Type"] == "application/json; charset=utf-8"
        assert list(document) == list(AuthorizeOut.model_fields) and document["reason"] == "unknown_account"
    else:
        assert headers["Content-Type"] == "application/problem+json" and document == expected


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer bad-token", "Token {t}", "Bearer  {t}"])
def test_missing_or_invalid_token_is_401_before_the_body_is_read(client, token, header) -> None:
    auth = None if header is None else header.format(t=token)
    for got in (via_wsgi("POST", PATH, b'{"call_id":', auth), via_django(client, "POST", PATH, b'{"call_id":', auth)):
        assert got[0] == 401 and got[1]["WWW-Authenticate"] == "Bearer"
        assert got[1]["Content-Type"] == "application/problem+json" and json.loads(got[2]) == UNAUTHORIZED
    end = via_wsgi("POST", "/api/v1/calls/abc/end", b"", auth)
    assert end[0] == 401 and json.loads(end[2]) == {**UNAUTHORIZED, "instance": "/api/v1/calls/abc/end"}


def test_scheme_is_case_insensitive(token) -> None:
    got = via_wsgi("POST", PATH, json.dumps({"call_id": "c", "callee": "1"}).encode(), f"bearer {token}")
    assert got[0] == 200


def test_authorize_and_end_through_wsgi(client, token) -> None:
    body = json.dumps({"call_id": "w1", "callee": "011" + UK, "sip_user": "alice", "trace": True}).encode()
    status, _headers, content = via_wsgi("POST", PATH, body, f"Bearer {token}")
    decision = json.loads(content)
    assert status == 200 and decision["allowed"] is True and decision["reservation_id"]
    assert any("ALLOWED" in step for step in decision["trace"])
    assert AuthorizeOut.model_validate(decision).model_dump() == decision  # the documented schema, exactly
    assert set(decision["routes"][0]) == {
        "connection",
        "vendor",
        "address",
        "transport",
        "number",
        "vendor_price",
        "type",
        "login",
    }
    assert Reservation.objects.get(call_id="w1").switch == "pop-a"
    # the same call id again: the reservation held is answered (no second one)
    again = json.loads(via_wsgi("POST", PATH, body, f"Bearer {token}")[2])
    assert again["reservation_id"] == decision["reservation_id"] and Reservation.objects.count() == 1
    status, _h, content = via_wsgi("POST", "/api/v1/calls/w1/end", b"", f"Bearer {token}")
    assert (status, json.loads(content)) == (200, {"released": True}) and not Reservation.objects.exists()
    assert json.loads(via_wsgi("POST", "/api/v1/calls/w1/end", b"garbage", f"Bearer {token}")[2]) == {"released": False}


def test_emergency_and_refusal_documents_follow_the_schema(token) -> None:
    for callee, user in (("911", "alice"), ("011" + UK, "nobody"), ("011882123456", "alice")):
        body = json.dumps({"call_id": f"s-{callee}-{user}", "callee": callee, "sip_user": user}).encode()
        decision = json.loads(via_wsgi("POST", PATH, body, f"Bearer {token}")[2])
        assert AuthorizeOut.model_validate(decision).model_dump() == decision and decision["trace"] is None


def test_other_requests_go_to_django(client, token) -> None:
    auth = f"Bearer {token}"
    for method, path in (("GET", PATH), ("GET", "/api/v1/calls/x/end"), ("PUT", PATH)):
        status, headers, content = via_wsgi(method, path, b"", auth)
        assert (status, headers["Allow"], content) == (405, "POST", b"Method not allowed")
    assert via_wsgi("POST", PATH + "/", b"", auth)[0] == 404
    assert via_wsgi("POST", "/api/v1/calls//end", b"", auth)[0] == 404
    assert via_wsgi("GET", "/api/v1/health")[0] in (200, 503)
    # a host outside ALLOWED_HOSTS is refused by Django as before, not answered by the switch endpoints
    body = json.dumps({"call_id": "h", "callee": "1"}).encode()
    assert via_wsgi("POST", PATH, body, auth, HTTP_HOST="evil.example")[0] == 400
    assert not Reservation.objects.exists()


def test_openapi_still_documents_the_endpoints(client) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/calls/authorize"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/AuthorizeIn")
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/AuthorizeOut")
    assert "post" in schema["paths"]["/api/v1/calls/{call_id}/end"]
