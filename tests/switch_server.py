"""A real ``tarifa serve`` (granian, ASGI front, 2 workers) on loopback with a small world, and a slow
client, for the attacks on the switch-facing endpoints and on slow bodies (tests/security)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

from tests.conftest import run_tarifa
from tests.databases import MigratedTemplate, copy_sqlite
from tests.served import tarifa_serve

ROOT = Path(__file__).resolve().parent.parent
WORLD = ROOT / "tests" / "e2e" / "authorize_world.py"
PATH = "/api/v1/calls/authorize"
UK = "442079460958"
HOLD = 25.0  # the longest the attackers hold their connections (each test releases them sooner)
PROMPT = 2.0  # an answer that needs no body read comes well within this


@dataclass
class Server:
    port: int
    token: str
    log: Path
    env: dict[str, str]
    spare_token: str  # another switch token of the same POP, for the attackers that have one

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = HOLD,
        chunked: bool = False,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if chunked:
                conn.request(method, path, body=iter([body or b""]), headers=headers or {}, encode_chunked=True)
            else:
                conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def authorize(self, body: dict[str, Any] | bytes, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        return self.request("POST", PATH, raw, headers, **kwargs)


def serving(tmp: Path, template: MigratedTemplate, **extra: str) -> Iterator[Server]:
    """``tarifa serve`` (2 workers, default threads) on a fresh SQLite database with a small world,
    with ``extra`` TARIFA_* settings."""
    assert template.sqlite_file is not None
    env = dict(
        os.environ,
        TARIFA_VAR_DIR=str(tmp),
        TARIFA_DATABASE_URL=copy_sqlite(template.sqlite_file, tmp / "db.sqlite3"),
        TARIFA_ACCESS_LOG="0",
        TARIFA_TRUSTED_PROXIES="1",  # clients named by X-Forwarded-For
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    env.update(extra)
    made = subprocess.run(
        [sys.executable, str(WORLD), "setup"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert made.returncode == 0, made.stderr
    api_token = json.loads(made.stdout.strip().splitlines()[-1])["token"]
    spare = run_tarifa(env, "token", "spare switch", "--switch", "pop-e2e")
    assert spare.returncode == 0, spare.stderr
    log = tmp / "server.log"
    with tarifa_serve(env, log, "--workers", "2") as port:
        s = Server(port, api_token, log, env, spare.stdout.strip().splitlines()[-1])
        for n in range(8):  # every worker has loaded Django and its caches
            assert s.authorize({"call_id": f"warm-{n}", "callee": UK, "sip_user": "warm"})[0] == 200
        yield s


class SlowClient:
    """A connection that sends a request's headers announcing ``length`` bytes of body, then a few
    bytes of it, and then nothing; it keeps what the server answers."""

    def __init__(
        self, port: int, path: str, length: int, token: str | None = None, chunked: bool = False, headers: str = ""
    ) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=HOLD)
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        framing = "Transfer-Encoding: chunked\r\n\r\n5\r\n" if chunked else f"Content-Length: {length}\r\n\r\n"
        self.sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}{headers}Content-Type: application/json\r\n"
            f'{framing}{{"call'.encode()
        )
        self.answer = b""
        self.answered_after: float | None = None
        self.error: OSError | None = None
        self._started = time.monotonic()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                if not self.answer:
                    self.answered_after = time.monotonic() - self._started
                self.answer += chunk
                head, _, body = self.answer.partition(b"\r\n\r\n")
                length = [
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ]
                if length and len(body) >= length[0]:
                    return
        except OSError as exc:
            self.error = exc
            return

    def status(self) -> int | None:
        return int(self.answer.split(b" ")[1]) if self.answer else None

    def document(self) -> dict[str, Any]:
        return json.loads(self.answer.partition(b"\r\n\r\n")[2])

    def wait(self, seconds: float) -> None:
        self._reader.join(timeout=seconds)

    def close(self) -> None:
        """Close the connection for real: shut it down first, since a plain close() while the reader
        thread is blocked in recv() leaves the kernel's socket open (no FIN is sent until that recv
        returns), and the server would go on waiting for a client that has left."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
