"""A realistic world rate deck derived from libphonenumber metadata.

Nothing in here is typed in by hand: destinations come from the metadata
bundled with :mod:`phonenumbers` (calling codes, region leading digits,
English region display names and the mobile carrier prefix data), prices are
pseudo-random but fully deterministic (``hashlib`` over seed + destination,
never the :mod:`random` module) and use :class:`~decimal.Decimal` throughout.

Public API
----------
``Destination``
    Frozen dataclass ``(prefix, name, region, kind)``.
``world_destinations()``
    Sorted list of unique destinations (country codes, dependent regions that
    share a calling code, and carrier mobile prefixes).
``price_for(dest, *, seed="sell", markdown=None)``
    Deterministic per-minute prices for one destination.
``country_code_of(prefix)``
    The E.164 calling code a digit string starts with.

The module is pure: no Django, no I/O except importing phonenumbers' data.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from pathlib import Path
from types import ModuleType
from typing import TypedDict

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata, PhoneNumberType

__all__ = [
    "KINDS",
    "KIND_FIXED",
    "KIND_MOBILE",
    "KIND_NONGEO",
    "Destination",
    "country_code_of",
    "price_for",
    "region_name",
    "world_destinations",
]

KIND_FIXED = "fixed"
KIND_MOBILE = "mobile"
KIND_NONGEO = "nongeo"
KINDS = frozenset({KIND_FIXED, KIND_MOBILE, KIND_NONGEO})

LANG = "en"
NONGEO_REGION = "001"  # libphonenumber's pseudo-region for non-geographic codes
MAX_PREFIX_LEN = 15  # E.164 maximum
#: Carrier prefixes are truncated to at most this many digits ...
MAX_MOBILE_PREFIX_LEN = 7
#: ... and further, per (calling code, region), until at most this many remain.
MAX_MOBILE_PREFIXES_PER_REGION = 64
#: Leading-digit patterns expanding to more prefixes than this are ignored.
MAX_LEADING_DIGIT_EXPANSIONS = 64

_DIGITS = "0123456789"
_CC_STRINGS = frozenset(str(cc) for cc in COUNTRY_CODE_TO_REGION_CODE)


# --------------------------------------------------------------------------
# Destination
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Destination:
    """One rate-deck row: a dialled-digit prefix and what it reaches."""

    prefix: str  # 1-15 digits, E.164 without '+'
    name: str  # e.g. "United Kingdom" or "United Kingdom Mobile - Vodafone"
    region: str  # ISO 3166-1 alpha-2, or "" for non-geographic numbers
    kind: str  # "fixed" | "mobile" | "nongeo"

    def __post_init__(self) -> None:
        p = self.prefix
        if not (isinstance(p, str) and 1 <= len(p) <= MAX_PREFIX_LEN and p.isascii() and p.isdigit()):
            raise ValueError(f"prefix must be 1-{MAX_PREFIX_LEN} digits, got {p!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, got {self.kind!r}")


def country_code_of(prefix: str) -> str | None:
    """Return the calling code (as a string) that ``prefix`` starts with.

    E.164 calling codes form a prefix-free set, so at most one matches.
    """
    for n in (1, 2, 3):
        if prefix[:n] in _CC_STRINGS and len(prefix) >= n:
            return prefix[:n]
    return None


# --------------------------------------------------------------------------
# Names (phonenumbers' geodata locale table, English)
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _locale_data() -> dict[str, dict[str, str]]:
    """``phonenumbers.geodata.locale.LOCALE_DATA`` without the geocode tables.

    Importing ``phonenumbers.geodata.locale`` the normal way first executes
    ``phonenumbers/geodata/__init__.py``, which loads every geocoding table
    (~0.4 s, ~100 MB).  The locale table is a standalone module, so load just
    that file unless the full package has already been imported anyway.
    """
    mod = sys.modules.get("phonenumbers.geodata.locale")
    if mod is None:
        mod = _load_locale_module()
    table: dict[str, dict[str, str]] = mod.LOCALE_DATA
    return table


def _load_locale_module() -> ModuleType:
    try:
        path = Path(phonenumbers.__file__).resolve().parent / "geodata" / "locale.py"
        spec = importlib.util.spec_from_file_location("phonenumbers.geodata.locale", path)
        if spec is None or spec.loader is None:
            raise ImportError(path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)  # not registered in sys.modules on purpose
        return mod
    except Exception:  # noqa: BLE001  # pragma: no cover - layout changed upstream
        from phonenumbers.geodata import locale

        return locale


@functools.cache
def region_name(region: str, lang: str = LANG) -> str:
    """Display name of an ISO region code, as ``phonenumbers.geocoder`` gives it.

    Falls back to the region code itself when the locale data has no name.
    """
    entry = _locale_data().get(region)
    name = ""
    if entry:
        name = entry.get(lang, "")
        if name.startswith("*"):  # "*xx": the name is held under language xx
            name = entry.get(name[1:], "")
    return str(name) or region


_TYPE_LABELS = {
    PhoneNumberType.FIXED_LINE: "Fixed",
    PhoneNumberType.MOBILE: "Mobile",
    PhoneNumberType.TOLL_FREE: "Toll-free",
    PhoneNumberType.PREMIUM_RATE: "Premium Rate",
    PhoneNumberType.SHARED_COST: "Shared Cost",
    PhoneNumberType.VOIP: "VoIP",
    PhoneNumberType.PERSONAL_NUMBER: "Personal Number",
    PhoneNumberType.PAGER: "Pager",
    PhoneNumberType.UAN: "UAN",
    PhoneNumberType.VOICEMAIL: "Voicemail",
}
_TYPE_DESCS = (
    ("fixed_line", PhoneNumberType.FIXED_LINE),
    ("mobile", PhoneNumberType.MOBILE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)


def _nongeo_name(cc: int) -> str:
    """Name a non-geographic calling code after the number types it carries."""
    md = PhoneMetadata.metadata_for_nongeo_region(cc)
    labels = []
    if md is not None:
        for attr, ntype in _TYPE_DESCS:
            desc = getattr(md, attr, None)
            if desc is not None and desc.national_number_pattern:
                labels.append(_TYPE_LABELS[ntype])
    return f"International {'/'.join(labels) or 'Networks'} +{cc}"


# --------------------------------------------------------------------------
# Region metadata helpers
# --------------------------------------------------------------------------


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _can_complete(md: PhoneMetadata, attr: str, national: str) -> bool:
    """Could ``national`` + some digits be a number of type ``attr`` in ``md``?

    Tries uniform digit fills up to every possible length; good enough to
    tell regions sharing a calling code apart.
    """
    desc = getattr(md, attr, None)
    if desc is None or not desc.national_number_pattern:
        return False
    lengths = desc.possible_length or (md.general_desc.possible_length if md.general_desc else ())
    rx = _compiled(desc.national_number_pattern)
    for length in sorted(set(lengths)):
        missing = length - len(national)
        if missing < 0:
            continue
        if missing == 0:
            if rx.fullmatch(national):
                return True
            continue
        for d in _DIGITS:
            if rx.fullmatch(national + d * missing):
                return True
    return False


@functools.cache
def _region_for(cc: str, national: str) -> str:
    """Region a (mobile) prefix belongs to; mirrors libphonenumber's lookup."""
    regions = COUNTRY_CODE_TO_REGION_CODE[int(cc)]
    if regions[0] == NONGEO_REGION:
        return ""
    if len(regions) == 1:
        return regions[0]
    for region in regions:
        md = PhoneMetadata.metadata_for_region(region)
        if md is None:
            continue
        if md.leading_digits is not None:
            if _compiled(md.leading_digits).match(national):
                return region
        elif _can_complete(md, "mobile", national) or _can_complete(md, "fixed_line", national):
            return region
    return regions[0]


