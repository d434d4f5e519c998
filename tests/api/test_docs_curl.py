"""docs/api.md's curl commands, run as written against a real `tarifa serve` on a loopback port."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_tarifa
from tests.served import tarifa_serve

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


@pytest.fixture(scope="module")
def served_api(tmp_path_factory, module_database_url):  # type: ignore[no-untyped-def]
    """A migrated database of its own (a copy of the session's template), an operator token, and
    `tarifa serve` on a free port."""
    tmp = tmp_path_factory.mktemp("api-docs")
    env = dict(os.environ, TARIFA_VAR_DIR=str(tmp), TARIFA_DATABASE_URL=module_database_url)
    made = run_tarifa(env, "token", "docs", "--operator", "--scope", "full")
    assert made.returncode == 0, made.stderr
    with tarifa_serve(env, tmp / "server.log", "--workers", "1") as port:
        yield {"url": f"http://127.0.0.1:{port}", "token": made.stdout.strip()}


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
