"""Notices: when a low-balance or card-expiry e-mail is due, how a failed delivery is retried, and
which addresses and header texts are safe to hand to SMTP.

Pure rules over plain values (no Django, no I/O); ``tarifa/notices`` keeps the state in the database
(what was sent when, what is queued) and asks these functions what to do with it. Docs:
docs/notices.md.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum


class NoticeKind(StrEnum):
    """What a notice is about; each kind has its template and its placeholders."""

    LOW_BALANCE = "low_balance"
    CARD_EXPIRY = "card_expiry"
    INVOICE_ISSUED = "invoice_issued"
    CREDIT_NOTE_ISSUED = "credit_note_issued"
    PAYMENT_RECEIVED = "payment_received"


class OutboxStatus(StrEnum):
    """Where a queued e-mail is: waiting, being handed to SMTP, waiting for a retry, delivered,
    or given up (after ``MAX_ATTEMPTS``; "send again" in the back office queues it anew)."""

    PENDING = "pending"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"


# --- low balance --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LowBalance:
    """What the low-balance rule needs about one customer or account.

    ``funds``: what the balance may still pay (``judgement.spendable``); ``threshold``: None when
    no notice is wanted; ``last_sent_at``: the last low-balance notice queued for it;
    ``rearmed_at``: the last time money was added (or the threshold changed)."""

    funds: Decimal
    threshold: Decimal | None
    last_sent_at: datetime | None
    rearmed_at: datetime | None


def below_threshold(funds: Decimal, threshold: Decimal | None) -> bool:
    """Funds strictly below a set threshold (funds equal to it are not "below")."""
    return threshold is not None and funds < threshold


def low_balance_due(state: LowBalance, now: datetime, day_of: Callable[[datetime], date] | None = None) -> bool:
    """Send a low-balance notice now?

    * not below the threshold (or none set): no;
    * never notified: yes;
    * money added (or the threshold changed) since the last notice: yes -- a new crossing;
    * else once a day: yes when the last notice was on an earlier day (``day_of`` gives the
      customer's local day of a UTC time; UTC when not given).
    """
    if not below_threshold(state.funds, state.threshold):
        return False
    if state.last_sent_at is None:
        return True
    if state.rearmed_at is not None and state.rearmed_at > state.last_sent_at:
        return True
    local = day_of or _utc_day
    return local(state.last_sent_at) < local(now)


def _utc_day(moment: datetime) -> date:
    return moment.date()


def low_balance_key(target: str, day: date, rearmed_at: datetime | None) -> str:
    """The unique key of a low-balance notice: one per target (``customer:12`` or ``account:34``),
    local day and arming (money added re-arms). Two workers deciding the same thing build the same
    key, and the database keeps one row."""
    armed = int(rearmed_at.timestamp()) if rearmed_at is not None else 0
    return f"low_balance:{target}:{day.isoformat()}:{armed}"


# --- card expiry --------------------------------------------------------------------------------

DEFAULT_EXPIRY_WINDOWS: tuple[int, ...] = (30, 7)


def card_expires_on(year: int, month: int) -> date:
    """A card is valid through the last day of its expiry month."""
    return date(year, month, calendar.monthrange(year, month)[1])


def expiry_window(year: int, month: int, today: date, windows: Sequence[int]) -> int | None:
    """The notice window ``today`` falls in for a card expiring at the end of ``month/year``: the
    smallest of ``windows`` (days before expiry) that is at least the days left; None when the card
    has expired or no window is reached. A worker that was down skips straight to the narrowest
    window reached, so a card never gets a stale "30 days" notice a week before expiry."""
    left = (card_expires_on(year, month) - today).days
    if left < 0:
        return None
    reached = [w for w in windows if left <= w]
    return min(reached) if reached else None


def expiry_months(today: date, horizon_days: int) -> list[tuple[int, int]]:
    """The (year, month) pairs of cards that expire between ``today`` and ``horizon_days`` later:
    the few months one query over the payment methods filters on."""
    last = today + timedelta(days=horizon_days)
    months = []
    year, month = today.year, today.month
    while (year, month) <= (last.year, last.month):
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def card_expiry_key(method_id: int, year: int, month: int, window: int) -> str:
    """One notice per payment method, expiry date and window."""
    return f"card_expiry:{method_id}:{year:04d}-{month:02d}:{window}"


def parse_windows(raw: str) -> tuple[int, ...]:
    """``"30,7"`` -> ``(30, 7)``; ValueError naming the rule on anything else."""
    values = []
    for part in raw.split(","):
        part = part.strip()
        if not part.isdigit() or not 1 <= int(part) <= 365:
            raise ValueError("must be day counts from 1 to 365 separated by commas, e.g. 30,7")
        values.append(int(part))
    if not values:
        raise ValueError("must name at least one day count, e.g. 30,7")
    return tuple(sorted(set(values), reverse=True))


# --- delivery -----------------------------------------------------------------------------------

MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=6)


def retry_delay(attempts: int) -> timedelta | None:
    """How long to wait after ``attempts`` failed deliveries: 1 min, 2, 4, ... capped at 6 h; None
    once ``MAX_ATTEMPTS`` failed (the notice is marked failed; an operator may send it again)."""
    if attempts >= MAX_ATTEMPTS:
        return None
    delay: timedelta = FIRST_RETRY * 2 ** max(attempts - 1, 0)
    return min(delay, LONGEST_RETRY)


# --- addresses and headers ----------------------------------------------------------------------

_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$"
)


@dataclass(frozen=True)
class Recipients:
    good: tuple[str, ...]
    refused: tuple[str, ...]


def recipients(*lists: str) -> Recipients:
    """The addresses of comma-separated lists (the first non-empty list wins: the notice's own
    addresses, else the customer's e-mail). An address with a line break, a space, a display name
    or anything but ``local@domain`` is refused, never passed to SMTP (header injection)."""
    for raw in lists:
        parts = [p.strip(" \t") for p in (raw or "").split(",")]
        parts = [p for p in parts if p]
        if parts:
            good = tuple(dict.fromkeys(p for p in parts if _ADDRESS.match(p) and len(p) <= 254))
            refused = tuple(p for p in parts if p not in good)
            return Recipients(good, refused)
    return Recipients((), ())


def header_text(value: str, limit: int = 200) -> str:
    """Text safe in a mail header (the subject): every run of white space, CR and LF included,
    becomes one space; other control characters are dropped; cut at ``limit`` characters."""
    flat = " ".join(value.split())
    kept = "".join(ch for ch in flat if ch.isprintable())
    return kept[:limit]


def money_text(amount: Decimal, places: int = 2) -> str:
    """An amount as people read it in a notice: at least ``places`` decimals, more only when the
    amount has them (0.0125 stays 0.0125; 5 shows as 5.00)."""
    exponent = amount.normalize().as_tuple().exponent
    shown = max(places, -exponent) if isinstance(exponent, int) else places
    return f"{amount:.{shown}f}"


# --- placeholders -------------------------------------------------------------------------------

#: the placeholders every notice template may use
COMMON_PLACEHOLDERS: tuple[str, ...] = ("customer_name", "company", "account_code", "currency")

#: the placeholders of each kind (docs/notices.md lists them with their meaning)
PLACEHOLDERS: dict[NoticeKind, tuple[str, ...]] = {
    NoticeKind.LOW_BALANCE: (*COMMON_PLACEHOLDERS, "account_name", "available_funds", "threshold", "balance"),
    NoticeKind.CARD_EXPIRY: (*COMMON_PLACEHOLDERS, "card", "expiry", "expires_on", "days_left"),
    NoticeKind.INVOICE_ISSUED: (
        *COMMON_PLACEHOLDERS,
        "invoice_number",
        "total",
        "issued_on",
        "due_date",
        "period_start",
        "period_end",
    ),
    NoticeKind.CREDIT_NOTE_ISSUED: (
        *COMMON_PLACEHOLDERS,
        "credit_note_number",
        "invoice_number",
        "amount",
        "net",
        "tax",
        "issued_on",
        "period_start",
        "period_end",
    ),
    NoticeKind.PAYMENT_RECEIVED: (*COMMON_PLACEHOLDERS, "amount", "balance", "reference", "paid_on"),
}
