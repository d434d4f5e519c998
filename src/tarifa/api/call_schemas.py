"""The bodies of the switch endpoints (``POST /api/v1/calls/authorize`` and ``.../{call_id}/end``):
``AuthorizeIn`` validates every request, and the fields of ``AuthorizeOut``/``RouteOut`` are exactly
those of every answer. Read by the endpoints (``api/switch_endpoints.py``) and by the operations
that document them (``api/calls.py``), which sit above both.
"""

from __future__ import annotations

from typing import Any

from ninja import Field, Schema
from pydantic import BaseModel, StrictBool, field_validator


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

    @field_validator(
        "call_id", "callee", "caller", "source_ip", "sip_user", "trunk", "did", "account_code", "extension"
    )
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
