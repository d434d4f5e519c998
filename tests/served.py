"""Servers on loopback for the tests: a real ``tarifa serve`` on a free port (started, waited for
until its health endpoint answers, stopped afterwards) and the fakes of outside services
(``loopback_http``: a card gateway, a DID provider)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def tarifa_serve(env: dict[str, str], log: Path, *args: str, ready_within: float = 60) -> Iterator[int]:
    """``tarifa serve --host 127.0.0.1 --port PORT *args`` with ``env``, its output in ``log``; yields
    PORT once ``/api/v1/health`` answers 200 (fails with the log if the server ends or never answers),
    and stops the server's whole process group at the end."""
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tarifa.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + ready_within
        while True:
            assert process.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:  # refused while starting, or an HTTPError (503) before migrations are seen
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (the time-out tests) is expected: no traceback on stderr."""


@contextlib.contextmanager
def loopback_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` (a fake of some outside service) in threads on a free loopback port for the
    duration of the block; yields its base URL ``http://127.0.0.1:PORT``."""
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)  # float-ok: s
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
