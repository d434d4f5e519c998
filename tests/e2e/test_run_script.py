"""New-user finding 21: `make run` never started `tarifa worker`, so service charges were never posted
and reservations never expired. Its last step, scripts/run.sh, runs the server and the worker
together and stops both when either stops (or on Ctrl-C)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import tarifa

RUN = Path(__file__).resolve().parents[2] / "scripts" / "run.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _session(sid: int) -> dict[int, str]:
    """The processes of session ``sid`` (pid: command line)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # state, ppid, pgrp, session, ...
        if int(fields[3]) == sid and fields[0] != "Z":
            found[int(entry)] = cmdline.strip()
    return found


@pytest.fixture
def environment(tmp_path: Path, migrated_sqlite_url: str) -> dict[str, str]:
    """A migrated database of its own (a copy of the session's template), a free port, and a `tarifa`
    command that runs the code under test."""
    env = dict(
        os.environ,
        TARIFA_VAR_DIR=str(tmp_path / "var"),
        TARIFA_DATABASE_URL=migrated_sqlite_url,
        TARIFA_LISTEN=f"127.0.0.1:{_free_port()}",
        TARIFA_WORKERS="1",
        PYTHONPATH=str(Path(tarifa.__file__).parents[1]),
    )
    command = tmp_path / "tarifa"
    command.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tarifa.cli "$@"\n')
    command.chmod(0o755)
    env["TEST_TARIFA"] = str(command)
    return env


def _start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(RUN), env["TEST_TARIFA"]],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _stopped(run: subprocess.Popen[str], seconds: float = 30) -> str:
    try:
        return run.communicate(timeout=seconds)[0]
    finally:
        if run.poll() is None or _session(run.pid):
            os.killpg(run.pid, signal.SIGKILL)


def test_run_serves_and_runs_the_worker_and_ctrl_c_stops_both(environment: dict[str, str]) -> None:
    run = _start(environment)
    try:
        url = f"http://{environment['TARIFA_LISTEN']}/api/v1/health"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    assert response.status == 200
                    break
            except (OSError, urllib.error.URLError):
                assert time.monotonic() < deadline and run.poll() is None, "no health answer"
                time.sleep(0.3)
        workers = [cmd for cmd in _session(run.pid).values() if cmd.endswith("tarifa.cli worker")]
        assert len(workers) == 1, _session(run.pid)
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C in the terminal of `make run`
        output = _stopped(run)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 130, output
    assert _session(run.pid) == {}, output  # neither the server (nor its workers) nor the worker is left
    assert "Traceback" not in output, output


def test_when_serve_cannot_start_the_worker_is_stopped_too(environment: dict[str, str]) -> None:
    host, port = environment["TARIFA_LISTEN"].split(":")
    with socket.socket() as taken:
        taken.bind((host, int(port)))
        taken.listen()
        run = _start(environment)
        output = _stopped(run)
    assert run.returncode == 2, output
    assert "address already in use" in output and "tarifa serve ended (exit status 2)" in output, output
    assert _session(run.pid) == {}, output
