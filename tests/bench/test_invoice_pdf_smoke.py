"""bench/invoice_pdf.py runs to the end at a tiny size (its speed figures are not judged here)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_invoice_pdf_bench_runs() -> None:
    env = dict(os.environ)
    env.pop("TARIFA_DATABASE_URL", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "invoice_pdf.py"), "--runs", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"1-page invoice \(12 calls lines, 1 page\(s\), [\d,]+ bytes\): [\d.]+ ms per PDF", done.stdout)
    assert re.search(r"3-page invoice \(110 calls lines, 3 page\(s\), [\d,]+ bytes\): [\d.]+ ms per PDF", done.stdout)
