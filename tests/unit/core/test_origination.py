"""The origination rules (core.origination), without a database."""

from decimal import Decimal

import pytest

from tarifa.core.classify import is_toll_free
from tarifa.core.origination import (
    LataCategory,
    LataEntry,
    LataRates,
    LataTable,
    OriginationPlan,
    OriginRate,
    PenaltyMode,
    ShortCallPolicy,
    lata_category,
    longest_prefix,
    origination_rate,
    out_payment,
    parse_lata_csv,
    payphone_surcharge,
    short_call_penalty,
)
from tarifa.core.rating import call_cost

D = Decimal
PLAN = OriginationPlan(
    rate=D("0.010"),
    interval_1=30,
    interval_n=6,
    tiers=(
        OriginRate("44", D("0.050")),
        OriginRate("447", D("0.120")),
        OriginRate("1", D("0.008")),
        OriginRate("1", D("0.030"), toll_free=True),
        OriginRate("1212", D("0.025"), toll_free=True),
    ),
    toll_free_rate=D("0.040"),
)
LATA = LataTable(
    {
        "212555": LataEntry("132", "NY"),
        "212556": LataEntry("132", "NY"),
        "518555": LataEntry("140", "NY"),
        "201555": LataEntry("224", "NJ"),
        "914555": LataEntry("132", "CT"),
    }
)
LATA_PLAN = OriginationPlan(
    rate=D("0.010"),
    tiers=(OriginRate("1", D("0.009")),),
    lata=LataRates(D("0.001"), D("0.002"), D("0.004"), D("0.003")),
)


def test_longest_prefix_wins_and_an_unknown_caller_has_no_origin() -> None:
    assert longest_prefix("447700900123", ["44", "447", "4477000"]) == "447"
    assert longest_prefix("33123", ["44", "1"]) is None
    assert longest_prefix("", ["", "1"]) is None


@pytest.mark.parametrize(
    ("caller", "rate", "basis", "prefix"),
    [
        ("442079460000", D("0.050"), "tiered", "44"),
        ("447700900123", D("0.120"), "tiered", "447"),  # the longer prefix wins
        ("12125550000", D("0.008"), "tiered", "1"),  # toll-free rows do not price an ordinary number
        ("33142000000", D("0.010"), "blended", ""),  # no tier: the blended rate
        ("", D("0.010"), "blended", ""),  # withheld caller
    ],
)
def test_tiered_then_blended(caller: str, rate: Decimal, basis: str, prefix: str) -> None:
    chosen = origination_rate(PLAN, caller, "442071234567", toll_free=False)
    assert (chosen.rate, chosen.basis, chosen.prefix) == (rate, basis, prefix)


@pytest.mark.parametrize(
    ("caller", "rate", "prefix"),
    [
        ("12125550000", D("0.025"), "1212"),
        ("13125550000", D("0.030"), "1"),
        ("442079460000", D("0.040"), ""),  # no toll-free origin rate: the plan's toll-free rate
    ],
)
def test_toll_free_numbers_are_billed_by_origin(caller: str, rate: Decimal, prefix: str) -> None:
    chosen = origination_rate(PLAN, caller, "18005550100", toll_free=True)
    assert (chosen.rate, chosen.basis, chosen.prefix) == (rate, "toll-free", prefix)


def test_toll_free_without_a_toll_free_rate_falls_back_to_the_blended_rate() -> None:
    plan = OriginationPlan(rate=D("0.010"))
    assert origination_rate(plan, "12125550000", "18005550100", toll_free=True).rate == D("0.010")


def test_toll_free_comes_from_libphonenumber() -> None:
    assert is_toll_free("18005550100") and is_toll_free("18885550100")
    assert not is_toll_free("12125550100") and not is_toll_free("")


@pytest.mark.parametrize(
    ("caller", "callee", "category"),
    [
        ("212555", "212556", LataCategory.INTRA_LATA_INTRASTATE),
        ("212555", "518555", LataCategory.INTER_LATA_INTRASTATE),
        ("212555", "914555", LataCategory.INTRA_LATA_INTERSTATE),
        ("212555", "201555", LataCategory.INTERSTATE),
    ],
)
def test_lata_categories(caller: str, callee: str, category: LataCategory) -> None:
    assert lata_category(LATA.entries[caller], LATA.entries[callee]) == category


@pytest.mark.parametrize(
    ("caller", "callee", "rate", "basis"),
    [
        ("12125550001", "12125560002", D("0.001"), "intra-LATA intrastate"),
        ("12125550001", "15185550002", D("0.002"), "inter-LATA intrastate"),
        ("12125550001", "19145550002", D("0.003"), "intra-LATA interstate"),
        ("12125550001", "12015550002", D("0.004"), "interstate"),
        ("13105550001", "12125560002", D("0.009"), "tiered"),  # caller's NPA-NXX not in the table
        ("442079460000", "12125560002", D("0.010"), "blended"),  # not NANP
    ],
)
def test_lata_billing_when_both_numbers_are_in_the_table(caller: str, callee: str, rate: Decimal, basis: str) -> None:
    chosen = origination_rate(LATA_PLAN, caller, callee, toll_free=False, lata=LATA)
    assert (chosen.rate, chosen.basis) == (rate, basis)


