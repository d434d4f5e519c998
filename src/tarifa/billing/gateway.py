"""Card payment gateways: the adapter contract (:class:`PaymentGateway`) and one adapter that talks
JSON over HTTP (:class:`HttpCardGateway`), configured by ``TARIFA_GATEWAY_URL``,
``TARIFA_GATEWAY_KEY`` and ``TARIFA_GATEWAY_WEBHOOK_SECRET`` (docs/payments.md "Adapter contract").

No card number ever reaches Tarifa: the customer's browser gives the card to the gateway, which
hands back a one-time *details token*; Tarifa exchanges it for a saved-method token
(:meth:`PaymentGateway.save_method`) and keeps only that token, the brand, the last four digits and
the expiry. Everything the gateway answers is outside input, checked before use; every failure is a
:class:`GatewayError` whose message says what happened and never contains the key.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Protocol

from tarifa.core.webhooks import SIGNATURE_HEADER, SignatureRefused, check_signature

__all__ = [
    "ChargeResult",
    "Event",
    "GatewayError",
    "HttpCardGateway",
    "PaymentGateway",
    "SavedMethod",
    "SignatureRefused",
    "WebhookRefused",
    "configured_gateway",
]

#: identifiers a gateway may give (charge, event, token): letters, digits and ``_ - . :`` only, so
#: nothing it sends can be read as shell, SQL or markup anywhere it is stored or shown
_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
_AMOUNT: Final = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,6})?")
_CURRENCY: Final = re.compile(r"[A-Z]{3}")
_MAX_ANSWER: Final = 256 * 1024


class GatewayError(Exception):
    """The gateway refused, failed or could not be reached; the message says which."""


class WebhookRefused(ValueError):
    """A callback that is not accepted; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class SavedMethod:
    token: str
    brand: str
    last4: str
    expiry_month: int | None
    expiry_year: int | None


@dataclass(frozen=True, slots=True)
class ChargeResult:
    """What the gateway says about a charge: ``succeeded`` or ``declined`` (with its message)."""

    charge_id: str
    status: str
    amount: Decimal
    currency: str
    message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


@dataclass(frozen=True, slots=True)
class Event:
    """A verified callback: ``kind`` (``charge.succeeded``, ``charge.failed``, ``charge.refunded``),
    the charge it is about and the amount the gateway states for it."""

    id: str
    kind: str
    charge_id: str
    amount: Decimal
    currency: str


class PaymentGateway(Protocol):
    """What Tarifa needs from a card gateway (docs/payments.md "Adapter contract")."""

    name: str

    def save_method(self, customer_ref: str, details_token: str) -> SavedMethod:
        """Exchange the browser's one-time card-details token for a reusable method token."""
        ...

    def charge(self, method_token: str, amount: Decimal, currency: str, idempotency_key: str) -> ChargeResult:
        """Charge a saved method. The same ``idempotency_key`` again returns the first answer and
        never charges twice. A decline is a result; a failure (unreachable, time-out) is a
        :class:`GatewayError` after which the charge may or may not exist: try again with the same key."""
        ...

    def refund(self, charge_id: str, amount: Decimal, idempotency_key: str) -> ChargeResult:
        """Give back (part of) a charge."""
        ...

    def verify_webhook(self, headers: Mapping[str, str], body: bytes, now: int) -> Event:
        """The callback's event once its signature is checked, or :class:`WebhookRefused`."""
        ...


def _text(value: Any, what: str, pattern: re.Pattern[str] = _ID) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        shown = repr(value)[:60]
        raise GatewayError(f"the gateway's {what} {shown} is not in the expected form")
    return value


def _amount(value: Any, what: str = "amount") -> Decimal:
    text = _text(value, what, _AMOUNT)
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only plain decimals
        raise GatewayError(f"the gateway's {what} {text!r} is not a decimal amount") from None


