"""Destination classes for restrictions and routing choice (seed 001), from libphonenumber data.

What libphonenumber knows is used, nothing more: a number it does not recognise keeps its
country only when its calling code (or its leading digits) names one country, and its class is
``unknown`` when that country could be home or abroad (an unassigned NANP area code may be
US, Canada or the Caribbean); the rate deck prices such numbers by prefix. Premium-rate numbers
(libphonenumber's PREMIUM_RATE: US 1-900, UK 09...) are a class of their own because they are where
toll fraud goes; shared-cost, UAN, personal and VoIP numbers stay in their country's class (their
prices are regulated near ordinary ones and the rate deck prices them; abroad, the international
restrictions and rate cap apply). Toll-free is a class only at home (US and Canada dial each
other's free): a freephone number abroad is not free from here and is international.
"""

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
PREMIUM_RATE: Final = "premium_rate"
UNKNOWN: Final = "unknown"
CLASSES: Final = (EMERGENCY, DIRECTORY, TOLL_FREE, DOMESTIC, INTERNATIONAL, PREMIUM_RATE, UNKNOWN)
# The number type of NANP NPA-555-1212 (class directory): seed 001 offers directory assistance
# through 411 only, so the call is refused.
DIRECTORY_555: Final = "directory_555_1212"

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
    # Not known to be in the caller's domestic zone (international, unknown, premium-rate abroad):
    # the international restrictions, rate cap and max call time apply.
    abroad: bool = False

    @property
    def route_class(self) -> str:
        """The class whose routes and route choice (value/premium) carry the call: premium-rate
        and unknown numbers travel as the domestic or international calls they are."""
        if self.number_class in (PREMIUM_RATE, UNKNOWN):
            return INTERNATIONAL if self.abroad else DOMESTIC
        return self.number_class


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
    return (
        bool(digits)
        and len(digits) <= _longest_emergency_number(region)
        and digits.isdigit()
        and shortnumberinfo.is_emergency_number(digits, region)
    )


def is_directory(dialled: str, digits: str) -> bool:
    """Directory assistance 411 (seed 001)."""
    return dialled.lstrip("+") in ("411", "1411") or digits == "1411"


def is_nanp_directory_555(digits: str) -> bool:
    """NANP directory assistance NPA-555-1212 (E.164 digits ``1NPA5551212``, any area code), which
    seed 001 does not offer: "the only way to reach directory assistance is 411"."""
    return len(digits) == 11 and digits.startswith("1") and digits[1] in "23456789" and digits.endswith("5551212")


@lru_cache(maxsize=65536)
def _region_and_type(digits: str) -> tuple[str, str, tuple[str, ...]]:
    """(region, type, the regions of the calling code) as libphonenumber knows them: the region
    of a number it does not recognise only when the calling code or the leading digits name one
    (+33 is France; +1 876 is Jamaica; an unassigned +1 999 is not the US, nor +44 1632 GB)."""
    try:
        parsed = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return "", "unknown", ()
    region = phonenumbers.region_code_for_number(parsed)
    if region in (None, "", "001", "ZZ"):
        region = ""
    kind = _TYPE_NAMES.get(phonenumbers.number_type(parsed), "unknown")
    codes = phonenumbers.region_codes_for_country_code(parsed.country_code) if parsed.country_code else ()
    regions = tuple(r for r in codes if r not in ("001", "ZZ"))
    return region, kind, regions


def _zone(region: str, regions: tuple[str, ...], home: str) -> str:
    """DOMESTIC, INTERNATIONAL or UNKNOWN: whether the number is in the caller's domestic zone
    (its own country; US and Canada together). A number of unknown region is domestic or
    international only when every region of its calling code says the same."""
    zone = _NANP_DOMESTIC if home in _NANP_DOMESTIC else frozenset({home})
    if region:
        return DOMESTIC if region in zone else INTERNATIONAL
    inside = {r in zone for r in regions}
    if inside == {True}:
        return DOMESTIC
    if inside == {False} or not inside:  # abroad, or a non-geographic code (+882, +883, ...)
        return INTERNATIONAL
    return UNKNOWN


def classify(dialled: str, digits: str, home_region: str) -> Destination:
    """Class of the call to E.164 ``digits`` (``dialled`` as the caller typed it) from ``home_region``."""
    if is_emergency(dialled, home_region):
        return Destination(EMERGENCY, home_region, "emergency")
    if is_directory(dialled, digits):
        return Destination(DIRECTORY, home_region, "directory")
    region, kind, regions = _region_and_type(digits)
    if is_nanp_directory_555(digits):
        return Destination(DIRECTORY, region, DIRECTORY_555)
    zone = _zone(region, regions, home_region.upper())
    abroad = zone != DOMESTIC
    if kind == "premium_rate":
        return Destination(PREMIUM_RATE, region, kind, abroad)
    if kind == "toll_free" and not abroad:
        return Destination(TOLL_FREE, region, kind)
    return Destination(zone, region, kind, abroad)


def is_toll_free(digits: str) -> bool:
    """Whether the E.164 ``digits`` are a toll-free (freephone) number, as libphonenumber knows
    it (US/CA 800, 833-888; UK 0800...): origination rating bills such numbers by origin."""
    return _region_and_type(digits)[1] == "toll_free"
