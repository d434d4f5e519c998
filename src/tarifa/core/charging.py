"""The charging rule of a CDR: what its stored row says, what it costs and which balance pays.

One rule for both ways ingestion rates calls: row by row (``tarifa.cdrs.row_rating``) and a
frame at a time (``tarifa.cdrs.frame_rating``). Rating gives the amounts (the customer's price
from the tariff or a DID's inbound terms, included minutes first; the vendor's cost from the
destination set of the connection used). This rule decides, from a few facts about the call,
which of them the CDR keeps:

* no account (``no_account``, ``ambiguous_account``, ``unknown_pbx``): unratable, nothing kept;
* an account that may not call through this POP: unratable, ``pop_not_allowed``, not charged
  (the authorisation would have refused the call);
* an inbound DID call: rated; billed and charged when answered on the A leg; no vendor side;
* an outbound number that does not normalise: unratable, ``invalid_number``;
* no rate for the number: unratable, ``no_rate``; a forbidden destination: ``forbidden``;
* otherwise rated: the billed seconds and the vendor cost when answered, the customer's price
  when answered on the A leg (a B leg, e.g. FreeSWITCH ``log-b-leg``, is the same call towards
  the carrier: kept for its vendor cost, never charged a second time); margin = price - cost.

Facts, verdicts and ratings are named tuples: immutable, typed, and built in a fraction of a
frozen dataclass's time (the row path builds three per CDR). The facts are a handful of
booleans and enums, so the vectorised path evaluates
:func:`verdict` once per distinct combination in a batch and joins the answers to its rows:
the rule is written once and no row pays a Python call.

A charged call is posted to its balance (:func:`balance_owner`): the account's own balance or
its customer's. The calls of one batch charged to one balance are posted as one Transaction
(:class:`BalanceCharges`), whose description names the calls' time span.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, NamedTuple

from tarifa.core.periods import moment
from tarifa.core.rating import RatingStatus

__all__ = [
    "ACCOUNT_BALANCE",
    "CUSTOMER_BALANCE",
    "FORBIDDEN_REASON",
    "INVALID_NUMBER",
    "NO_RATE",
    "POP_NOT_ALLOWED",
    "BalanceCharge",
    "BalanceCharges",
    "BalanceOwner",
    "CallFacts",
    "CdrRating",
    "Verdict",
    "balance_owner",
    "settle",
    "verdict",
]

POP_NOT_ALLOWED: Final = "pop_not_allowed"
INVALID_NUMBER: Final = "invalid_number"
NO_RATE: Final = "no_rate"
FORBIDDEN_REASON: Final = "forbidden"
ACCOUNT_BALANCE: Final = "a"  # the account's own balance (balance mode "own")
CUSTOMER_BALANCE: Final = "c"  # the customer's balance
_ZERO: Final = Decimal(0)


class CallFacts(NamedTuple):
    """What the rule needs to know of a call, besides its amounts."""

    unmatched: str = ""  # why the call has no account (core.identity reasons); "" when it has one
    pop_allowed: bool = True  # the account's POP restriction admits the CDR's switch
    inbound: bool = False  # priced by a DID's inbound terms (no tariff, no vendor side)
    number_valid: bool = True  # the callee normalised in the account's dialing mode
    rating: RatingStatus = RatingStatus.RATED  # the customer side's outcome (outbound)
    answered: bool = True  # disposition answered and a duration above 0
    a_leg: bool = True  # the call's A leg (other legs are never charged)


class Verdict(NamedTuple):
    """What the stored CDR keeps of its rating."""

    status: RatingStatus
    reason: str = ""  # why it is not rated ("" when rated)
    keeps_number: bool = False  # the normalised number (and the rate's prefix and destination)
    bills: bool = False  # the billed seconds
    charges: bool = False  # the customer's price (and included minutes used)
    pays_vendor: bool = False  # the vendor's cost
    keeps_connection: bool = False  # the connection the call used


def verdict(facts: CallFacts) -> Verdict:
    """The charging rule (module docstring), case by case in the order they are decided."""
    if facts.unmatched:
        return Verdict(RatingStatus.UNRATED, facts.unmatched)
    if not facts.pop_allowed:
        return Verdict(RatingStatus.UNRATED, POP_NOT_ALLOWED)
    charged = facts.answered and facts.a_leg
    if facts.inbound:
        return Verdict(RatingStatus.RATED, keeps_number=True, bills=charged, charges=charged)
    if not facts.number_valid:
        return Verdict(RatingStatus.UNRATED, INVALID_NUMBER)
    if facts.rating == RatingStatus.UNRATED:
        return Verdict(RatingStatus.UNRATED, NO_RATE, keeps_number=True)
    if facts.rating == RatingStatus.FORBIDDEN:
        return Verdict(RatingStatus.FORBIDDEN, FORBIDDEN_REASON, keeps_number=True)
    return Verdict(
        RatingStatus.RATED,
        keeps_number=True,
        bills=facts.answered,
        charges=charged,
        pays_vendor=facts.answered,
        keeps_connection=True,
    )


class CdrRating(NamedTuple):
    """The rating values a CDR row stores."""

    rating_status: RatingStatus
    unrated_reason: str = ""
    number: str = ""
    connection: int | None = None
    prefix: str = ""
    destination: str = ""
    billed_seconds: int = 0
    price: Decimal = _ZERO
    cost: Decimal = _ZERO
    margin: Decimal = _ZERO
    pool_key: str = ""
    pool_seconds: int = 0


def settle(
    decided: Verdict,
    *,
    number: str = "",
    prefix: str = "",
    destination: str = "",
    billed_seconds: int = 0,
    price: Decimal = _ZERO,
    cost: Decimal = _ZERO,
    connection: int | None = None,
    pool_key: str = "",
    pool_seconds: int = 0,
) -> CdrRating:
    """The stored values: the amounts rating found, kept or zeroed as the verdict says.

    ``destination`` is kept whatever the verdict (an unusable number stores why there); the
    included minutes (``pool_key``, ``pool_seconds``) count only for a charged call.
    """
    charges = decided.charges
    kept_price = price if charges else _ZERO
    kept_cost = cost if decided.pays_vendor else _ZERO
    return CdrRating(
        rating_status=decided.status,
        unrated_reason=decided.reason,
        number=number if decided.keeps_number else "",
        connection=connection if decided.keeps_connection else None,
        prefix=prefix if decided.keeps_number else "",
        destination=destination,
        billed_seconds=billed_seconds if decided.bills else 0,
        price=kept_price,
        cost=kept_cost,
        margin=kept_price - kept_cost,
        pool_key=pool_key if charges else "",
        pool_seconds=pool_seconds if charges else 0,
    )


class BalanceOwner(NamedTuple):
    """The balance a charge goes to: (:data:`ACCOUNT_BALANCE`, account id) or
    (:data:`CUSTOMER_BALANCE`, customer id). A tuple: the ledger's id allocation keys on it."""

    kind: str
    id: int


