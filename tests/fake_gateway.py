"""A small fake card gateway on loopback, speaking the HTTP contract of
``tarifa.billing.gateway.HttpCardGateway`` (docs/payments.md "Adapter contract"), for the payment
tests: it saves methods from one-time details tokens, charges them idempotently, declines or
stalls when told, and writes callbacks signed with its webhook secret.

Its state is plain attributes the tests set and read.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

from tarifa.core.webhooks import SIGNATURE_HEADER, sign
from tests.served import loopback_http

KEY = "sk_test_fake_gateway_key"
SECRET = "whsec_fake_gateway_secret_0123"


class FakeGateway:
    def __init__(self, key: str = KEY, secret: str = SECRET) -> None:
        self.key = key
        self.secret = secret
        self.url = ""
        self.decline = False  # decline every charge
        self.delay_seconds = 0.0  # float-ok: seconds to wait before answering a charge (a time-out test)
        self.confirm_amount: str | None = None  # answer a charge with this amount instead (a lying gateway)
        self.charges: list[dict[str, Any]] = []  # every charge made (idempotent repeats not counted)
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # method, path, headers
        self.bodies: list[bytes] = []
        self._by_key: dict[str, tuple[int, dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}

    # --- callbacks this gateway would send ----------------------------------------------------------
    def event(
        self, charge_id: str, amount: str, currency: str = "USD", kind: str = "charge.succeeded", event_id: str = ""
    ) -> tuple[bytes, dict[str, str]]:
        """A signed callback body and its headers."""
        body = json.dumps(
            {
                "id": event_id or f"evt_{next(self._ids)}",
                "type": kind,
                "data": {"charge": charge_id, "amount": amount, "currency": currency},
            }
        ).encode()
        return body, self.headers(body)

    def headers(self, body: bytes, at: int | None = None, secret: str | None = None) -> dict[str, str]:
        return {SIGNATURE_HEADER: sign(secret or self.secret, int(time.time()) if at is None else at, body)}

    # --- the HTTP server ----------------------------------------------------------------------------
    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                fake.requests.append(("POST", self.path, dict(self.headers.items())))
                fake.bodies.append(raw)
                if self.headers.get("Authorization") != f"Bearer {fake.key}":
                    self._send(401, {"error": "invalid API key"})
                    return
                body = json.loads(raw or b"{}")
                path = self.path.split("?", 1)[0].removeprefix("/v1")
                if path == "/methods":
                    token = str(body.get("details_token", ""))
                    if not token.startswith("tok_"):
                        self._send(400, {"error": "unknown card details token"})
                        return
                    last4 = token[-4:] if token[-4:].isdigit() else "4242"
                    self._send(
                        200,
                        {
                            "token": f"pm_{next(fake._ids)}",
                            "brand": "visa",
                            "last4": last4,
                            "exp_month": 12,
                            "exp_year": 2030,
                        },
                    )
                    return
                if path in ("/charges", "/refunds"):
                    key = self.headers.get("Idempotency-Key", "")
                    with fake._lock:
                        key_lock = fake._key_locks.setdefault(key, threading.Lock())
                    with key_lock:  # a repeat of a request in flight waits for its answer, as gateways do
                        self._charge(path, key, body)
                    return
                self._send(404, {"error": "no such path"})

            def _charge(self, path: str, key: str, body: dict[str, Any]) -> None:
                with fake._lock:
                    if key and key in fake._by_key:
                        code, answer = fake._by_key[key]
                        self._send(code, answer)
                        return
                if fake.delay_seconds:
                    time.sleep(fake.delay_seconds)
                prefix = "ch" if path == "/charges" else "re"
                answer = {
                    "id": f"{prefix}_{next(fake._ids)}",
                    "status": "declined" if fake.decline else "succeeded",
                    "amount": fake.confirm_amount or body.get("amount"),
                    "currency": body.get("currency", "USD"),
                    "message": "card declined: insufficient funds" if fake.decline else "",
                }
                code = 402 if fake.decline else 200
                with fake._lock:
                    if key:
                        fake._by_key[key] = (code, answer)
                    if not fake.decline:
                        fake.charges.append({**answer, "key": key, "method": body.get("method")})
                self._send(code, answer)

        return Handler


@contextmanager
def running(fake: FakeGateway | None = None) -> Iterator[FakeGateway]:
    """Serve ``fake`` on 127.0.0.1 on a free port for the duration of the block."""
    fake = fake or FakeGateway()
    with loopback_http(fake.handler()) as base:
        fake.url = f"{base}/v1"
        yield fake