def _expand_leading_digits(pattern: str) -> list[str] | None:
    """Expand a simple leading-digits regex into the digit strings it matches.

    Supports literals, ``[..]`` classes with ranges, ``|`` and ``(?:..)``.
    Returns None for anything else (or if the expansion is too large).
    """
    pos = 0

    def alt() -> list[str]:
        nonlocal pos
        out = seq()
        while pos < len(pattern) and pattern[pos] == "|":
            pos += 1
            out += seq()
        return out

    def seq() -> list[str]:
        nonlocal pos
        out = [""]
        while pos < len(pattern) and pattern[pos] not in "|)":
            ch = pattern[pos]
            if ch.isdigit():
                opts = [ch]
                pos += 1
            elif ch == "[":
                end = pattern.index("]", pos)
                body, pos = pattern[pos + 1 : end], end + 1
                opts, i = [], 0
                while i < len(body):
                    if i + 2 < len(body) and body[i + 1] == "-":
                        opts += [chr(c) for c in range(ord(body[i]), ord(body[i + 2]) + 1)]
                        i += 3
                    else:
                        opts.append(body[i])
                        i += 1
                if not all(o.isdigit() for o in opts):
                    raise ValueError(pattern)
            elif pattern.startswith("(?:", pos):
                pos += 3
                opts = alt()
                if pos >= len(pattern) or pattern[pos] != ")":
                    raise ValueError(pattern)
                pos += 1
            else:
                raise ValueError(pattern)
            out = [a + b for a in out for b in opts]
            if len(out) > MAX_LEADING_DIGIT_EXPANSIONS:
                raise ValueError(pattern)
        return out

    try:
        result = alt()
    except ValueError:
        return None
    if pos != len(pattern) or len(result) > MAX_LEADING_DIGIT_EXPANSIONS:
        return None
    return sorted(set(r for r in result if r))


