"""Origination providers numbers are ordered from in real time: the interface and one HTTP adapter.

:class:`DidProvider` is what ordering needs from any provider (search, order, release). The HTTP
adapter speaks a small JSON protocol (docs/dids.md "Ordering from a provider"); an adapter for a
particular carrier's API implements the same three methods. Everything a provider answers is
outside input: numbers are checked with libphonenumber and amounts as exact decimals before they
are used, and every failure (refusal, timeout, nonsense) is a :class:`ProviderError` whose message
says what happened, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from tarifa.core.dids import NumberRefused, parse_number


class ProviderError(Exception):
    """The provider refused, failed or could not be reached; the message says which."""


@dataclass(frozen=True, slots=True)
class OfferedNumber:
    """A number the provider can sell now, with its monthly cost to us."""

    number: str  # E.164 digits
    monthly_cost: Decimal


@dataclass(frozen=True, slots=True)
class OrderedNumber:
    """A number the provider has sold to us."""

    number: str
    monthly_cost: Decimal
    order_id: str


class DidProvider(Protocol):
    """What ordering needs from an origination provider."""

    name: str

    def search(self, country: str, area_code: str | None, limit: int) -> list[OfferedNumber]:
        """Numbers for sale in ``country`` (ISO code), optionally in ``area_code``."""
        ...

    def order(self, number: str) -> OrderedNumber:
        """Buy ``number``; raises :class:`ProviderError` when the provider refuses or fails."""
        ...

    def release(self, number: str) -> None:
        """Give ``number`` back to the provider."""
        ...


_MAX_ANSWER = 1024 * 1024  # a provider's answer larger than 1 MiB is refused unread


def _money(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ProviderError(f"the provider's {what} {value!r} is not an amount written as text or a whole number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ProviderError(f"the provider's {what} {value!r} is not a decimal amount") from None
    if not amount.is_finite() or amount < 0 or amount > Decimal("999999.99"):
        raise ProviderError(f"the provider's {what} {value!r} is not an amount from 0 to 999999.99")
    return amount


def _number(value: Any) -> str:
    if not isinstance(value, str):
        raise ProviderError(f"the provider's number {value!r} is not text")
    try:
        return parse_number(value).number
    except NumberRefused as exc:
        raise ProviderError(f"the provider's number {value!r} is refused: {exc}") from None


class HttpDidProvider:
    """A provider behind a JSON HTTP API (urllib from the standard library: no extra dependency).

    ``GET {url}/numbers?country=US&area_code=212&limit=5`` -> ``{"numbers": [{"number": "+12125550100",
    "monthly_cost": "0.50"}]}``; ``POST {url}/orders`` with ``{"number": ...}`` -> ``{"number": ...,
    "monthly_cost": ..., "order_id": ...}``; ``DELETE {url}/numbers/{number}`` -> 2xx. The token is
    sent as ``Authorization: Bearer``; any other answer is a refusal, its ``error`` text quoted."""

    name = "http"

    def __init__(self, url: str, token: str = "", timeout_seconds: float = 10) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_seconds = timeout_seconds

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                raw = response.read(_MAX_ANSWER + 1)
        except urllib.error.HTTPError as exc:
            raise ProviderError(f"the provider refused {method} {path}: HTTP {exc.code}{_reason(exc)}") from None
        except TimeoutError:
            raise ProviderError(
                f"the provider did not answer {method} {path} within {self.timeout_seconds:g} s"
            ) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise ProviderError(
                    f"the provider did not answer {method} {path} within {self.timeout_seconds:g} s"
                ) from None
            raise ProviderError(f"the provider cannot be reached ({exc.reason})") from None
        except (OSError, ValueError) as exc:  # connection reset, a broken answer
            raise ProviderError(f"the provider's answer to {method} {path} broke off ({exc})") from None
        if len(raw) > _MAX_ANSWER:
            raise ProviderError(f"the provider's answer to {method} {path} is over 1 MiB")
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ProviderError(f"the provider's answer to {method} {path} is not JSON") from None

    def search(self, country: str, area_code: str | None, limit: int) -> list[OfferedNumber]:
        query = {"country": country, "limit": str(limit)}
        if area_code:
            query["area_code"] = area_code
        answer = self._call("GET", "/numbers?" + urllib.parse.urlencode(query))
        items = answer.get("numbers") if isinstance(answer, dict) else None
        if not isinstance(items, list):
            raise ProviderError("the provider's search answer has no list of numbers")
        offers = []
        for item in items[:limit]:
            if not isinstance(item, dict):
                raise ProviderError(f"the provider's offer {item!r} is not an object")
            offers.append(
                OfferedNumber(_number(item.get("number")), _money(item.get("monthly_cost", "0"), "monthly cost"))
            )
        return offers

    def order(self, number: str) -> OrderedNumber:
        answer = self._call("POST", "/orders", {"number": "+" + number})
        if not isinstance(answer, dict):
            raise ProviderError("the provider's order answer is not an object")
        got = _number(answer.get("number"))
        if got != number:
            with contextlib.suppress(ProviderError):  # not what was ordered: give it back
                self.release(got)
            raise ProviderError(f"the provider sold {got} instead of the ordered {number}")
        order_id = answer.get("order_id", "")
        return OrderedNumber(got, _money(answer.get("monthly_cost", "0"), "monthly cost"), str(order_id)[:100])

    def release(self, number: str) -> None:
        self._call("DELETE", "/numbers/" + urllib.parse.quote("+" + number))


def _reason(exc: urllib.error.HTTPError) -> str:
    """The provider's own ``error`` text, when it sent one (at most 200 characters)."""
    try:
        body = json.loads(exc.read(4096) or b"{}")
    except (ValueError, OSError):
        return ""
    said = body.get("error") if isinstance(body, dict) else None
    return f" ({str(said)[:200]})" if said else ""


def configured_provider() -> DidProvider | None:
    """The provider of TARIFA_DID_PROVIDER_URL, or ``None`` when none is configured."""
    from tarifa import config

    settings = config.did_provider()
    if settings is None:
        return None
    return HttpDidProvider(settings.url, settings.token, settings.timeout_seconds)


__all__ = ["DidProvider", "HttpDidProvider", "OfferedNumber", "OrderedNumber", "ProviderError", "configured_provider"]
