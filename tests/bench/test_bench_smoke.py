"""Every benchmark script runs at a tiny size, so that a change that breaks one fails the suite.

These check that each script still runs to the end and that its own correctness checks hold
(costs equal to the reference, balances equal to the ledger, no failed request); the speed
figures they print are not judged here (speed targets live in bench/, DESIGN conventions).
`make bench` runs them at full size.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.databases import MigratedTemplate

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _migrated_sqlite(sqlite_template: MigratedTemplate, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scripts' new SQLite databases start as copies of the session's migrated template
    (BENCH_SQLITE_TEMPLATE): their ``migrate`` then has nothing to do, instead of 8-16 s of CPU each."""
    monkeypatch.setenv("BENCH_SQLITE_TEMPLATE", str(sqlite_template.sqlite_file))


def _bench(script: str, *args: str, timeout: int = 300) -> str:
    env = dict(os.environ)
    env.pop("TARIFA_DATABASE_URL", None)  # each script makes its own database
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{script} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_rating_bench_runs_and_agrees_with_the_reference() -> None:
    out = _bench("rating.py", "--cdrs", "2000", "--prefixes", "200", "--sql-sample", "100", "--ref-sample", "500")
    assert re.search(r"SQL costs vs tarifa rate output on 100 rows: 0 differ", out), out
    assert re.search(r"reference costs vs tarifa rate output on 500 rows: 0 differ", out), out
    assert re.search(r"\(b\) tarifa rate end to end .*: 2,000 CDRs", out), out


def test_deck_import_bench_runs() -> None:
    out = _bench("deck_import.py", "--rows", "300")
    assert re.search(r"first import: .* 300 added", out), out
    assert re.search(r"nothing changed: .* 300 unchanged", out), out
    assert re.search(r"every price changed: .* 300 changed \(300 old version\(s\) end-dated\)", out), out


def test_ingest_bench_runs_and_balances_equal_the_ledger() -> None:
    out = _bench("ingest.py", "--cdrs", "2000", "--accounts", "20", "--batch", "500", "--only", "sqlite")
    lines = [line for line in out.splitlines() if "CDRs in" in line]
    assert len(lines) == 2, out
    assert all("balances equal ledger: True" in line for line in lines), out


def test_authorize_bench_runs_without_errors() -> None:
    out = _bench(
        "authorize.py",
        "--seconds",
        "1",
        "--workers",
        "1",
        "--connections",
        "1",
        "--warmup",
        "1",  # one warm-up round (3 s) instead of two to four
        "--only",
        "sqlite",
        "--client",
        "python",
        "--accounts",
        "20",
        "--prefixes",
        "200",
    )
    rows = [line.split() for line in out.splitlines() if line.startswith("sqlite ")]
    assert rows, out
    # columns: database workers conns auth/s p50 p90 p99 p99.9 allowed requests reserved errors ...
    for row in rows:
        assert int(row[3].replace(",", "")) > 0, out
        assert row[8] == "100.00%", out
        assert row[11] == "0", out


def test_recurring_bench_runs_and_posts_exactly_the_charges_due() -> None:
    out = _bench("recurring.py", "--services", "500", "--only", "sqlite")
    assert re.search(r"sqlite: 500 services of 50 customers", out), out
    assert re.search(r"month-end run Dec 1: [\d,]+ charges", out), out
    assert "second run: 0 posted" in out and ": agree; balances equal ledger: True" in out, out


def test_invoice_bench_runs_and_invoices_equal_the_ledger() -> None:
    out = _bench("invoice.py", "--customers", "30", "--cdrs", "3000", "--pdf")
    assert re.search(r"invoice run with its PDFs: 30 customers, 3,000 CDRs -> 30 invoices", out), out
    assert re.search(r"PDFs: 30 rendered and stored by this process in [\d.]+ s \([\d,.]+ PDFs/s; [\d.]+ s CPU", out), (
        out
    )
    assert "PDFs stored: 30 of 30 invoices" in out, out
    assert "minus the invoiced Transactions" in out and ": True" in out.split("sum of invoices")[1], out
    assert "numbers gapless per issuer (2 issuers): True" in out, out
    assert "second run: 0 invoices issued, 30 already invoiced, 0 new Transactions" in out, out


def test_notices_bench_queues_each_low_balance_once_a_day() -> None:
    out = _bench("notices.py", "--customers", "300", "--only", "sqlite")
    assert re.search(r"first check: 9 notices queued in .* same day again: 0 in .* next day: 9 in", out), out
    assert "below threshold 9: agree" in out, out


def test_portal_history_bench_runs_and_deep_pages_follow_their_cursor() -> None:
    out = _bench("portal_history.py", "--cdrs", "600", "--others", "100")
    assert '"middle_page_ms"' in out and '"totals_31_days_calls"' in out


def test_api_bench_runs_every_page_through_the_server() -> None:
    out = _bench("api.py", "--customers", "300", "--cdrs", "2000", "--resellers", "5", "--repeat", "2")
    rows = [line for line in out.splitlines() if re.match(r"(operator|reseller) ", line)]
    assert len(rows) >= 15 and all(" 50 " in row or " ok" in row or "SLOW" in row for row in rows)
    assert "worst p95:" in out
