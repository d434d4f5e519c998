"""Signatures of payment-gateway callbacks (webhooks): HMAC-SHA256 over the timestamp and the
body, checked in constant time, with a tolerance on the timestamp so a captured callback cannot be
replayed later (a replay within the tolerance is stopped by the event id, stored once).

Header: ``Tarifa-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`` (several
``v1=`` values may be given while a secret is being rotated). Pure: no Django, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

__all__ = ["SIGNATURE_HEADER", "TOLERANCE_SECONDS", "SignatureRefused", "check_signature", "sign"]

SIGNATURE_HEADER: Final = "Tarifa-Signature"
TOLERANCE_SECONDS: Final = 300
_MAX_HEADER: Final = 1000


class SignatureRefused(ValueError):
    """Why a callback's signature is not accepted (never says what the right one would be)."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header value a gateway sends for ``body`` at ``timestamp``."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def check_signature(secret: str, header: str | None, body: bytes, now: int, tolerance: int = TOLERANCE_SECONDS) -> int:
    """The callback's timestamp, or :class:`SignatureRefused`."""
    if not secret:
        raise SignatureRefused("no webhook secret is configured (TARIFA_GATEWAY_WEBHOOK_SECRET): callbacks are refused")
    if not header:
        raise SignatureRefused(f"the {SIGNATURE_HEADER} header is missing")
    if len(header) > _MAX_HEADER or not header.isascii():
        raise SignatureRefused(f"the {SIGNATURE_HEADER} header is malformed")
    timestamp: int | None = None
    given: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == "v1":
            given.append(value)
    if timestamp is None or not given:
        raise SignatureRefused(f"the {SIGNATURE_HEADER} header must be t=<unix seconds>,v1=<hex HMAC-SHA256>")
    if abs(now - timestamp) > tolerance:
        raise SignatureRefused(
            f"the signature's timestamp {timestamp} is more than {tolerance} s from the server's time {now} "
            "(a replayed or delayed callback)"
        )
    expected = sign(secret, timestamp, body).partition("v1=")[2]
    if not any(hmac.compare_digest(expected.encode(), g.encode()) for g in given):
        raise SignatureRefused("the signature does not match the body (wrong secret or altered body)")
    return timestamp