def parse_event(body: bytes) -> Event:
    """A callback body as an :class:`Event`, every field checked (:class:`WebhookRefused` 422)."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise WebhookRefused(400, "the callback body is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict):
        raise WebhookRefused(422, "the callback must be a JSON object with id, type and data")
    data = doc["data"]
    try:
        return Event(
            id=_text(doc.get("id"), "event id"),
            kind=_text(doc.get("type"), "event type"),
            charge_id=_text(data.get("charge"), "charge id"),
            amount=_amount(data.get("amount")),
            currency=_text(data.get("currency"), "currency", _CURRENCY),
        )
    except GatewayError as exc:
        raise WebhookRefused(422, str(exc).replace("the gateway's", "the callback's")) from None


class HttpCardGateway:
    """A gateway behind the JSON HTTP contract of docs/payments.md (http.client: no dependency).

    ``POST /methods``, ``POST /charges``, ``POST /refunds`` with ``Authorization: Bearer <key>`` and
    ``Idempotency-Key``; callbacks signed as :mod:`tarifa.core.webhooks` says. Redirects are never
    followed (the key would go to another host)."""

    name = "http"

    def __init__(
        self,
        url: str,
        key: str,
        webhook_secret: str,
        timeout_seconds: float = 10,  # float-ok: seconds
    ) -> None:
        self.url = url.rstrip("/")
        self._key = key
        self._secret = webhook_secret
        self.timeout_seconds = timeout_seconds

    def __repr__(self) -> str:  # never the key or the secret
        return f"HttpCardGateway({self.url!r})"

    def _call(self, method: str, path: str, body: dict[str, Any] | None, idempotency_key: str = "") -> Any:
        target = urllib.parse.urlsplit(self.url + path)
        headers = {"Accept": "application/json", "Authorization": f"Bearer {self._key}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        kind = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        connection = kind(target.hostname or "", target.port, timeout=self.timeout_seconds)
        try:
            connection.request(method, target.path, data, headers)
            response = connection.getresponse()
            raw = response.read(_MAX_ANSWER + 1)
            status = response.status
        except TimeoutError:
            raise GatewayError(
                f"the gateway did not answer {method} {path} within {self.timeout_seconds:g} s "
                "(the charge may exist: it is tried again with the same idempotency key)"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise GatewayError(f"the gateway cannot be reached ({type(exc).__name__})") from None
        finally:
            connection.close()
        if 300 <= status < 400:
            raise GatewayError(f"the gateway answered {method} {path} with a redirect (HTTP {status}); not followed")
        if len(raw) > _MAX_ANSWER:
            raise GatewayError(f"the gateway's answer to {method} {path} is too large")
        try:
            answer = json.loads(raw) if raw else {}
        except (ValueError, RecursionError):
            raise GatewayError(f"the gateway's answer to {method} {path} is not JSON (HTTP {status})") from None
        if status == 402 and isinstance(answer, dict):  # a decline: a result, not a failure
            return answer
        if not 200 <= status < 300:
            said = answer.get("error") if isinstance(answer, dict) else None
            reason = f": {str(said)[:200]}" if said else ""
            if status == 401:
                raise GatewayError("the gateway refused Tarifa's key (HTTP 401): check TARIFA_GATEWAY_KEY")
            raise GatewayError(f"the gateway refused {method} {path} (HTTP {status}){reason}")
        if not isinstance(answer, dict):
            raise GatewayError(f"the gateway's answer to {method} {path} is not a JSON object")
        return answer

    def save_method(self, customer_ref: str, details_token: str) -> SavedMethod:
        answer = self._call("POST", "/methods", {"customer": customer_ref, "details_token": details_token})
        month, year = answer.get("exp_month"), answer.get("exp_year")
        return SavedMethod(
            token=_text(answer.get("token"), "method token"),
            brand=str(answer.get("brand") or "")[:20],
            last4=_text(answer.get("last4", ""), "last four digits", re.compile(r"[0-9]{4}|")),
            expiry_month=month if isinstance(month, int) and 1 <= month <= 12 else None,
            expiry_year=year if isinstance(year, int) and 2000 <= year <= 2999 else None,
        )

    def _result(self, answer: dict[str, Any]) -> ChargeResult:
        status = answer.get("status")
        if status not in ("succeeded", "declined"):
            raise GatewayError(f"the gateway's charge status {str(status)[:40]!r} is neither succeeded nor declined")
        return ChargeResult(
            charge_id=_text(answer.get("id"), "charge id"),
            status=status,
            amount=_amount(answer.get("amount")),
            currency=_text(answer.get("currency"), "currency", _CURRENCY),
            message=str(answer.get("message") or "")[:200],
        )

    def charge(self, method_token: str, amount: Decimal, currency: str, idempotency_key: str) -> ChargeResult:
        answer = self._call(
            "POST",
            "/charges",
            {"method": method_token, "amount": format(amount, "f"), "currency": currency},
            idempotency_key,
        )
        return self._result(answer)

    def refund(self, charge_id: str, amount: Decimal, idempotency_key: str) -> ChargeResult:
        answer = self._call("POST", "/refunds", {"charge": charge_id, "amount": format(amount, "f")}, idempotency_key)
        return self._result(answer)

    def verify_webhook(self, headers: Mapping[str, str], body: bytes, now: int) -> Event:
        signature = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER.lower()), None)
        try:
            check_signature(self._secret, signature, body, now)
        except SignatureRefused as exc:
            raise WebhookRefused(401, str(exc)) from None
        return parse_event(body)


def configured_gateway() -> HttpCardGateway | None:
    """The gateway of TARIFA_GATEWAY_URL, or ``None`` when none is configured."""
    from tarifa import config

    settings = config.gateway()
    if settings is None:
        return None
    return HttpCardGateway(settings.url, settings.key, settings.webhook_secret)
