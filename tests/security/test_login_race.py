"""Log-in throttling under concurrent wrong passwords (issue 12, low): several processes, each with
several threads, try wrong passwords for one user name at the same instant; no more tries than the
limit may reach the password check -- the check and the count are one step in the database, on
SQLite and on PostgreSQL alike."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import run_tarifa

ROOT = Path(__file__).resolve().parent.parent.parent
PROCESSES, THREADS = 3, 4
LIMIT = 5  # TARIFA_LOGIN_FAILURES_PER_USER's default

TRY = """
import json, sys, threading, time
import django
django.setup()
from django.db import connections
from django.test import RequestFactory
from tarifa.throttle.forms import AdminLoginForm

start, process = float(sys.argv[1]), int(sys.argv[2])
codes = []

def guess(n):
    try:
        request = RequestFactory().post("/admin/login/", REMOTE_ADDR=f"198.51.{process}.{n}")
        form = AdminLoginForm(request, data={"username": "admin", "password": f"Wrong-guess-{process}-{n}!"})
        time.sleep(max(0.0, start - time.time()))
        form.is_valid()
        codes.append([error.code for error in form.errors.as_data().get("__all__", [])])
    except Exception as exc:
        codes.append([repr(exc)])
    finally:
        connections.close_all()

threads = [threading.Thread(target=guess, args=(n,)) for n in range(int(sys.argv[3]))]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(codes))
"""


def test_concurrent_wrong_passwords_get_no_more_tries_than_the_limit(migrated_database_url, tmp_path) -> None:
    env = {
        **os.environ,
        "TARIFA_DATABASE_URL": migrated_database_url,
        "TARIFA_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_SETTINGS_MODULE": "tarifa.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    made = run_tarifa(env, "createadmin", "--password", "Right-Passw0rd!")
    assert made.returncode == 0, made.stderr
    start = time.time() + 8  # every process has loaded Django by then
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", TRY, str(start), str(p), str(THREADS)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(PROCESSES)
    ]
    codes = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        codes += json.loads(out.strip().splitlines()[-1])
    assert len(codes) == PROCESSES * THREADS
    checked = [c for c in codes if "invalid_login" in c]
    throttled = [c for c in codes if c == ["throttled"]]
    assert len(checked) == LIMIT and len(checked) + len(throttled) == len(codes), codes