def test_intra_lata_interstate_defaults_to_the_interstate_rate() -> None:
    plan = OriginationPlan(rate=D("0.010"), lata=LataRates(D("0.001"), D("0.002"), D("0.004")))
    assert origination_rate(plan, "12125550001", "19145550002", toll_free=False, lata=LATA).rate == D("0.004")


def test_a_plan_without_lata_billing_ignores_the_table() -> None:
    assert origination_rate(PLAN, "12125550001", "12125560002", toll_free=False, lata=LATA).basis == "tiered"


def test_lata_table_only_knows_nanp_numbers() -> None:
    assert LATA.find("12125550001") == LataEntry("132", "NY")
    assert LATA.find("2125550001") is None and LATA.find("442125550001") is None


def test_plan_terms_use_the_plan_intervals() -> None:
    terms = PLAN.terms(D("0.060"))
    assert call_cost(terms, 31, 4, "half_up") == D("0.0360")  # 30 + 6 seconds at 0.06/min


def test_payphone_surcharge() -> None:
    plan = OriginationPlan(rate=D("0.01"), payphone_surcharge=D("0.2495"))
    assert payphone_surcharge(plan, "12125550001", ["1212555", "1800"], 2) == D("0.25")
    assert payphone_surcharge(plan, "12125560001", ["1212555"], 2) == D("0.00")
    assert payphone_surcharge(plan, "", ["1212555"], 2) == D("0.00")
    assert payphone_surcharge(OriginationPlan(rate=D("0.01")), "12125550001", ["1212555"], 4) == D("0.0000")


def test_out_payment_uses_the_plan_intervals_and_rounds_once() -> None:
    assert out_payment(D("0.012"), 60, 60, 61, 4) == D("0.0240")  # two minutes billed
    assert out_payment(D("0.012"), 6, 6, 61, 4) == D("0.0132")  # 66 s
    assert out_payment(D("0"), 60, 60, 61, 4) == D("0.0000")
    assert out_payment(D("0.012"), 60, 60, 0, 2) == D("0.00")


@pytest.mark.parametrize(
    ("calls", "short", "mode", "expected"),
    [
        (100, 20, PenaltyMode.PER_CALL, D("0")),  # exactly at the threshold: no penalty
        (100, 21, PenaltyMode.PER_CALL, D("1.05")),  # above: 21 x 0.05
        (100, 21, PenaltyMode.FLAT, D("0.05")),
        (0, 0, PenaltyMode.PER_CALL, D("0")),
        (3, 1, PenaltyMode.PER_CALL, D("0.05")),  # 33.3 % > 20 %
    ],
)
def test_short_call_penalty(calls: int, short: int, mode: PenaltyMode, expected: Decimal) -> None:
    policy = ShortCallPolicy(seconds=6, threshold_percent=D("20"), amount=D("0.05"), mode=mode)
    assert short_call_penalty(policy, calls, short) == expected


def test_an_inactive_short_call_policy_charges_nothing() -> None:
    assert short_call_penalty(ShortCallPolicy(0, D("0"), D("1")), 10, 10) == 0
    assert short_call_penalty(ShortCallPolicy(6, D("0"), D("0")), 10, 10) == 0


def test_parse_lata_csv_accepts_a_good_file() -> None:
    rows, problems = parse_lata_csv("npa_nxx,lata,state\n212555,132,ny\n 518555 , 140 , NY \n\n", "l.csv")
    assert problems == []
    assert [(r.npa_nxx, r.lata, r.state) for r in rows] == [("212555", "132", "NY"), ("518555", "140", "NY")]


def test_parse_lata_csv_names_file_row_field_and_rule_for_every_bad_row() -> None:
    text = "state,npa_nxx,lata\nNY,212555,132\nNY,21255,132\nNY,112555,132\nNY,212555,132\nXYZ,213555,1a\n"
    rows, problems = parse_lata_csv(text, "bad.csv")
    found = [(p.file, p.row, p.field, p.value) for p in problems]
    assert [r.npa_nxx for r in rows] == ["212555"]  # the good rows are read (and not imported: the caller's rule)
    assert found == [
        ("bad.csv", 3, "npa_nxx", "21255"),
        ("bad.csv", 4, "npa_nxx", "112555"),
        ("bad.csv", 5, "npa_nxx", "212555"),
        ("bad.csv", 6, "lata", "1a"),
        ("bad.csv", 6, "state", "XYZ"),
    ]
    assert "repeats row 2" in problems[2].rule
    assert str(problems[0]).startswith("bad.csv, row 3, field npa_nxx: '21255' is refused: must be six digits")


def test_parse_lata_csv_refuses_a_file_without_the_columns() -> None:
    assert [p.field for p in parse_lata_csv("npa,lata\n212555,132\n", "x.csv")[1]] == ["header"]
    assert [p.field for p in parse_lata_csv("", "x.csv")[1]] == ["header"]
