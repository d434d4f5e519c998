"""A real ``tarifa serve`` with the demo data set, for the portal's browser tests and screenshots.

``serving(tmp, database_url, **env)`` migrates a fresh database, loads ``tarifa demo``, issues a
switch token for the demo's ``pop-nyc`` and serves on a free loopback port until the generator is
closed. Recent calls are posted through the API (``post_cdrs``): the demo's own calls are in
January 2026, and the portal shows the last days first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.served import tarifa_serve

ROOT = Path(__file__).resolve().parent.parent
DEMO_PASSWORD = "Demo-pass1"
POP = "pop-nyc"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class PortalServer:
    base: str
    token: str
    env: dict[str, str]
    log: Path

    def post_cdrs(self, cdrs: list[dict[str, Any]]) -> dict[str, Any]:
        """Push CDRs as a switch does (``POST /api/v1/cdrs`` with the switch token)."""
        request = urllib.request.Request(
            f"{self.base}/api/v1/cdrs",
            data=json.dumps(cdrs).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tarifa.cli", *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"tarifa {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def recent_calls(sip_user: str, days: int = 30, now: datetime | None = None) -> list[dict[str, Any]]:
    """A few answered calls a day over the last ``days`` days, from ``sip_user`` (for the chart)."""
    now = now or datetime.now(UTC)
    calls = []
    for day in range(days):
        for n in range(1 + (day * 7) % 4):
            start = now - timedelta(days=day, hours=1 + n)
            calls.append(
                {
                    "call_id": f"recent-{sip_user}-{day}-{n}",
                    "callee": "01133142685300" if n % 2 else "011442079460958",
                    "caller": "12015550123",
                    "start_time": start.isoformat(),
                    "duration": 30 + (day * 37 + n * 53) % 600,
                    "sip_user": sip_user,
                }
            )
    return calls


def serving(tmp: Path, database_url: str, **extra: str) -> Iterator[PortalServer]:
    env = dict(
        os.environ,
        TARIFA_VAR_DIR=str(tmp / "var"),
        TARIFA_DATABASE_URL=database_url,
        TARIFA_ACCESS_LOG="0",
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    env.update(extra)
    (tmp / "var").mkdir(parents=True, exist_ok=True)
    _run(env, "migrate")
    _run(env, "demo")
    token = _run(env, "token", "portal-tests", "--switch", POP).strip().splitlines()[-1]
    log = tmp / "server.log"
    with tarifa_serve(env, log, "--workers", "1") as port:
        yield PortalServer(f"http://127.0.0.1:{port}", token, env, log)
