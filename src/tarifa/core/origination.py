"""Origination (inbound) rating: what an inbound call to one of our numbers costs its owner.

An inbound call to a DID (or to a virtual number, which shares its primary DID's plan) is paid
by the number's owner at the DID plan's origination terms. Which per-minute rate applies is
decided in this order (:func:`origination_rate`), the first that applies wins:

1. **toll-free**: the called number is a toll-free number (libphonenumber's type, see
   :func:`tarifa.core.classify.is_toll_free`): the plan's *toll-free* origin rates by the
   caller's prefix (longest prefix wins), else the plan's toll-free rate, else the blended rate;
2. **LATA**: the plan bills by LATA and both caller and callee are NANP numbers whose NPA-NXX
   is in the operator's table (:class:`LataTable`): one of four rates by :func:`lata_category`;
3. **tiered**: the plan's ordinary origin rates by the caller's prefix (longest prefix wins);
4. **blended**: the plan's one inbound rate.

All four use the plan's intervals (first / next) and the exact cost of
:func:`tarifa.core.rating.call_cost`; included minutes are used first
(:mod:`tarifa.core.pools`). Then, per call:

* a **payphone surcharge** (:func:`payphone_surcharge`) is added when the caller's number starts
  with one of the operator's payphone origin prefixes: the plan's fixed amount per call, charged
  even when included minutes covered the minutes (it is a per-call fee, not minutes);
* an **out-payment** (:func:`out_payment`): a DID with an out-payment rate credits its owner
  per minute of the call, billed with the plan's intervals (revenue-share numbers).

**Short-call penalties** (:func:`short_call_penalty`) are decided per customer, DID plan and
closed calendar month from counts of answered inbound calls.

Everything here is pure: plain data in, Decimal out, no database.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Final

from tarifa.core.rating import RateTerms, call_cost, quantize

__all__ = [
    "BLENDED",
    "INBOUND_DESTINATION",
    "LATA_FIELDS",
    "LataCategory",
    "LataEntry",
    "LataProblem",
    "LataRates",
    "LataRow",
    "LataTable",
    "OriginRate",
    "OriginationPlan",
    "OriginationRate",
    "PenaltyMode",
    "ShortCallPolicy",
    "inbound_destination",
    "lata_category",
    "longest_prefix",
    "origination_rate",
    "out_payment",
    "parse_lata_csv",
    "payphone_surcharge",
    "short_call_penalty",
]

_ZERO: Final = Decimal(0)
BLENDED: Final = "blended"  # the basis of a call priced at the plan's one inbound rate
INBOUND_DESTINATION: Final = "DID inbound"  # what an inbound call stores as its destination


# --- plan data -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OriginRate:
    """One row of a plan's tiered origination: calls from numbers starting with ``prefix``
    (E.164 digits) cost ``rate`` per minute. ``toll_free`` rows apply to calls to the plan's
    toll-free numbers, the others to calls to its ordinary numbers."""

    prefix: str
    rate: Decimal
    toll_free: bool = False


@dataclass(frozen=True, slots=True)
class LataRates:
    """The four per-minute rates of LATA-based billing (US numbers).

    ``intra_lata_interstate`` prices the rare call within one LATA that crosses a state line
    (a few LATAs span two states); None prices it as ``interstate``, which is how the tariffs
    that do not name it treat it."""

    intra_lata_intrastate: Decimal
    inter_lata_intrastate: Decimal
    interstate: Decimal
    intra_lata_interstate: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OriginationPlan:
    """A DID plan's origination terms (the rates are per minute)."""

    rate: Decimal  # the blended rate
    interval_1: int = 60
    interval_n: int = 60
    tiers: tuple[OriginRate, ...] = ()
    toll_free_rate: Decimal | None = None  # None: the blended rate
    lata: LataRates | None = None  # None: the plan does not bill by LATA
    payphone_surcharge: Decimal = _ZERO  # per call from a payphone origin

    def terms(self, rate: Decimal) -> RateTerms:
        """The rating terms of ``rate`` with the plan's intervals."""
        return RateTerms(price_1=rate, price_n=rate, interval_1=self.interval_1, interval_n=self.interval_n)


