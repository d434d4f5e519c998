"""One round of notices, as the worker and ``tarifa notices run`` do it: the checks (low balances,
expiring cards, invoices whose notice was missed), then the outbox delivered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from tarifa import config
from tarifa.notices.checks import check_card_expiry, check_low_balances
from tarifa.notices.events import queue_missed_invoices
from tarifa.notices.sender import Delivery, deliver


@dataclass(frozen=True)
class Round:
    low_balance: int
    card_expiry: int
    invoices: int
    delivery: Delivery


def check(now: datetime | None = None) -> tuple[int, int, int]:
    """Queue what is due: (low-balance, card-expiry, missed invoice) notices queued."""
    now = now or timezone.now()
    return (
        check_low_balances(now),
        check_card_expiry(config.notice_card_expiry_days(), now),
        queue_missed_invoices(now),
    )


def run_notices(now: datetime | None = None) -> Round:
    now = now or timezone.now()
    low, cards, invoices = check(now)
    return Round(low, cards, invoices, deliver(now))
