"""Destination classes for restrictions and routing choice (seed 001), from libphonenumber data."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import phonenumbers
from phonenumbers import shortnumberinfo

EMERGENCY: Final = "emergency"
DIRECTORY: Final = "directory"
TOLL_FREE: Final = "tollfree"
DOMESTIC: Final = "domestic"
INTERNATIONAL: Final = "international"
CLASSES: Final = (EMERGENCY, DIRECTORY, TOLL_FREE, DOMESTIC, INTERNATIONAL)

# US and Canada dial each other as one domestic zone (seed 001: "US48/Canadian calls"); the
# other NANP countries (Caribbean) are international although they share calling code 1.
_NANP_DOMESTIC: Final = frozenset({"US", "CA"})
_TYPE_NAMES: Final = {v: k.lower() for k, v in vars(phonenumbers.PhoneNumberType).items() if k.isupper()}

# Keep libphonenumber's compiled metadata patterns (a bounded set) instead of letting them drop
# out of the re module's 512-entry cache and be compiled again: classifying a number nobody
# dialled before costs about half as much. Same patterns, same results.
phonenumbers.enable_pattern_cache()


@dataclass(frozen=True, slots=True)
class Destination:
    number_class: str
    region: str  # ISO 3166 alpha-2, "" when unknown or non-geographic
    number_type: str  # libphonenumber's type name: fixed_line, mobile, toll_free, ...


@lru_cache(maxsize=512)
def _longest_emergency_number(region: str) -> int:
    """How many digits the longest emergency number of ``region`` has (its short-number metadata;
    no region has one longer than 6)."""
    metadata = phonenumbers.PhoneMetadata.short_metadata_for_region(region.upper(), None)
    if metadata is None or metadata.emergency is None:
        return 0
    return max(metadata.emergency.possible_length or (0,))


@lru_cache(maxsize=65536)
def is_emergency(dialled: str, home_region: str) -> bool:
    """911, 112, 999, ... as the caller's country defines them (short-number metadata; results
    cached per number and country, as ``_region_and_type``). A number longer than the country's
    longest emergency number is not one: no metadata look-up for it."""
    digits = dialled.lstrip("+")
    region = home_region or "US"
    return (bool(digits) and len(digits) <= _longest_emergency_number(region) and digits.isdigit()
            and shortnumberinfo.is_emergency_number(digits, region))


def is_directory(dialled: str, digits: str) -> bool:
    """Directory assistance 411 (seed 001; XXX-555-1212 is not offered)."""
    return dialled.lstrip("+") in ("411", "1411") or digits == "1411"


@lru_cache(maxsize=65536)
def _region_and_type(digits: str) -> tuple[str, str]:
    try:
        parsed = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return "", "unknown"
    # An unassigned range still belongs to its country: fall back to the calling code's main region.
    region = phonenumbers.region_code_for_number(parsed) or phonenumbers.region_code_for_country_code(parsed.country_code)
    if region in (None, "", "001", "ZZ"):
        region = ""
    kind = _TYPE_NAMES.get(phonenumbers.number_type(parsed), "unknown")
    return region, kind


def classify(dialled: str, digits: str, home_region: str) -> Destination:
    """Class of the call to E.164 ``digits`` (``dialled`` as the caller typed it) from ``home_region``."""
    if is_emergency(dialled, home_region):
        return Destination(EMERGENCY, home_region, "emergency")
    if is_directory(dialled, digits):
        return Destination(DIRECTORY, home_region, "directory")
    region, kind = _region_and_type(digits)
    if kind == "toll_free":
        return Destination(TOLL_FREE, region, kind)
    home = home_region.upper()
    if region and (region == home or (region in _NANP_DOMESTIC and home in _NANP_DOMESTIC)):
        return Destination(DOMESTIC, region, kind)
    if not region and digits.startswith("1") and home in _NANP_DOMESTIC:
        return Destination(DOMESTIC, region, kind)
    return Destination(INTERNATIONAL, region, kind)
