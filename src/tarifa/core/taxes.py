"""Taxes on an invoice: the contract between the invoice run and a tax engine.

The invoice run (``tarifa.services.invoicing``) hands a tax engine the invoice's taxable lines and the
customer's tax facts; the engine answers with tax lines, each naming its base so that it can be
recomputed from the invoice alone (``amount = base × rate`` for a percentage tax). The built-in engine
(``tarifa.billing.taxes``) reads the operator's tax tables; another engine (a BillSoft-like service)
implements :class:`TaxEngine` and is chosen in configuration.

The built-in tables' rules live here too, pure: :class:`TaxRule` (one row of the operator's tax table),
:func:`check_rule` (what a row may hold), :func:`applies` (which rows bind a customer on a date),
:func:`compute` (the tax lines of one invoice) and :func:`check_tax_line` (a tax line recomputed from
its base). docs/taxes.md tells the whole story.

Computation (``compute``), for the rules that apply, in their ``order`` (then name):

* the base of a tax is the sum of the invoice's taxable lines (sections in :data:`TAXABLE_SECTIONS`);
  an origin-based tax (``origin_country`` set, ``origin_region`` optionally) takes only the calls lines
  whose caller origin matches; a tax whose base is zero gives no line;
* a compounding tax adds the amounts of the tax lines before it to its base (tax on tax, as Quebec's
  QST on GST once was); an origin-based tax cannot compound (its base is one origin's calls, the earlier
  taxes are on the whole invoice);
* a percentage tax's amount is ``base × rate / 100`` rounded half-up to the customer's billing decimals,
  per tax line (never the sum of per-line roundings); a fixed tax's amount is its amount, in its currency,
  which must be the customer's (nothing converts);
* an exempt customer gets no tax line.

Pure: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Final, Protocol

from tarifa.core.problems import Problem

__all__ = [
    "FIXED",
    "MAX_PERCENT",
    "PERCENT",
    "TAXABLE_SECTIONS",
    "TaxCustomer",
    "TaxEngine",
    "TaxKind",
    "TaxLine",
    "TaxProblem",
    "TaxRefused",
    "TaxRule",
    "TaxableLine",
    "applies",
    "check_duplicate",
    "check_order",
    "check_rule",
    "check_tax_line",
    "compute",
    "parse_rate",
]


@dataclass(frozen=True, slots=True)
class TaxableLine:
    """One invoice line before tax. ``section`` is a :class:`tarifa.core.invoices.LineSection` value;
    ``origin_country`` / ``origin_region`` say where the calls of a calls line came from (the caller's
    country, ISO 3166-1 alpha-2, and region code), for origin-based taxes; None when unknown or not a call."""

    key: str
    section: str
    description: str
    amount: Decimal
    origin_country: str | None = None
    origin_region: str | None = None


@dataclass(frozen=True, slots=True)
class TaxCustomer:
    """What a tax engine knows of the customer billed."""

    customer_id: int
    country: str  # ISO 3166-1 alpha-2, "" when unknown
    region: str  # "" when unknown
    currency: str
    exempt: bool
    decimals: int  # the customer's billing decimals: tax amounts are rounded to them (half-up)
    flag: str = ""  # the customer's "VAT/Tax flag" (VAT, TAX; NONE or "": no table tax applies)
    path: str = ""  # the customer's place in the tree (Customer.path): a tax scoped to a subtree matches it


@dataclass(frozen=True, slots=True)
class TaxLine:
    """One tax on the invoice. ``rate`` is a percentage (None for a fixed amount); ``base`` the amount it
    was computed on (for a compounding tax, base includes the taxes before it)."""

    name: str
    rate: Decimal | None
    base: Decimal
    amount: Decimal
    compound: bool = False
    fixed: bool = False  # a fixed amount (rate None): amount is the tax's amount whatever the base
    decimals: int | None = None  # the rounding of amount (the customer's billing decimals); None: not rounded


class TaxEngine(Protocol):
    """Computes the taxes of one invoice. Must be deterministic: the same input gives the same lines."""

    def taxes(self, customer: TaxCustomer, lines: Sequence[TaxableLine], on: date) -> list[TaxLine]: ...


# ---------------------------------------------------------------------------------------------
# The built-in tax tables' rules


class TaxKind(StrEnum):
    PERCENT = "percent"
    FIXED = "fixed"


PERCENT: Final = TaxKind.PERCENT
FIXED: Final = TaxKind.FIXED
MAX_PERCENT: Final = Decimal(100)
MAX_FIXED: Final = Decimal(1_000_000)
RATE_PLACES: Final = 4

#: the invoice sections a tax is computed on (usage lines repeat the calls by location, deposits are
#: money held, penalties are compensation, taxes are not taxed twice except by compounding)
TAXABLE_SECTIONS: Final = frozenset({"calls", "services", "discount", "adjustment"})


#: one broken rule of a tax row
TaxProblem = Problem


class TaxRefused(ValueError):
    """A tax that cannot be computed (a fixed tax in another currency than the customer's)."""

    def __init__(self, problem: TaxProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass(frozen=True, slots=True)
class TaxRule:
    """One row of the operator's tax table.

    ``flag``: the customers it binds by their "VAT/Tax flag" (VAT or TAX). ``scope_path``: only the
    customer at that place of the tree and its subtree (a reseller, or one customer); None: every
    customer. ``valid_from`` <= day < ``valid_to`` (None: open)."""

    name: str
    kind: str  # TaxKind
    rate: Decimal  # percent for a percentage tax; the amount for a fixed tax
    flag: str
    order: int = 0
    compound: bool = False
    currency: str = ""  # a fixed tax's currency
    origin_country: str = ""
    origin_region: str = ""
    valid_from: date | None = None
    valid_to: date | None = None
    scope_path: str | None = None
    scope_currency: str | None = None  # the scoped customer's currency, to check a fixed tax against
    key: str = ""  # the row's identity (e.g. its id), named in problems


def parse_rate(text: str, label: str = "Rate") -> Decimal:
    """A rate or amount typed by a person: plain decimal notation, finite; else :class:`TaxRefused`."""
    raw = text.strip()
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or "e" in raw.lower():
        raise TaxRefused(
            TaxProblem("rate", label, text, "must be a decimal number in plain notation, e.g. 7.5", "malformed")
        )
    return value


def check_rule(rule: TaxRule) -> list[TaxProblem]:
    """Everything wrong with one tax row, each naming field, value and rule."""
    problems: list[TaxProblem] = []
    r = rule
    label = "Rate (%)" if r.kind == PERCENT else "Amount"
    if r.kind not in (PERCENT, FIXED):
        problems.append(TaxProblem("kind", "Kind", r.kind, "must be percent or fixed", "kind"))
    if not isinstance(r.rate, Decimal) or not r.rate.is_finite():
        problems.append(TaxProblem("rate", label, r.rate, "must be a finite decimal number", "malformed"))
        return problems
    if r.rate < 0:
        problems.append(TaxProblem("rate", label, r.rate, "must not be negative (a discount is not a tax)", "negative"))
    elif r.rate == 0:
        problems.append(TaxProblem("rate", label, r.rate, "must be above 0 (end the tax's validity instead)", "zero"))
    exponent = r.rate.normalize().as_tuple().exponent  # 20.000000 as stored is 20: trailing zeros are no places
    if isinstance(exponent, int) and -exponent > (RATE_PLACES if r.kind == PERCENT else 6):
        places = RATE_PLACES if r.kind == PERCENT else 6
        problems.append(TaxProblem("rate", label, r.rate, f"must have at most {places} decimal places", "places"))
    if r.kind == PERCENT and r.rate > MAX_PERCENT:
        problems.append(TaxProblem("rate", label, r.rate, f"must be at most {MAX_PERCENT}", "range"))
    if r.kind == FIXED and r.rate > MAX_FIXED:
        problems.append(TaxProblem("rate", label, r.rate, f"must be at most {MAX_FIXED}", "range"))
    if r.kind == FIXED and not r.currency:
        problems.append(TaxProblem("currency", "Currency", None, "a fixed tax needs its currency", "currency"))
    if r.kind == PERCENT and r.currency:
        problems.append(TaxProblem("currency", "Currency", r.currency, "only a fixed tax has a currency", "currency"))
    if r.kind == FIXED and r.currency and r.scope_currency and r.currency != r.scope_currency:
        problems.append(
            TaxProblem(
                "currency",
                "Currency",
                r.currency,
                f"must be the currency of the customers it applies to ({r.scope_currency}): nothing converts",
                "currency",
            )
        )
    if r.flag not in ("VAT", "TAX"):
        problems.append(TaxProblem("flag", "Applies to flag", r.flag, "must be VAT or TAX", "flag"))
    if r.order < 0:
        problems.append(TaxProblem("order", "Order", r.order, "must not be negative", "order"))
    if r.origin_region and not r.origin_country:
        problems.append(
            TaxProblem("origin_region", "Origin region", r.origin_region, "needs the origin country", "origin")
        )
    if r.compound and r.origin_country:
        problems.append(
            TaxProblem(
                "compound",
                "Compound",
                "on",
                "an origin-based tax cannot compound: its base is one origin's calls, the earlier taxes are on the "
                "whole invoice",
                "compound_origin",
            )
        )
    if r.valid_from and r.valid_to and r.valid_to <= r.valid_from:
        problems.append(
            TaxProblem("valid_to", "Valid to", r.valid_to, f"must be after valid from {r.valid_from}", "validity")
        )
    return problems


def _overlap(a: TaxRule, b: TaxRule) -> bool:
    if a.flag != b.flag:
        return False
    if a.valid_to is not None and b.valid_from is not None and a.valid_to <= b.valid_from:
        return False
    if b.valid_to is not None and a.valid_from is not None and b.valid_to <= a.valid_from:
        return False
    pa, pb = a.scope_path, b.scope_path
    return pa is None or pb is None or pa.startswith(pb) or pb.startswith(pa)


def check_order(rule: TaxRule, others: Sequence[TaxRule]) -> list[TaxProblem]:
    """A compounding tax needs a strict order with the taxes that may bind the same customer on the
    same day: two of them at the same place would compound on each other (a loop) or not, depending on
    how they happen to be sorted. Refused, naming the other tax."""
    problems: list[TaxProblem] = []
    for other in others:
        if other.key == rule.key or other.order != rule.order or not (rule.compound or other.compound):
            continue
        if _overlap(rule, other):
            problems.append(
                TaxProblem(
                    "order",
                    "Order",
                    rule.order,
                    f"tax {other.name!r} has the same order and may apply to the same customers; a compounding tax "
                    "must come strictly before or after the others (compounding on each other would loop)",
                    "compound_loop",
                )
            )
    return problems


def _same_name(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _origins_overlap(a: TaxRule, b: TaxRule) -> bool:
    """Empty origin: every line; a country: its lines; a region narrows its country."""
    if not a.origin_country or not b.origin_country:
        return True
    if a.origin_country.upper() != b.origin_country.upper():
        return False
    return not a.origin_region or not b.origin_region or a.origin_region.upper() == b.origin_region.upper()


def check_duplicate(rule: TaxRule, others: Sequence[TaxRule]) -> list[TaxProblem]:
    """A tax row with the same name as another that may bind the same customers (same flag, overlapping
    scope, origin and validity) is a second copy of that tax: both would be charged, taxing the customers
    twice. Refused, naming the other row; a rate change is made by ending the old row's validity and
    starting the new row on that day."""
    problems: list[TaxProblem] = []
    for other in others:
        if other.key == rule.key or not _same_name(rule.name, other.name):
            continue
        if _overlap(rule, other) and _origins_overlap(rule, other):
            problems.append(
                TaxProblem(
                    "name",
                    "Name",
                    rule.name,
                    f"tax {other.key} {other.name!r} has the same name and applies to the same {rule.flag} customers "
                    "on the same days (they would be taxed twice); end its validity or change it instead",
                    "duplicate",
                )
            )
    return problems


def applies(rule: TaxRule, customer: TaxCustomer, on: date) -> bool:
    """Whether the row binds this customer on this day (exemption aside: :func:`compute` handles it)."""
    if not customer.flag or customer.flag != rule.flag:
        return False
    if rule.valid_from is not None and on < rule.valid_from:
        return False
    if rule.valid_to is not None and on >= rule.valid_to:
        return False
    return rule.scope_path is None or customer.path.startswith(rule.scope_path)


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def _matches_origin(rule: TaxRule, line: TaxableLine) -> bool:
    if not rule.origin_country:
        return True
    if line.section != "calls" or (line.origin_country or "").upper() != rule.origin_country.upper():
        return False
    return not rule.origin_region or (line.origin_region or "").upper() == rule.origin_region.upper()


def compute(customer: TaxCustomer, lines: Sequence[TaxableLine], rules: Sequence[TaxRule], on: date) -> list[TaxLine]:
    """The tax lines of one invoice (the module docstring gives the rules)."""
    if customer.exempt:
        return []
    taxable = [line for line in lines if line.section in TAXABLE_SECTIONS]
    chosen = sorted((r for r in rules if applies(r, customer, on)), key=lambda r: (r.order, r.name, r.key))
    out: list[TaxLine] = []
    for rule in chosen:
        base = sum((line.amount for line in taxable if _matches_origin(rule, line)), Decimal(0))
        if rule.compound:
            base += sum((t.amount for t in out), Decimal(0))
        if base == 0 or (base < 0 and rule.kind == FIXED):
            continue
        name = rule.name
        if rule.kind == FIXED:
            if rule.currency != customer.currency:
                raise TaxRefused(
                    TaxProblem(
                        "currency",
                        f"Tax {rule.name!r} currency",
                        rule.currency,
                        f"must be the customer's currency {customer.currency}: a fixed tax is never converted",
                        "currency",
                    )
                )
            out.append(
                TaxLine(name, None, base, _round(rule.rate, customer.decimals), rule.compound, True, customer.decimals)
            )
        else:
            amount = _round(base * rule.rate / 100, customer.decimals)
            out.append(TaxLine(name, rule.rate, base, amount, rule.compound, False, customer.decimals))
    return out


def check_tax_line(line: TaxLine, decimals: int | None = None) -> list[TaxProblem]:
    """A tax line recomputed from its base: ``amount = round_half_up(base × rate / 100, decimals)`` for
    a percentage tax (``decimals``: the given ones, else the line's own; none: exact). A fixed tax
    (``rate`` None) is only checked for its sign."""
    places = decimals if decimals is not None else line.decimals
    if line.rate is None:
        if line.amount < 0:
            return [TaxProblem("amount", f"Tax {line.name!r} amount", line.amount, "must not be negative", "negative")]
        return []
    exact = line.base * line.rate / 100
    expected = exact if places is None else _round(exact, places)
    if line.amount == expected:
        return []
    return [
        TaxProblem(
            "amount",
            f"Tax {line.name!r} amount",
            line.amount,
            f"must be base × rate: {line.base} × {line.rate}% = {expected}",
            "tax_amount",
        )
    ]