# --- the LATA table ------------------------------------------------------------------------


class LataCategory(StrEnum):
    """How a US call is classed for LATA-based billing."""

    INTRA_LATA_INTRASTATE = "intra-LATA intrastate"
    INTER_LATA_INTRASTATE = "inter-LATA intrastate"
    INTRA_LATA_INTERSTATE = "intra-LATA interstate"
    INTERSTATE = "interstate"


@dataclass(frozen=True, slots=True)
class LataEntry:
    """Where an NPA-NXX (a NANP exchange) is: its LATA code and its state (two letters)."""

    lata: str
    state: str


@dataclass(frozen=True, slots=True)
class LataTable:
    """NPA-NXX (six digits) -> :class:`LataEntry`, as the operator imported it."""

    entries: Mapping[str, LataEntry] = field(default_factory=dict)

    def find(self, number: str) -> LataEntry | None:
        """The entry of a NANP number in E.164 digits (``1`` + ten digits), else None."""
        if len(number) != 11 or number[0] != "1":
            return None
        return self.entries.get(number[1:7])


def lata_category(caller: LataEntry, callee: LataEntry) -> LataCategory:
    """Same state and LATA: intra-LATA intrastate; same state, other LATA: inter-LATA
    intrastate; other state, same LATA: intra-LATA interstate; otherwise interstate."""
    if caller.state == callee.state:
        if caller.lata == callee.lata:
            return LataCategory.INTRA_LATA_INTRASTATE
        return LataCategory.INTER_LATA_INTRASTATE
    if caller.lata == callee.lata:
        return LataCategory.INTRA_LATA_INTERSTATE
    return LataCategory.INTERSTATE


def _lata_rate(rates: LataRates, category: LataCategory) -> Decimal:
    if category == LataCategory.INTRA_LATA_INTRASTATE:
        return rates.intra_lata_intrastate
    if category == LataCategory.INTER_LATA_INTRASTATE:
        return rates.inter_lata_intrastate
    if category == LataCategory.INTRA_LATA_INTERSTATE and rates.intra_lata_interstate is not None:
        return rates.intra_lata_interstate
    return rates.interstate


# --- choosing the rate ---------------------------------------------------------------------


def longest_prefix(number: str, prefixes: Iterable[str]) -> str | None:
    """The longest of ``prefixes`` that ``number`` starts with, or None (an empty number
    matches nothing: an unknown caller has no origin)."""
    if not number:
        return None
    best: str | None = None
    for prefix in prefixes:
        if prefix and number.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return best


@dataclass(frozen=True, slots=True)
class OriginationRate:
    """The rate an inbound call is priced at, and why (stored on the CDR: ``basis`` in its
    destination, ``prefix`` as its matched prefix)."""

    rate: Decimal
    basis: str  # "blended", "tiered", "toll-free", or a LataCategory value
    prefix: str = ""  # the origin prefix that decided a tiered / toll-free rate


def _tier(plan: OriginationPlan, caller: str, toll_free: bool) -> OriginRate | None:
    rows = {t.prefix: t for t in plan.tiers if t.toll_free == toll_free}
    best = longest_prefix(caller, rows)
    return rows[best] if best is not None else None


def origination_rate(
    plan: OriginationPlan, caller: str, callee: str, *, toll_free: bool, lata: LataTable | None = None
) -> OriginationRate:
    """The per-minute rate of an inbound call from ``caller`` to ``callee`` (E.164 digits; the
    caller "" when unknown), in the order of the module docstring."""
    if toll_free:
        tier = _tier(plan, caller, toll_free=True)
        if tier is not None:
            return OriginationRate(tier.rate, "toll-free", tier.prefix)
        return OriginationRate(plan.toll_free_rate if plan.toll_free_rate is not None else plan.rate, "toll-free")
    if plan.lata is not None and lata is not None:
        origin, target = lata.find(caller), lata.find(callee)
        if origin is not None and target is not None:
            category = lata_category(origin, target)
            return OriginationRate(_lata_rate(plan.lata, category), category.value)
    tier = _tier(plan, caller, toll_free=False)
    if tier is not None:
        return OriginationRate(tier.rate, "tiered", tier.prefix)
    return OriginationRate(plan.rate, BLENDED)


