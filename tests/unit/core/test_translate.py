"""Translation rules: a replacement that does not fit its pattern is named, and skipped at run time."""

from __future__ import annotations

import pytest

from tarifa.core.translate import Rule, apply, problem

BAD = [r"\2", "\\", r"\q", r"\g<1", r"\g<x>", r"\10", r"\g<-1>"]


@pytest.mark.parametrize("replace", BAD)
def test_a_replacement_that_does_not_fit_the_pattern_is_a_problem(replace: str) -> None:
    why = problem(r"^(\d+)$", replace)
    assert why and "not a valid replacement" in why and "1 group" in why


@pytest.mark.parametrize("replace", [r"\1", r"\g<0>", r"00\1", r"\g<1>0", "", "441234567890"])
def test_a_replacement_that_fits_is_no_problem(replace: str) -> None:
    assert problem(r"^(\d+)$", replace) is None


def test_a_broken_pattern_is_a_problem() -> None:
    assert "not a valid regular expression" in (problem("^(", "x") or "")


@pytest.mark.parametrize("replace", BAD)
def test_apply_skips_a_broken_rule_and_goes_on_with_the_next(replace: str) -> None:
    rules = [Rule("destination", r"^9(\d+)$", replace), Rule("destination", "^(.*)$", r"00\1")]
    notes: list[str] = []
    assert apply(rules, "destination", "912125550123", "912125550123", notes) == "00912125550123"
    assert len(notes) == 1 and "skipped" in notes[0] and replace in notes[0]
    assert apply(rules, "destination", "912125550123", "912125550123") == "00912125550123"  # no notes: same answer


def test_apply_skips_a_rule_whose_pattern_does_not_compile() -> None:
    assert apply([Rule("source", "^(", "x")], "source", "123", "44") == "123"
