"""docs/api.md's curl commands, run as written against a real `tarifa serve` on a loopback port."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import run_tarifa

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served_api(tmp_path_factory, module_database_url):  # type: ignore[no-untyped-def]
    """A migrated database of its own (a copy of the session's template), an operator token, and
    `tarifa serve` on a free port."""
    tmp = tmp_path_factory.mktemp("api-docs")
    env = dict(os.environ, TARIFA_VAR_DIR=str(tmp), TARIFA_DATABASE_URL=module_database_url)
    made = run_tarifa(env, "token", "docs", "--operator", "--scope", "full")
    assert made.returncode == 0, made.stderr
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tarifa.cli", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/api/v1/health", timeout=5):
                    break
            except OSError:
                time.sleep(0.2)
        yield {"url": url, "token": made.stdout.strip()}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=15)


def test_the_documented_curl_commands_work(served_api) -> None:
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 6 and all("curl" in b for b in blocks)
    script = "set -euo pipefail\n" + "\n".join(blocks) + '\necho "CUSTOMER=$CUSTOMER"\n'
    env = dict(os.environ, TARIFA_URL=served_api["url"], TOKEN=served_api["token"])
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Bob's Bakery" in done.stdout  # the page walk listed the customer
    assert re.search(r"CUSTOMER=\d+", done.stdout)
    assert re.search(r" token docs \(trf_\w*…\) deactivate", done.stdout)  # the audit log said who closed it
