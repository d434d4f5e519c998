"""As a new operator would (issue 11 item 6): ``tarifa demo`` twice, then a prepaid demo
customer's call is allowed by ``tarifa call simulate``, and money added with ``tarifa payment add``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.conftest import run_tarifa

pytestmark = pytest.mark.django_db


def test_demo_then_a_prepaid_call_is_allowed_and_money_can_be_added(tmp_path: Path, migrated_database_url: str) -> None:
    env = dict(os.environ, TARIFA_VAR_DIR=str(tmp_path), TARIFA_DATABASE_URL=migrated_database_url)
    first = run_tarifa(env, "demo")
    assert first.returncode == 0, first.stderr
    second = run_tarifa(env, "demo")
    assert second.returncode == 0 and second.stdout == first.stdout  # idempotent
    # hooli: a prepaid US customer of a reseller; its first account may call abroad from pop-nyc
    for callee in ("2125550100", "011442079460958"):
        done = run_tarifa(
            env, "call", "simulate", "--account", "hooli-sip_user-1", "--callee", callee, "--pop", "pop-nyc", "--json"
        )
        assert done.returncode == 0, done.stderr
        decision = json.loads(done.stdout)
        assert decision["allowed"], decision["trace"]
    paid = run_tarifa(env, "payment", "add", "hooli", "25", "--reference", "E2E-1")
    # the PDF's money formatter, with the customer's billing decimals (2 to 6 in the demo)
    assert paid.returncode == 0 and re.search(r"payment \+\$25\.00+ posted", paid.stdout), (paid.stdout, paid.stderr)
    again = run_tarifa(env, "payment", "add", "hooli", "25", "--reference", "E2E-1")
    assert again.returncode == 2 and "Reference 'E2E-1' is refused: already used" in again.stderr
    assert "Traceback" not in again.stderr
