"""Call authorisation for softswitches: ``POST /api/v1/calls/authorize`` and ``.../{call_id}/end``.

The schemas in ``api/call_schemas.py`` define the endpoints: ``AuthorizeIn`` validates every
request and the fields of ``AuthorizeOut``/``RouteOut`` are exactly those of every answer. The
endpoints themselves are served by ``tarifa.api.switch_endpoints`` (no middleware stack, no ninja
request handling: they are the hot path); the ninja operations below only declare them for the
OpenAPI document, and ``tarifa.urls`` routes the two paths to the switch-endpoint views before the
ninja API.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema

from tarifa.api.auth import SwitchToken
from tarifa.api.call_schemas import AuthorizeIn, AuthorizeOut
from tarifa.api.switch_endpoints import authorize_view, end_view

router = Router(tags=["calls"])


@router.post(
    "/calls/authorize", auth=SwitchToken(), response=AuthorizeOut, summary="May this call go, where, how long?"
)
def authorize(request: HttpRequest, body: AuthorizeIn) -> Any:
    """Identify the account, apply restrictions and limits, price the call, reserve its maximum
    cost and return the ordered routes. A refusal has ``allowed: false``, a SIP status code and a
    machine-readable ``reason``. Ask for ``trace: true`` to get each decision step."""
    return authorize_view(request)  # documentation only: tarifa.urls serves this path by api.switch_endpoints


class EndOut(Schema):
    released: bool


@router.post("/calls/{call_id}/end", auth=SwitchToken(), response=EndOut, summary="The call ended")
def end(request: HttpRequest, call_id: str) -> Any:
    """Release the call's reservation now (its CDR would release it too)."""
    return end_view(request, call_id)  # documentation only: tarifa.urls serves this path by api.switch_endpoints
