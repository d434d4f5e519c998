"""Destination classes from libphonenumber data (core/classify.py)."""

from __future__ import annotations

import phonenumbers
import pytest

from tarifa.core import classify as cls

CASES = [
    (("011442079460958", "442079460958", "US"), ("international", "GB", "fixed_line")),
    (("18005551212", "18005551212", "US"), ("tollfree", "US", "toll_free")),
    (("12015550123", "12015550123", "US"), ("domestic", "US", "fixed_line_or_mobile")),
    (("14165550123", "14165550123", "US"), ("domestic", "CA", "fixed_line_or_mobile")),  # US and Canada: one zone
    (("18765550123", "18765550123", "US"), ("international", "JM", "mobile")),  # NANP but not domestic
    (("33612345678", "33612345678", "FR"), ("domestic", "FR", "mobile")),
    (("88212345678", "88212345678", "US"), ("international", "", "unknown")),
    (("911", "911", "US"), ("emergency", "US", "emergency")),
    (("999", "999", "GB"), ("emergency", "GB", "emergency")),
    (("411", "1411", "US"), ("directory", "US", "directory")),
]


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
                example.country_code)
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