# --------------------------------------------------------------------------
# Deck construction
# --------------------------------------------------------------------------


def _fixed_entries() -> dict[str, Destination]:
    """One entry per calling code plus dependent regions sharing a code."""
    out: dict[str, Destination] = {}
    for cc in sorted(COUNTRY_CODE_TO_REGION_CODE):
        prefix = str(cc)
        main = phonenumbers.region_code_for_country_code(cc)
        if main == NONGEO_REGION:
            out[prefix] = Destination(prefix, _nongeo_name(cc), "", KIND_NONGEO)
        else:
            out[prefix] = Destination(prefix, region_name(main), main, KIND_FIXED)
    # Regions that share a calling code with a main region (NANP islands,
    # Kazakhstan on +7, Isle of Man on +44, ...) get their own rows where the
    # metadata gives explicit leading digits.
    for cc, regions in sorted(COUNTRY_CODE_TO_REGION_CODE.items()):
        for region in regions[1:]:
            md = PhoneMetadata.metadata_for_region(region)
            if md is None or md.main_country_for_code or not md.leading_digits:
                continue
            for national in _expand_leading_digits(md.leading_digits) or ():
                prefix = f"{cc}{national}"
                if prefix in out or len(prefix) > MAX_PREFIX_LEN:
                    continue
                mobile_only = _can_complete(md, "mobile", national) and not _can_complete(md, "fixed_line", national)
                name = region_name(region) + (" Mobile" if mobile_only else "")
                out[prefix] = Destination(prefix, name, region, KIND_MOBILE if mobile_only else KIND_FIXED)
    return out


def _floor_len(prefix: str, floors: set[str]) -> int:
    """Length of the longest fixed entry that ``prefix`` starts with."""
    for n in range(min(len(prefix), MAX_PREFIX_LEN), 0, -1):
        if prefix[:n] in floors:
            return n
    return 0


def _mobile_labels(fixed: dict[str, Destination]) -> dict[str, tuple[str, str]]:
    """Collapsed carrier prefixes -> (region, English carrier name)."""
    from phonenumbers.carrierdata import CARRIER_DATA

    floors = set(fixed)
    # (prefix, region, carrier, floor length) grouped per (cc, region) bucket
    buckets: dict[tuple[str, str], list[tuple[str, str, str, int]]] = defaultdict(list)
    for raw in sorted(CARRIER_DATA):
        carrier = str(CARRIER_DATA[raw].get(LANG, "")).strip()
        cc = country_code_of(raw)
        if not carrier or cc is None or len(raw) <= len(cc) or len(raw) > MAX_PREFIX_LEN:
            continue
        region = _region_for(cc, raw[len(cc) :])
        floor = _floor_len(raw, floors)
        if floor >= len(raw):  # the raw prefix *is* a fixed entry: it stays fixed
            continue
        buckets[(cc, region)].append((raw, region, carrier, floor))

    # Truncate each bucket to the longest length that keeps it small enough;
    # never to or above the fixed entry the prefix falls under.
    votes: dict[str, dict[str, Counter[tuple[str, str]]]] = defaultdict(lambda: defaultdict(Counter))
    for (cc, _region), items in sorted(buckets.items()):
        for length in range(MAX_MOBILE_PREFIX_LEN, len(cc), -1):
            cut = [raw[: max(length, floor + 1)] for raw, _, _, floor in items]
            if len(set(cut)) <= MAX_MOBILE_PREFIXES_PER_REGION:
                break
        for short, (_, region, carrier, _) in zip(cut, items, strict=True):
            votes[cc][short][(region, carrier)] += 1

    labels: dict[str, tuple[str, str]] = {}
    for cc, per_prefix in sorted(votes.items()):
        entries = {
            p: min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0] for p, counter in sorted(per_prefix.items())
        }
        labels.update(_collapse(entries, cc, floors))
    return labels


