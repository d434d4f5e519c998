"""Call authorisation for softswitches: ``POST /api/v1/calls/authorize`` and ``.../{call_id}/end``.

The schemas here define the endpoints: ``AuthorizeIn`` validates every request and the fields
of ``AuthorizeOut``/``RouteOut`` are exactly those of every answer. The endpoints themselves are
served by ``tarifa.api.switch_endpoints`` (no middleware stack, no ninja request handling: they are the hot
path); the ninja operations below only declare them for the OpenAPI document, and ``tarifa.urls``
routes the two paths to the switch-endpoint views before the ninja API.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema
from pydantic import BaseModel, StrictBool, field_validator

from tarifa.api.auth import SwitchToken

router = Router(tags=["calls"])


class AuthorizeIn(BaseModel):  # a plain pydantic model: validating it costs a tenth of a ninja Schema's
    call_id: str = Field(..., min_length=1, max_length=255)
    callee: str = Field(..., min_length=1, max_length=64)
    caller: str = Field("", max_length=64)
    source_ip: str = Field("", max_length=45)
    sip_user: str = Field("", max_length=64)
    trunk: str = Field("", max_length=64)
    did: str = Field("", max_length=20)
    account_code: str = Field("", max_length=64)
    extension: str = Field("", max_length=20)
    trace: StrictBool = False  # JSON true or false only: "yes", 1 or "false" are refused, not guessed

    @field_validator("call_id", "callee", "caller", "source_ip", "sip_user", "trunk", "did", "account_code",
                     "extension")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain a NUL character")  # no database text column can hold one
        return value

    @field_validator("source_ip")
    @classmethod
    def _an_address(cls, value: str) -> str:
        """An IPv4/IPv6 address (normalised) or "", checked as a CDR's ``source_ip`` is."""
        from tarifa.cdrs.formats.tarifa import parse_ip

        return parse_ip(value, "source_ip")


class RouteOut(Schema):
    connection: str | None = None
    vendor: str | None = None
    address: str | None = None
    transport: str | None = None
    number: str | None = None
    vendor_price: str | None = None
    type: str | None = None
    login: str | None = None


class AuthorizeOut(Schema):
    allowed: bool
    reason: str
    sip_code: int
    call_id: str
    account: str
    customer: str
    number: str
    destination_class: str
    country: str
    max_duration: int
    caller_id: str
    rate: dict[str, Any] | None
    media: dict[str, Any] | None
    routes: list[RouteOut]
    reservation_id: int | None
    reserved: str
    trace: list[str] | None = None


@router.post("/calls/authorize", auth=SwitchToken(), response=AuthorizeOut, summary="May this call go, where, how long?")
def authorize(request: HttpRequest, body: AuthorizeIn) -> Any:
    """Identify the account, apply restrictions and limits, price the call, reserve its maximum
    cost and return the ordered routes. A refusal has ``allowed: false``, a SIP status code and a
    machine-readable ``reason``. Ask for ``trace: true`` to get each decision step."""
    from tarifa.api.switch_endpoints import authorize_view

    return authorize_view(request)  # documentation only: tarifa.urls serves this path by api.switch_endpoints


class EndOut(Schema):
    released: bool


@router.post("/calls/{call_id}/end", auth=SwitchToken(), response=EndOut, summary="The call ended")
def end(request: HttpRequest, call_id: str) -> Any:
    """Release the call's reservation now (its CDR would release it too)."""
    from tarifa.api.switch_endpoints import end_view

    return end_view(request, call_id)  # documentation only: tarifa.urls serves this path by api.switch_endpoints