def balance_owner(*, own_balance: bool, account_id: int, customer_id: int) -> BalanceOwner:
    """An account with its own balance (balance mode ``own``) pays its calls; any other
    account's calls are paid from its customer's balance."""
    return BalanceOwner(ACCOUNT_BALANCE, account_id) if own_balance else BalanceOwner(CUSTOMER_BALANCE, customer_id)


@dataclass(slots=True)
class BalanceCharge:
    """The calls of one batch charged to one balance: posted as one Transaction."""

    owner: BalanceOwner
    customer_id: int
    micros: int = 0  # the sum of their prices, in 10**-6 units
    calls: int = 0
    first_us: int = 0  # the earliest and latest start time, UTC microseconds since 1970
    last_us: int = 0

    @property
    def amount(self) -> Decimal:
        """What the balance moves by: minus the prices."""
        return -Decimal(self.micros).scaleb(-6)

    @property
    def description(self) -> str:
        first, last = moment(self.first_us), moment(self.last_us)
        return (
            f"{self.calls} call{'s' if self.calls != 1 else ''} started {first:%Y-%m-%d %H:%M:%S}"
            f" to {last:%Y-%m-%d %H:%M:%S} UTC"
        )


@dataclass(slots=True)
class BalanceCharges:
    """The charges of one batch, per balance, summed call by call or group by group."""

    by_owner: dict[BalanceOwner, BalanceCharge] = field(default_factory=dict)

    def add(self, owner: BalanceOwner, customer_id: int, micros: int, calls: int, first_us: int, last_us: int) -> None:
        total = self.by_owner.get(owner)
        if total is None:
            self.by_owner[owner] = BalanceCharge(owner, customer_id, micros, calls, first_us, last_us)
            return
        total.micros += micros
        total.calls += calls
        total.first_us = min(total.first_us, first_us)
        total.last_us = max(total.last_us, last_us)

    def to_post(self) -> list[BalanceCharge]:
        """The charges that move money, in a fixed order (balances are locked in it)."""
        return [self.by_owner[owner] for owner in sorted(self.by_owner) if self.by_owner[owner].micros != 0]