def _collapse(entries: dict[str, tuple[str, str]], cc: str, floors: set[str]) -> dict[str, tuple[str, str]]:
    """Merge sibling prefixes that share one label into their parent.

    A parent is never a fixed entry nor a proper prefix of one (that would
    swallow e.g. other NANP area codes), and is never created above a
    sibling group whose labels differ.
    """
    protected = {f[:i] for f in floors if f.startswith(cc) for i in range(1, len(f) + 1)}
    blocked: set[str] = set()
    entries = dict(entries)
    for length in range(max(map(len, entries), default=0), len(cc) + 1, -1):
        groups: dict[str, list[str]] = defaultdict(list)
        for p in entries:
            if len(p) == length:
                groups[p[:-1]].append(p)
        for parent in sorted(groups):
            kids = groups[parent]
            kid_labels = {entries[k] for k in kids}
            ok = (
                len(kid_labels) == 1
                and parent not in blocked
                and parent not in protected
                and entries.get(parent, next(iter(kid_labels))) in kid_labels
            )
            if ok:
                label = next(iter(kid_labels))
                for k in kids:
                    del entries[k]
                entries[parent] = label
            else:
                blocked.update(parent[:i] for i in range(len(cc) + 1, len(parent)))
    return entries


class Price(TypedDict):
    """The rate terms :func:`price_for` gives: the keyword arguments of a rate."""

    price_1: Decimal
    price_n: Decimal
    interval_1: int
    interval_n: int
    connect_fee: Decimal


@functools.lru_cache(maxsize=1)
def _world_destinations() -> tuple[Destination, ...]:
    fixed = _fixed_entries()
    deck = dict(fixed)
    for prefix, (region, carrier) in _mobile_labels(fixed).items():
        if prefix in deck:
            continue
        if region:
            name, kind = f"{region_name(region)} Mobile - {carrier}", KIND_MOBILE
        else:
            cc = country_code_of(prefix)
            if cc is None:  # pragma: no cover - every prefix here starts with a calling code
                raise ValueError(f"prefix {prefix} starts with no calling code")
            name, kind = f"{deck[cc].name} - {carrier}", KIND_NONGEO
        deck[prefix] = Destination(prefix, name, region, kind)
    return tuple(deck[p] for p in sorted(deck))


def world_destinations() -> list[Destination]:
    """All destinations of the world deck, unique prefixes, sorted by prefix.

    Contains one row per country calling code (named after the main region,
    e.g. US for +1), rows for dependent regions with explicit leading digits
    (NANP islands, Kazakhstan, Isle of Man, ...) and collapsed mobile carrier
    prefixes ("United Kingdom Mobile - Vodafone").  Deterministic for a given
    phonenumbers release; computed once and cached.
    """
    return list(_world_destinations())


# --------------------------------------------------------------------------
# Prices
# --------------------------------------------------------------------------

_CTX = Context(prec=28, rounding=ROUND_HALF_UP)
_TWO64 = Decimal(2**64)
_Q4 = Decimal("0.0001")
_ZERO = Decimal("0")
_ONE = Decimal("1")

# Market (list) price ranges per minute, before per-seed variation.
FIXED_RANGE = (Decimal("0.005"), Decimal("0.08"))
MOBILE_RANGE = (Decimal("0.02"), Decimal("0.35"))
NANP_RANGE = (Decimal("0.008"), Decimal("0.014"))
NONGEO_RANGE = (Decimal("0.15"), Decimal("1.50"))
#: Per-seed variation is +-5%; 1 in 16 destinations gets an outlier factor.
OUTLIER_RANGE = (Decimal("1.25"), Decimal("1.45"))


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()


def _unit(*parts: str) -> Decimal:
    """Deterministic Decimal in [0, 1) from the given strings."""
    return _CTX.divide(Decimal(int.from_bytes(_digest(*parts)[:8], "big")), _TWO64)


