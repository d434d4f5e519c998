"""A small fake origination provider on loopback, speaking the JSON protocol of
``tarifa.dids.providers.HttpDidProvider``, for the ordering tests.

Its state is plain attributes the tests set and read: the numbers it sells, the orders and
releases it received, and how it misbehaves (refuse orders, answer too slowly, sell another
number, answer nonsense).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.served import loopback_http


class FakeProvider:
    def __init__(self, numbers: list[str], token: str = "tok-123") -> None:
        self.numbers = list(numbers)  # "+12125550100" ...
        self.token = token
        self.orders: list[str] = []
        self.releases: list[str] = []
        self.refuse_orders = False
        self.order_delay = 0.0
        self.sell_instead: str | None = None
        self.search_answer: Any = None  # a raw answer to send instead of the offers
        self.raw_answer: bytes | None = None  # bytes sent as the 200 answer of every call instead
        self.drip_seconds = 0.0  # send an answer one byte at a time, this long apart
        self.redirect_to = ""  # answer every call with a 302 to this URL
        self.authorizations: list[str] = []  # the Authorization header of every call received
        self.url = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                if fake.raw_answer is not None and code < 300:
                    data, code = fake.raw_answer, 200
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if not fake.drip_seconds:
                    self.wfile.write(data)
                    return
                for byte in data:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(fake.drip_seconds)

            def _authorised(self) -> bool:
                fake.authorizations.append(self.headers.get("Authorization", ""))
                if fake.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", fake.redirect_to + self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return False
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    self._send(401, {"error": "bad token"})
                    return False
                return True

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                if fake.search_answer is not None:
                    self._send(200, fake.search_answer)
                    return
                area = query.get("area_code", [""])[0]
                offers = (
                    [n for n in fake.numbers if n.startswith("+1" + area)] if query.get("country") == ["US"] else []
                )
                limit = int(query.get("limit", ["5"])[0])
                self._send(200, {"numbers": [{"number": n, "monthly_cost": "0.50"} for n in offers[:limit]]})

            def do_POST(self) -> None:
                if not self._authorised():
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                number = body["number"]
                fake.orders.append(number)
                if fake.order_delay:
                    time.sleep(fake.order_delay)
                if fake.refuse_orders or number not in fake.numbers:
                    self._send(409, {"error": "number no longer available"})
                    return
                fake.numbers.remove(number)
                self._send(201, {"number": fake.sell_instead or number, "monthly_cost": "0.50", "order_id": "ord-1"})

            def do_DELETE(self) -> None:
                if not self._authorised():
                    return
                fake.releases.append(unquote(urlsplit(self.path).path.rsplit("/", 1)[-1]))
                self._send(204)

        return Handler


@contextmanager
def running(fake: FakeProvider) -> Iterator[FakeProvider]:
    """Serve ``fake`` on 127.0.0.1 on a free port for the duration of the block."""
    with loopback_http(fake.handler()) as base:
        fake.url = f"{base}/v1"
        yield fake
