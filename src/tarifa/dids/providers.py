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
import http.client
import json
import reprlib
import socket
import threading
import time
import urllib.parse
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


_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlist, _SHOWN.maxdict = 2, 80, 80, 4, 4


def _shown(value: Any) -> str:
    """A provider's value, shortened (and never deeper than two levels) for a message."""
    return _SHOWN.repr(value)


def _money(value: Any, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ProviderError(f"the provider's {what} {_shown(value)} is not an amount written as text or a whole number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ProviderError(f"the provider's {what} {_shown(value)} is not a decimal amount") from None
    if not amount.is_finite() or amount < 0 or amount > Decimal("999999.99"):
        raise ProviderError(f"the provider's {what} {_shown(value)} is not an amount from 0 to 999999.99")
    return amount


def _number(value: Any) -> str:
    if not isinstance(value, str):
        raise ProviderError(f"the provider's number {_shown(value)} is not text")
    try:
        return parse_number(value).number
    except NumberRefused as exc:
        raise ProviderError(f"the provider's number {_shown(value)} is refused: {exc}") from None


class HttpDidProvider:
    """A provider behind a JSON HTTP API (urllib from the standard library: no extra dependency).

    ``GET {url}/numbers?country=US&area_code=212&limit=5`` -> ``{"numbers": [{"number": "+12125550100",
    "monthly_cost": "0.50"}]}``; ``POST {url}/orders`` with ``{"number": ...}`` -> ``{"number": ...,
    "monthly_cost": ..., "order_id": ...}``; ``DELETE {url}/numbers/{number}`` -> 2xx. The token is
    sent as ``Authorization: Bearer``; any other answer is a refusal, its ``error`` text quoted."""

    name = "http"

    def __init__(self, url: str, token: str = "", timeout_seconds: float = 10) -> None:  # float-ok: seconds
        self.url = url.rstrip("/")
        self.token = token
        self.timeout_seconds = timeout_seconds

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request, bounded as a whole by ``timeout_seconds`` (connecting, sending, the headers
        and the body: a provider trickling its answer a byte at a time is cut at the deadline, as a
        socket time-out bounds each read only). Redirects are never followed: the token would go to
        whatever host the provider names."""
        data = json.dumps(body).encode() if body is not None else None
        target = urllib.parse.urlsplit(self.url + path)
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        kind = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        connection = kind(target.hostname or "", target.port, timeout=self.timeout_seconds)
        late = ProviderError(f"the provider did not answer {method} {path} within {self.timeout_seconds:g} s")
        deadline = time.monotonic() + self.timeout_seconds
        cut = threading.Event()

        held: list[socket.socket] = []  # the socket itself: http.client drops its own reference once
        # a response that closes the connection is under way, but the response still reads from it

        def cut_off() -> None:  # the deadline passed: end the call whatever it is waiting for
            cut.set()
            for sock in [*held, connection.sock]:  # connection.sock: a TLS handshake under way
                with contextlib.suppress(OSError, AttributeError):
                    sock.shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(self.timeout_seconds, cut_off)
        timer.daemon = True
        location, said, raw = "", "", b""
        try:
            timer.start()
            try:
                connection.connect()
                held.append(connection.sock)
                connection.request(
                    method, urllib.parse.urlunsplit(("", "", target.path, target.query, "")), data, headers
                )
                response = connection.getresponse()
                status = response.status
                if 200 <= status < 300:
                    raw = response.read(_MAX_ANSWER + 1)
                elif 300 <= status < 400:
                    location = response.getheader("Location", "") or ""
                else:
                    said = _reason(response.read(4096))
            except (OSError, http.client.HTTPException, ValueError) as exc:
                if cut.is_set() or time.monotonic() >= deadline or isinstance(exc, TimeoutError):
                    raise late from None
                if not held:
                    raise ProviderError(f"the provider cannot be reached ({exc})") from None
                raise ProviderError(f"the provider's answer to {method} {path} broke off ({exc})") from None
            if cut.is_set() or time.monotonic() >= deadline:
                raise late  # cut off: what was read is not the whole answer
        finally:
            timer.cancel()
            connection.close()
        if 300 <= status < 400:
            elsewhere = urllib.parse.urlsplit(location).netloc or target.netloc
            raise ProviderError(
                f"the provider answered {method} {path} with a redirect (HTTP {status} to {elsewhere[:100]!r}); "
                "redirects are not followed, so the token never goes to another address: "
                "set TARIFA_DID_PROVIDER_URL to the provider's final address"
            )
        if not 200 <= status < 300:
            raise ProviderError(f"the provider refused {method} {path}: HTTP {status}{said}")
        if len(raw) > _MAX_ANSWER:
            raise ProviderError(f"the provider's answer to {method} {path} is over 1 MiB")
        if not raw:
            return None
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            raise ProviderError(f"the provider's answer to {method} {path} is not JSON Tarifa can read") from None

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
                raise ProviderError(f"the provider's offer {_shown(item)} is not an object")
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


def _reason(body: bytes) -> str:
    """The provider's own ``error`` text, when it sent one (at most 200 characters)."""
    try:
        answer = json.loads(body or b"{}")
    except (ValueError, RecursionError):
        return ""
    said = answer.get("error") if isinstance(answer, dict) else None
    return f" ({str(said)[:200]})" if said else ""


def configured_provider() -> DidProvider | None:
    """The provider of TARIFA_DID_PROVIDER_URL, or ``None`` when none is configured."""
    from tarifa import config

    settings = config.did_provider()
    if settings is None:
        return None
    return HttpDidProvider(settings.url, settings.token, settings.timeout_seconds)


__all__ = ["DidProvider", "HttpDidProvider", "OfferedNumber", "OrderedNumber", "ProviderError", "configured_provider"]
