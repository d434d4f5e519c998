"""Why a call is refused: one vocabulary, each reason with the SIP status it answers with."""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from tarifa.core.identity import AMBIGUOUS
from tarifa.core.identity import UNKNOWN_PBX as PBX_UNKNOWN


class Refusal(StrEnum):
    """Why a call is refused, with the SIP status the switch answers with (docs/authorization.md).
    The value is the ``reason`` of the API's answer and of the dashboards' counts."""

    sip_code: int

    def __new__(cls, value: str, sip_code: int) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member.sip_code = sip_code
        return member

    UNKNOWN_ACCOUNT = "unknown_account", 403
    AMBIGUOUS_ACCOUNT = AMBIGUOUS, 403
    UNKNOWN_PBX = PBX_UNKNOWN, 403  # a PBX extension from a PBX it is not registered with (core.identity)
    ACCOUNT_DISABLED = "account_disabled", 403
    IP_NOT_ALLOWED = "ip_not_allowed", 403
    POP_NOT_ALLOWED = "pop_not_allowed", 403
    INVALID_NUMBER = "invalid_number", 484
    INSUFFICIENT_FUNDS = "insufficient_funds", 402
    UNPAID_CHARGES = "unpaid_charges", 402
    DESTINATION_FORBIDDEN = "destination_forbidden", 403
    INTERNATIONAL_DISABLED = "international_disabled", 403
    COUNTRY_NOT_ALLOWED = "country_not_allowed", 403
    RATE_ABOVE_CAP = "rate_above_cap", 403
    NO_RATE = "no_rate", 404
    CONCURRENT_LIMIT = "concurrent_limit", 486
    CPS_LIMIT = "cps_limit", 503
    NO_ROUTE = "no_route", 503
    LOSS_ROUTE = "loss_route", 503
    PREMIUM_RATE_DISABLED = "premium_rate_disabled", 403
    DIRECTORY_411_ONLY = "directory_411_only", 403
