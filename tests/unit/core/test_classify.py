"""Destination classes from libphonenumber data (core/classify.py)."""

from __future__ import annotations

import phonenumbers
import pytest

from tarifa.core import classify as cls

CASES = [
    (("011442079460958", "442079460958", "US"), ("international", "GB", "fixed_line")),
    (("18005550123", "18005550123", "US"), ("tollfree", "US", "toll_free")),
    (("18005551212", "18005551212", "US"), ("directory", "US", "directory_555_1212")),  # XXX-555-1212, any NPA
    (("12015550123", "12015550123", "US"), ("domestic", "US", "fixed_line_or_mobile")),
    (("14165550123", "14165550123", "US"), ("domestic", "CA", "fixed_line_or_mobile")),  # US and Canada: one zone
    (("18765550123", "18765550123", "US"), ("international", "JM", "mobile")),  # NANP but not domestic
    (("33612345678", "33612345678", "FR"), ("domestic", "FR", "mobile")),
    (("88212345678", "88212345678", "US"), ("international", "", "unknown")),
    (("911", "911", "US"), ("emergency", "US", "emergency")),
    (("999", "999", "GB"), ("emergency", "GB", "emergency")),
    (("411", "1411", "US"), ("directory", "US", "directory")),
    # premium-rate numbers are a class of their own, at home and abroad
    (("19005551234", "19005551234", "US"), ("premium_rate", "US", "premium_rate")),
    (("011449098790000", "449098790000", "US"), ("premium_rate", "GB", "premium_rate")),
    # a freephone number abroad is not free from here
    (("011448001234567", "448001234567", "US"), ("international", "GB", "toll_free")),
    # what libphonenumber does not recognise keeps only what is known
    (("19995550100", "19995550100", "US"), ("unknown", "", "unknown")),  # NANP: US, Canada or Caribbean
    (("011441632960000", "441632960000", "US"), ("international", "", "unknown")),  # GB, GG, IM or JE: abroad
    (("441632960000", "441632960000", "GB"), ("unknown", "", "unknown")),  # home, or a Crown dependency
    (("01133999", "33999", "US"), ("international", "FR", "unknown")),  # +33 is France's alone
    (("33999", "33999", "FR"), ("domestic", "FR", "unknown")),
    # NPA-555-1212 directory assistance (refused: 411 only, seed 001)
    (("2125551212", "12125551212", "US"), ("directory", "US", "directory_555_1212")),
    (("2125551213", "12125551213", "US"), ("domestic", "US", "fixed_line_or_mobile")),
]


def test_abroad_and_route_class() -> None:
    """Premium-rate and unknown numbers are routed as the domestic or international calls they
    are; only numbers known to be at home escape the international restrictions."""
    home = cls.classify("19005551234", "19005551234", "US")
    abroad = cls.classify("011449098790000", "449098790000", "US")
    unknown = cls.classify("19995550100", "19995550100", "US")
    assert (home.abroad, home.route_class) == (False, "domestic")
    assert (abroad.abroad, abroad.route_class) == (True, "international")
    assert (unknown.abroad, unknown.route_class) == (True, "international")
    assert not cls.classify("12015550123", "12015550123", "US").abroad
    assert cls.classify("011442079460958", "442079460958", "US").abroad


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("12125551212", True),
        ("18765551212", True),
        ("12125551213", False),
        ("11125551212", False),
        ("5551212", False),
        ("442075551212", False),
        ("121255512120", False),
    ],
)
def test_nanp_directory_555(digits: str, expected: bool) -> None:
    assert cls.is_nanp_directory_555(digits) is expected


@pytest.mark.parametrize(("args", "expected"), CASES)
def test_classes(args: tuple[str, str, str], expected: tuple[str, str, str]) -> None:
    d = cls.classify(*args)
    assert (d.number_class, d.region, d.number_type) == expected


def test_same_answers_after_numbers_of_every_country() -> None:
    """The compiled-pattern cache (more patterns than the re module's own cache holds) changes no answer."""
    first = [cls.classify(*args) for args, _expected in CASES]
    cls._region_and_type.cache_clear()
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        example = phonenumbers.example_number(region)
        if example is not None:
            digits = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164).lstrip("+")
            # (some regions share numbers: Western Sahara's example is Morocco's)
            assert cls.classify(digits, digits, "US").region in phonenumbers.region_codes_for_country_code(
                example.country_code
            )
    cls._region_and_type.cache_clear()
    assert [cls.classify(*args) for args, _expected in CASES] == first


def test_no_emergency_number_is_longer_than_its_country_says() -> None:
    """``is_emergency`` skips the metadata for numbers longer than the country's longest
    emergency number: every country's emergency pattern matches nothing longer, and its
    example emergency number is still found."""
    import re._parser as sre_parse

    from phonenumbers import PhoneMetadata
    from phonenumbers.shortnumberinfo import SUPPORTED_SHORT_REGIONS

    from tarifa.core.classify import _longest_emergency_number, is_emergency

    checked = 0
    for region in sorted(SUPPORTED_SHORT_REGIONS):
        metadata = PhoneMetadata.short_metadata_for_region(region, None)
        if metadata is None or metadata.emergency is None:
            assert _longest_emergency_number(region) == 0
            continue
        widest = sre_parse.parse(metadata.emergency.national_number_pattern).getwidth()[1]
        assert widest <= _longest_emergency_number(region) <= 6, region
        example = metadata.emergency.example_number
        if example:
            assert is_emergency(example, region), (region, example)
            checked += 1
    assert checked > 200
    assert is_emergency("911", "US") and is_emergency("112", "DE") and not is_emergency("14155550123", "US")