def inbound_destination(basis: str) -> str:
    """What a charged inbound call stores as its destination: the plain inbound destination for
    the blended rate, else that and the basis ("DID inbound, tiered")."""
    return INBOUND_DESTINATION if basis == BLENDED else f"{INBOUND_DESTINATION}, {basis}"


def payphone_surcharge(plan: OriginationPlan, caller: str, payphone_prefixes: Sequence[str], decimals: int) -> Decimal:
    """The plan's payphone surcharge, rounded half up to ``decimals``, when ``caller`` starts
    with one of the payphone origin prefixes; else zero."""
    if not plan.payphone_surcharge or longest_prefix(caller, payphone_prefixes) is None:
        return Decimal(0).scaleb(-decimals)
    return quantize(plan.payphone_surcharge, decimals, "half_up")


def out_payment(rate: Decimal, interval_1: int, interval_n: int, duration: int, decimals: int) -> Decimal:
    """What a revenue-share DID credits its owner for an answered inbound call of ``duration``
    seconds: ``rate`` per minute on the seconds billed with the plan's intervals, rounded
    half up once (the same exact cost as a charge)."""
    if not rate:
        return Decimal(0).scaleb(-decimals)
    terms = RateTerms(price_1=rate, price_n=rate, interval_1=interval_1, interval_n=interval_n)
    return call_cost(terms, duration, decimals, "half_up")


# --- short-call penalties ------------------------------------------------------------------


class PenaltyMode(StrEnum):
    PER_CALL = "per_call"  # the amount times the number of short calls in the period
    FLAT = "flat"  # the amount once per period


@dataclass(frozen=True, slots=True)
class ShortCallPolicy:
    """A DID plan's short-call rule: a call is short when answered for fewer than ``seconds``;
    when short calls are more than ``threshold_percent`` of a customer's answered calls to the
    plan's numbers in a month, the customer pays ``amount`` (per short call, or flat)."""

    seconds: int
    threshold_percent: Decimal
    amount: Decimal
    mode: PenaltyMode = PenaltyMode.PER_CALL

    @property
    def active(self) -> bool:
        return self.seconds > 0 and self.amount > 0


def short_call_penalty(policy: ShortCallPolicy, calls: int, short: int) -> Decimal:
    """The penalty for ``short`` short calls among ``calls`` answered calls: zero unless the
    share ``short / calls`` is strictly above the threshold (compared exactly, in integers)."""
    if not policy.active or calls <= 0 or short <= 0:
        return _ZERO
    if short * 100 <= policy.threshold_percent * calls:
        return _ZERO
    return policy.amount * short if policy.mode == PenaltyMode.PER_CALL else policy.amount


# --- importing the LATA table ------------------------------------------------------------

LATA_FIELDS: Final = ("npa_nxx", "lata", "state")
_STATE_LENGTH: Final = 2
_LATA_MAX: Final = 5
#: Data rows a LATA file may have: the NANP has under a million NPA-NXX codes.
LATA_ROWS_MAX: Final = 1_000_000
#: Problems listed before the check of a file stops (a file of a million bad rows would otherwise
#: hold the worker and its memory, and the page listing them would be megabytes).
LATA_PROBLEMS_MAX: Final = 100


@dataclass(frozen=True, slots=True)
class LataRow:
    """One accepted row of a LATA file."""

    npa_nxx: str
    lata: str
    state: str


@dataclass(frozen=True, slots=True)
class LataProblem:
    """A refused row: file, row (1-based line of the file), field, value and rule."""

    file: str
    row: int
    field: str
    value: str
    rule: str

    def __str__(self) -> str:
        where = f"{self.file}, row {self.row}" if self.row else f"{self.file}"
        return f"{where}, field {self.field}: {self.value!r} is refused: {self.rule}"


