"""Tests for tarifa.core.worlddeck (pure: no Django, no database)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import subprocess
import sys
from decimal import Decimal
from statistics import median

import phonenumbers
import pytest
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE
from phonenumbers.carrierdata import CARRIER_DATA

from tarifa.core import worlddeck
from tarifa.core.worlddeck import (
    KINDS,
    Destination,
    country_code_of,
    price_for,
    region_name,
    world_destinations,
)

MAJOR_CODES = (1, 44, 49, 33, 7, 86, 91)
VENDOR = {"seed": "vendor-A", "markdown": Decimal("0.85")}


@pytest.fixture(scope="module")
def deck() -> list[Destination]:
    return world_destinations()


@pytest.fixture(scope="module")
def by_prefix(deck) -> dict[str, Destination]:
    return {d.prefix: d for d in deck}


@pytest.fixture(scope="module")
def sell(deck) -> list[dict]:
    return [price_for(d) for d in deck]


@pytest.fixture(scope="module")
def vendor(deck) -> list[dict]:
    return [price_for(d, **VENDOR) for d in deck]


def _deck_digest(deck) -> str:
    h = hashlib.sha256()
    for d in deck:
        h.update(f"{d.prefix}|{d.name}|{d.region}|{d.kind}\n".encode())
    return h.hexdigest()


# ---------------------------------------------------------------- destinations


def test_size(deck):
    assert 1_000 <= len(deck) <= 6_500


def test_prefixes_are_digits_unique_and_sorted(deck):
    prefixes = [d.prefix for d in deck]
    for p in prefixes:
        assert 1 <= len(p) <= 15 and p.isascii() and p.isdigit(), p
    assert len(set(prefixes)) == len(prefixes)
    assert prefixes == sorted(prefixes)


def test_fields_are_consistent(deck):
    for d in deck:
        assert d.kind in KINDS
        assert d.name
        assert country_code_of(d.prefix) is not None, d
        if d.kind == "nongeo":
            assert d.region == ""
        else:
            assert d.region in phonenumbers.SUPPORTED_REGIONS, d
            assert d.name.startswith(region_name(d.region)), d


def test_one_entry_per_calling_code(by_prefix):
    for cc in COUNTRY_CODE_TO_REGION_CODE:
        d = by_prefix[str(cc)]
        main = phonenumbers.region_code_for_country_code(cc)
        if main == "001":
            assert (d.kind, d.region) == ("nongeo", "")
        else:
            assert (d.kind, d.region) == ("fixed", main)
            assert d.name == region_name(main)


def test_major_codes_named_like_phonenumbers_geocoder(by_prefix):
    from phonenumbers import geocoder

    for cc in MAJOR_CODES:
        d = by_prefix[str(cc)]
        region = phonenumbers.region_code_for_country_code(cc)
        assert d.region == region
        example = phonenumbers.example_number(region)
        assert d.name == geocoder.country_name_for_number(example, "en")
    assert by_prefix["1"].region == "US"
    assert by_prefix["44"].name == "United Kingdom"
    assert by_prefix["49"].name == "Germany"


def test_shared_code_regions_get_own_rows(by_prefix):
    # Dependent regions with explicit leading digits in the metadata.
    md = phonenumbers.PhoneMetadata.metadata_for_region("BS")
    bahamas = by_prefix["1" + md.leading_digits]
    assert bahamas.region == "BS" and bahamas.kind == "fixed"
    kz = phonenumbers.PhoneMetadata.metadata_for_region("KZ")
    assert by_prefix["7" + kz.leading_digits].region == "KZ"


def test_gb_mobile_prefixes(deck):
    gb = [d for d in deck if d.region == "GB" and d.kind == "mobile"]
    assert gb
    assert all(d.prefix.startswith("447") for d in gb)
    assert all(d.name.startswith(region_name("GB") + " Mobile - ") for d in gb)


def test_mobile_names_come_from_carrier_data(deck):
    # Every carrier-named row covers at least one carrier prefix with that
    # English carrier name.
    known = set()
    for raw, names in CARRIER_DATA.items():
        en = names.get("en", "").strip()
        if en:
            known.update((raw[:i], en) for i in range(1, len(raw) + 1))
    carrier_rows = [d for d in deck if " - " in d.name]
    assert len(carrier_rows) > 1_000
    for d in carrier_rows:
        carrier = d.name.split(" - ", 1)[1]
        assert (d.prefix, carrier) in known, d


def test_no_mobile_row_replaces_a_country_code(deck):
    codes = {str(cc) for cc in COUNTRY_CODE_TO_REGION_CODE}
    assert all(d.kind != "mobile" for d in deck if d.prefix in codes)


def test_deterministic(deck):
    again = world_destinations()
    assert again == deck
    assert again is not deck  # callers get their own list
    worlddeck._world_destinations.cache_clear()
    assert world_destinations() == deck


def test_deterministic_across_processes(deck):
    code = (
        "import hashlib;from tarifa.core.worlddeck import world_destinations as w;"
        "h=hashlib.sha256()\n"
        "for d in w(): h.update(f'{d.prefix}|{d.name}|{d.region}|{d.kind}\\n'.encode())\n"
        "print(h.hexdigest())"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345", PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == _deck_digest(deck)


def test_destination_validation():
    with pytest.raises(ValueError):
        Destination("44a", "x", "GB", "fixed")
    with pytest.raises(ValueError):
        Destination("1" * 16, "x", "US", "fixed")
    with pytest.raises(ValueError):
        Destination("44", "x", "GB", "landline")
    d = Destination("44", "United Kingdom", "GB", "fixed")
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.prefix = "45"  # type: ignore[misc]


def test_expand_leading_digits():
    expand = worlddeck._expand_leading_digits
    assert expand("74576|(?:16|7[56])24") == ["1624", "74576", "7524", "7624"]
    assert expand("8001|8[024]9") == ["8001", "809", "829", "849"]
    assert expand("7\\d") is None


# ---------------------------------------------------------------------- prices


def _decimals(price: dict) -> list[Decimal]:
    return [price["price_1"], price["price_n"], price["connect_fee"]]


@pytest.mark.parametrize("which", ["sell", "vendor"])
def test_prices_are_small_non_negative_decimals(which, sell, vendor):
    for price in sell if which == "sell" else vendor:
        for value in _decimals(price):
            assert isinstance(value, Decimal)
            assert value >= 0
            assert value.as_tuple().exponent >= -4, value
        assert price["price_1"] == price["price_n"] > 0
        assert isinstance(price["interval_1"], int) and isinstance(price["interval_n"], int)
        assert (price["interval_1"], price["interval_n"]) in {(60, 60), (30, 6), (1, 1)}


def test_price_ranges(deck, sell):
    nanp = [p["price_1"] for d, p in zip(deck, sell, strict=True) if d.region in ("US", "CA")]
    assert nanp and all(Decimal("0.005") <= x <= Decimal("0.025") for x in nanp)
    fixed = [
        p["price_1"] for d, p in zip(deck, sell, strict=True) if d.kind == "fixed" and d.region not in ("US", "CA")
    ]
    mobile = [
        p["price_1"] for d, p in zip(deck, sell, strict=True) if d.kind == "mobile" and d.region not in ("US", "CA")
    ]
    in_fixed = sum(Decimal("0.0045") <= x <= Decimal("0.085") for x in fixed)
    in_mobile = sum(Decimal("0.018") <= x <= Decimal("0.37") for x in mobile)
    assert in_fixed >= 0.9 * len(fixed)
    assert in_mobile >= 0.9 * len(mobile)
    assert median(fixed) < median(mobile)


def test_intervals_and_connect_fees(deck, sell):
    assert sell[[d.prefix for d in deck].index("1")]["interval_1"] == 1
    for d, p in zip(deck, sell, strict=True):
        if d.prefix.startswith("1"):
            assert (p["interval_1"], p["interval_n"]) == (1, 1)
    kinds = [(p["interval_1"], p["interval_n"]) for p in sell]
    assert kinds.count((60, 60)) > len(kinds) / 2
    assert (30, 6) in kinds
    assert sum(p["connect_fee"] == 0 for p in sell) > 0.9 * len(sell)


def test_prices_deterministic(deck, sell):
    state = random.getstate()
    assert [price_for(d) for d in deck] == sell
    assert random.getstate() == state  # no global random state involved


def test_vendor_prices_mostly_cheaper_with_some_loss_routes(deck, sell, vendor):
    pairs = [(s["price_1"], v["price_1"]) for s, v in zip(sell, vendor, strict=True)]
    cheaper = sum(v < s for s, v in pairs)
    loss = sum(v > s for s, v in pairs)
    differ = sum(v != s for s, v in pairs)
    assert differ > 0.95 * len(pairs)
    assert cheaper > 0.85 * len(pairs)
    assert 0 < loss < 0.15 * len(pairs)


def test_markdown_lowers_price_for_same_seed(deck):
    for d in deck[::25]:
        full = price_for(d, seed="vendor-A")["price_1"]
        marked = price_for(d, **VENDOR)["price_1"]
        assert marked <= full
        if full >= Decimal("0.01"):
            assert marked < full


def test_vendors_differ_from_each_other(deck):
    a = [price_for(d, **VENDOR)["price_1"] for d in deck[:200]]
    b = [price_for(d, seed="vendor-B", markdown=Decimal("0.85"))["price_1"] for d in deck[:200]]
    assert sum(x != y for x, y in zip(a, b, strict=True)) > 150


def test_markdown_rejects_float(by_prefix):
    with pytest.raises(TypeError):
        price_for(by_prefix["44"], seed="vendor-A", markdown=0.85)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        price_for(by_prefix["44"], markdown=Decimal("0"))