def _between(lo: Decimal, hi: Decimal, u: Decimal) -> Decimal:
    return _CTX.add(lo, _CTX.multiply(_CTX.subtract(hi, lo), u))


def _market_key(dest: Destination) -> str:
    return dest.region or country_code_of(dest.prefix) or dest.prefix


def _market_rate(dest: Destination) -> Decimal:
    """Seed-independent list price: correlated per country, skewed cheap."""
    key = _market_key(dest)
    if dest.prefix.startswith("1") and dest.region in ("US", "CA"):
        return _between(*NANP_RANGE, _unit("market-nanp", dest.prefix))
    country = _unit("market", key)
    skew = _CTX.multiply(country, country)  # most countries are cheap
    if dest.kind == KIND_NONGEO:
        return _between(*NONGEO_RANGE, _unit("market-nongeo", dest.name))
    if dest.kind == KIND_MOBILE:
        carrier = _unit("market-carrier", key, dest.name)
        mix = _CTX.add(_CTX.multiply(Decimal("0.75"), skew), _CTX.multiply(Decimal("0.25"), carrier))
        return _between(*MOBILE_RANGE, mix)
    return _between(*FIXED_RANGE, skew)


def _intervals(dest: Destination, seed: str) -> tuple[int, int]:
    if dest.prefix.startswith("1"):
        return 1, 1
    if dest.kind == KIND_NONGEO:
        return 60, 60
    u = _unit(seed, "interval", _market_key(dest))
    if u < Decimal("0.15"):
        return 30, 6
    if u < Decimal("0.20"):
        return 1, 1
    return 60, 60


def _connect_fee(dest: Destination, seed: str) -> Decimal:
    u = _unit(seed, "connect", dest.prefix)
    if dest.kind == KIND_NONGEO:
        fee = _between(Decimal("0.05"), Decimal("0.50"), u)
    elif u < Decimal("0.03"):
        fee = _between(Decimal("0.01"), Decimal("0.05"), _unit(seed, "connect-amount", dest.prefix))
    else:
        return _ZERO.quantize(_Q4)
    return fee.quantize(_Q4, rounding=ROUND_HALF_UP)


def price_for(dest: Destination, *, seed: str = "sell", markdown: Decimal | None = None) -> Price:
    """Deterministic pseudo-prices for ``dest``.

    Returns ``{"price_1", "price_n"}`` (per minute, Decimal, 4 decimals,
    equal), ``{"interval_1", "interval_n"}`` (seconds, int: 1/1 for NANP,
    otherwise mostly 60/60, some 30/6 or 1/1) and ``"connect_fee"``
    (Decimal, mostly 0).

    The price is a seed-independent market rate (fixed ~0.005-0.08, mobile
    ~0.02-0.35, NANP ~0.01) times a +-5% per-``seed`` variation, with one
    destination in 16 getting a x1.25-1.45 outlier.  Vendor buy prices use
    another seed and a ``markdown`` factor, e.g.
    ``price_for(d, seed="vendor-A", markdown=Decimal("0.85"))``: generally
    below the sell price, except for the occasional vendor outlier, which
    makes loss routes exist in demo data.
    """
    if markdown is None:
        markdown = _ONE
    elif not isinstance(markdown, Decimal):
        if isinstance(markdown, float):
            raise TypeError("markdown must be a Decimal (or int/str), not float")
        markdown = Decimal(str(markdown))
    if markdown <= 0:
        raise ValueError("markdown must be positive")

    variation = _between(Decimal("0.95"), Decimal("1.05"), _unit(seed, "variation", dest.prefix))
    outlier = _digest(seed, "outlier", dest.prefix)
    if outlier[0] < 16:
        variation = _CTX.multiply(variation, _between(*OUTLIER_RANGE, _unit(seed, "outlier-size", dest.prefix)))
    rate = _CTX.multiply(_CTX.multiply(_market_rate(dest), variation), markdown)
    rate = max(rate.quantize(_Q4, rounding=ROUND_HALF_UP), _Q4)
    interval_1, interval_n = _intervals(dest, seed)
    return {
        "price_1": rate,
        "price_n": rate,
        "interval_1": interval_1,
        "interval_n": interval_n,
        "connect_fee": _connect_fee(dest, seed),
    }