def _nanp_npa_nxx(value: str) -> str | None:
    """Why ``value`` is not an NPA-NXX (None when it is): six digits, neither the area code
    nor the exchange starting with 0 or 1 (the NANP numbering plan)."""
    if len(value) != 6 or not (value.isascii() and value.isdigit()):
        return "must be six digits (NPA then NXX, e.g. 212555)"
    if value[0] in "01" or value[3] in "01":
        return "neither the NPA nor the NXX may start with 0 or 1"
    return None


def parse_lata_csv(text: str, file: str) -> tuple[list[LataRow], list[LataProblem]]:
    """The rows of a LATA CSV (header ``npa_nxx,lata,state``) and every problem in it.

    A file with any problem imports nothing (the caller's rule): every bad row is reported, with
    the file, its line, the field, the value and the rule. A repeated NPA-NXX is a problem (which
    of the two would be meant?)."""
    problems: list[LataProblem] = []
    rows: list[LataRow] = []
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        return [], [LataProblem(file, 1, "header", "", f"not a CSV file ({exc})")]
    if header is None:
        return [], [LataProblem(file, 0, "header", "", "the file is empty; expected the header npa_nxx,lata,state")]
    names = [h.strip().lower() for h in header]
    missing = [name for name in LATA_FIELDS if name not in names]
    if missing:
        return [], [
            LataProblem(
                file,
                1,
                "header",
                ",".join(header)[:80],
                f"missing column(s) {', '.join(missing)}; expected npa_nxx,lata,state",
            )
        ]
    where = {name: names.index(name) for name in LATA_FIELDS}
    seen: dict[str, int] = {}
    line = 1
    count = 0
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            count += 1
            if count > LATA_ROWS_MAX:
                problems.append(
                    LataProblem(file, line, "file", f"row {line}", f"a LATA file has at most {LATA_ROWS_MAX:,} rows")
                )
                break
            if len(problems) >= LATA_PROBLEMS_MAX:
                problems.append(
                    LataProblem(
                        file,
                        line,
                        "file",
                        f"row {line}",
                        f"the check stopped after {LATA_PROBLEMS_MAX} problems; the rest of the file was not checked",
                    )
                )
                break
            values = {name: (cells[i].strip() if i < len(cells) else "") for name, i in where.items()}
            bad = False
            if (rule := _nanp_npa_nxx(values["npa_nxx"])) is not None:
                problems.append(LataProblem(file, line, "npa_nxx", values["npa_nxx"][:40], rule))
                bad = True
            elif values["npa_nxx"] in seen:
                problems.append(
                    LataProblem(
                        file,
                        line,
                        "npa_nxx",
                        values["npa_nxx"],
                        f"repeats row {seen[values['npa_nxx']]}: each NPA-NXX once",
                    )
                )
                bad = True
            lata = values["lata"]
            if not (lata.isascii() and lata.isdigit() and 1 <= len(lata) <= _LATA_MAX):
                problems.append(LataProblem(file, line, "lata", lata[:40], f"must be 1 to {_LATA_MAX} digits"))
                bad = True
            state = values["state"]  # checked before upper(): "ß".upper() is "SS"
            if len(state) == _STATE_LENGTH and state.isascii() and state.isalpha():
                state = state.upper()
            else:
                problems.append(
                    LataProblem(
                        file, line, "state", values["state"][:40], "must be a two-letter state or province code"
                    )
                )
                bad = True
            if not bad:
                seen[values["npa_nxx"]] = line
                rows.append(LataRow(values["npa_nxx"], lata, state))
    except csv.Error as exc:
        problems.append(LataProblem(file, line + 1, "row", "", f"not readable as CSV ({exc})"))
    if not rows and not problems:  # as the DID import: a file without rows is a mistake, and
        # with --replace it would empty the whole table
        problems.append(
            LataProblem(file, 0, "file", "", "has no rows: a LATA file lists at least one npa_nxx,lata,state row")
        )
    return rows, problems
