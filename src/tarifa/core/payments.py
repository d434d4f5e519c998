"""Money an operator adds to or takes from a customer's balance by hand: payments, credits,
refunds and adjustments (DESIGN.md §6: balances move only through Transactions).

One rule for every door (back office, ``tarifa payment add``, the API to come): each door turns
its input into a :class:`MoneyRequest`, reads a :class:`BalanceState` under the balance lock and
calls :func:`signed_amount`, which either returns the amount to post or raises :class:`Refused`
naming the field, the value and the rule.

What each kind does to the balance (a positive posting raises it):

============  ========  =============================================================
kind          sign      rule
============  ========  =============================================================
payment       ``+a``    money received from the customer
credit        ``+a``    money given to the customer (goodwill, a credit note); reason
                        required
refund        ``-a``    money paid back: at most what the customer has paid and not had
                        back yet (payments - refunds), and at most the balance, so credits
                        are never cashed out and a refund never leaves a debt; reason
                        required
adjustment    ``±a``    a correction either way (the amount's sign is the direction, never
                        zero); reason required
============  ========  =============================================================

``a`` is positive (an adjustment may be negative), has at most 6 decimal places and at most
:data:`MONEY_MAX` in size, and the balance after the posting stays within ``±MONEY_MAX``: money
columns hold integer micro-units in a signed 64-bit column (``tarifa.fields.ExactDecimalField``).
The currency, when given, must be the customer's: a balance has one currency and nothing here
converts.

Pure: no Django, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Final

__all__ = [
    "ADJUSTMENT",
    "CREDIT",
    "KINDS",
    "METHODS",
    "MONEY_MAX",
    "MONEY_PLACES",
    "PAYMENT",
    "REFUND",
    "BalanceState",
    "MoneyRequest",
    "Refused",
    "TransactionKind",
    "invoice_refusal",
    "parse_amount",
    "signed_amount",
]


class TransactionKind(StrEnum):
    """Every kind of ledger transaction (the Transaction model's ``kind``); the back office and
    the CLI enter the four of :data:`KINDS` by hand, the others come from rating and billing."""

    CALL_CHARGE = "call_charge"
    PAYMENT = "payment"
    CREDIT = "credit"
    REFUND = "refund"
    RECURRING_FEE = "recurring_fee"
    ONE_TIME_FEE = "one_time_fee"
    TAX = "tax"
    DISCOUNT = "discount"
    PENALTY = "penalty"
    DEPOSIT = "deposit"
    ADJUSTMENT = "adjustment"
    MINIMUM_CHARGE = "minimum_charge"


PAYMENT: Final = TransactionKind.PAYMENT
CREDIT: Final = TransactionKind.CREDIT
REFUND: Final = TransactionKind.REFUND
ADJUSTMENT: Final = TransactionKind.ADJUSTMENT
KINDS: Final = (PAYMENT, CREDIT, REFUND, ADJUSTMENT)
#: how money came in or went out (the Transaction's ``method``; empty: not said, e.g. a call charge)
METHODS: Final = ("bank", "cash", "cheque", "card", "other")
#: kinds whose Transaction must say why
REASON_REQUIRED: Final = frozenset({CREDIT, REFUND, ADJUSTMENT})

MONEY_PLACES: Final = 6
#: the largest amount a money column holds: 2**63 - 1 micro-units
MONEY_MAX: Final = Decimal(2**63 - 1).scaleb(-MONEY_PLACES)
REFERENCE_MAX: Final = 100  # Transaction.reference
REASON_MAX: Final = 200  # Transaction.description
#: how people write money: an optional sign, digits, an optional fraction (no exponent, no separators)
_PLAIN_DECIMAL: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


class Refused(ValueError):
    """A refused money movement: ``<field> <value> is refused: <rule>``."""

    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        shown = repr(value) if isinstance(value, str) else ("(empty)" if value is None else str(value))
        super().__init__(f"{field.capitalize()} {shown} is refused: {rule}")


@dataclass(frozen=True, slots=True)
class MoneyRequest:
    """What the operator asked for, as typed (the amount already a ``Decimal``)."""

    kind: str
    amount: Decimal
    reference: str
    reason: str = ""
    currency: str | None = None  # None: the customer's
    method: str = ""  # one of METHODS, or empty


@dataclass(frozen=True, slots=True)
class BalanceState:
    """The balance the movement applies to, read under its lock."""

    balance: Decimal
    currency: str
    paid: Decimal  # payments received so far
    refunded: Decimal  # refunds made so far (a positive number)


def _shown(amount: Decimal) -> str:
    """An amount as typed, in plain digits (never ``1E+30``)."""
    return format(amount, "f") if amount.is_finite() else str(amount)


def parse_amount(text: str | None) -> Decimal:
    """A typed amount as an exact ``Decimal`` (``"12.50"``; no thousands separators, no floats)."""
    if text is None or not str(text).strip():
        raise Refused("amount", None, "required: a decimal number such as 12.50")
    if not isinstance(text, str) or not _PLAIN_DECIMAL.fullmatch(text.strip()):
        # plain notation only: "1e3" is not how anyone writes a thousand on a receipt
        raise Refused(
            "amount",
            text,
            "must be a decimal number in plain notation such as 12.50 or -2.50 (no exponent, no thousands separators)",
        )
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise Refused("amount", text, "must be a decimal number such as 12.50") from None
    return amount


def signed_amount(request: MoneyRequest, state: BalanceState) -> Decimal:
    """The amount to post (positive raises the balance), or :class:`Refused`."""
    kind, amount = request.kind, request.amount
    if kind not in KINDS:
        raise Refused("kind", kind, f"must be one of {', '.join(KINDS)}")
    if not amount.is_finite():
        raise Refused("amount", _shown(amount), "must be a decimal number such as 12.50")
    if kind == ADJUSTMENT:
        if amount == 0:
            raise Refused("amount", _shown(amount), "an adjustment must not be zero (its sign is the direction)")
    elif amount <= 0:
        raise Refused("amount", _shown(amount), f"a {kind} must be greater than 0")
    if abs(amount) > MONEY_MAX:
        raise Refused("amount", _shown(amount), f"must be at most {MONEY_MAX} in size")
    units = amount.scaleb(MONEY_PLACES)
    if units != units.to_integral_value():
        raise Refused("amount", _shown(amount), f"at most {MONEY_PLACES} decimal places")
    if request.method and request.method not in METHODS:
        raise Refused("method", request.method, f"must be one of {', '.join(METHODS)}")
    if request.currency is not None and request.currency != state.currency:
        raise Refused("currency", request.currency, f"must be the customer's currency {state.currency}")
    reference = request.reference
    if not reference or not reference.strip():
        raise Refused("reference", reference or None, "required (a receipt, bank or ticket reference; unique)")
    if reference != reference.strip() or not reference.isprintable():
        raise Refused("reference", reference, "must be printable text without leading or trailing spaces")
    if len(reference) > REFERENCE_MAX:
        raise Refused("reference", reference, f"at most {REFERENCE_MAX} characters (it has {len(reference)})")
    if kind in REASON_REQUIRED and not request.reason.strip():
        raise Refused("reason", request.reason or None, f"required for {'an' if kind == ADJUSTMENT else 'a'} {kind}")
    if len(request.reason) > REASON_MAX:
        raise Refused("reason", request.reason, f"at most {REASON_MAX} characters (it has {len(request.reason)})")
    signed = -amount if kind == REFUND else amount
    if kind == REFUND:
        refundable = state.paid - state.refunded
        if amount > refundable:
            raise Refused(
                "amount", _shown(amount), f"a refund must not exceed the payments not yet refunded ({refundable})"
            )
        if amount > state.balance:
            raise Refused("amount", _shown(amount), f"a refund must not exceed the balance ({state.balance})")
    after = state.balance + signed
    if abs(after) > MONEY_MAX:
        raise Refused("amount", _shown(amount), f"the balance after it ({after}) must stay within ±{MONEY_MAX}")
    return signed


def invoice_refusal(money_kind: str, invoice_kind: str, invoice_status: str) -> str | None:
    """Why money of ``money_kind`` may not be allocated to an invoice of this kind and status (the
    rule shown after the invoice's number), or None when it may: only a payment or a credit, and
    only to an issued invoice that is not paid yet."""
    if money_kind not in (PAYMENT, CREDIT):
        return f"only a payment or a credit is allocated to an invoice, not a {money_kind}"
    if invoice_kind != "invoice":
        return "is a credit note: money is allocated only to an invoice"
    reasons = {
        "paid": "it is already paid",
        "void": "it is void",
        "draft": "it is a draft: issue it before allocating money to it",
    }
    if invoice_status in reasons:
        return reasons[invoice_status]
    if invoice_status != "issued":
        return f"its status is {invoice_status}: money is allocated only to an issued invoice"
    return None
