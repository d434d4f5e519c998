"""Late fees on overdue invoices (``tarifa penalties run``, and the worker): docs/penalties.md.

Which invoices owe what on a day is :func:`tarifa.core.penalties.penalties_due`; this module reads the
issued invoices past their due date and the operators' late-fee policies (two queries), and posts each
penalty period once as a Transaction of kind penalty whose reference is
``penalty:invoice:<invoice id>:<period>``. References already used are skipped; one that another
worker posts at the same moment is refused by the unique reference and skipped too, so running the job
twice, late, or on two machines posts every penalty exactly once. The next invoice run picks the
penalty Transactions up.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction

from tarifa.billing import ledger
from tarifa.billing.allocation import allocated_by_invoice
from tarifa.billing.choices import InvoiceKind, InvoiceStatus, TransactionKind
from tarifa.billing.models import Invoice, LateFeePolicy, Transaction
from tarifa.core import penalties as rules
from tarifa.core.money import shown_amount

__all__ = ["PenaltyRun", "run_penalties"]


@dataclass
class PenaltyRun:
    invoices: int = 0  # overdue invoices under a policy
    posted: int = 0
    amount: Decimal = Decimal(0)
    failed: list[tuple[str, str]] = field(default_factory=list)


def _places(amount: Decimal) -> int:
    exponent = amount.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _policies() -> list[tuple[str, str, rules.PenaltyPolicy]]:
    """(operator path, currency, policy) of every active policy."""
    return [
        (p.operator.path, p.currency, p.as_policy())
        for p in LateFeePolicy.objects.filter(active=True).select_related("operator")
    ]


def run_penalties(on: date | None = None) -> PenaltyRun:
    """Post every penalty period begun by ``on`` (default today, UTC) not posted yet."""
    day = on or datetime.now(UTC).date()
    result = PenaltyRun()
    policies = _policies()
    if not policies:
        return result
    rows = list(
        Invoice.objects.filter(
            kind=InvoiceKind.INVOICE, status=InvoiceStatus.ISSUED, total__gt=0, issued_at__isnull=False
        ).values_list(
            "pk",
            "number",
            "customer_id",
            "due_date",
            "issued_at",
            "total",
            "customer__path",
            "customer__currency",
            "customer__billing_decimals",
            "customer__payment_term_days",
        )
    )
    # What is overdue is what the payments allocated to the invoice have not covered yet.
    paid = allocated_by_invoice([row[0] for row in rows])
    by_policy: dict[int, list[rules.OverdueInvoice]] = defaultdict(list)
    for pk, number, customer_id, due, issued_at, total, path, currency, decimals, term in rows:
        total = total - paid.get(pk, Decimal(0))
        if total <= 0:
            continue
        due = due or (issued_at.date() + timedelta(days=term))  # type: ignore[union-attr] # issued_at__isnull=False  # no due date stored: issued + payment term
        if due >= day:
            continue
        for index, (operator_path, policy_currency, _p) in enumerate(policies):
            if currency == policy_currency and path.startswith(operator_path):
                by_policy[index].append(rules.OverdueInvoice(pk, number, customer_id, due, total, decimals))
                result.invoices += 1
                break
    due_now = [
        pen for index, overdue in by_policy.items() for pen in rules.penalties_due(overdue, policies[index][2], day)
    ]
    used = set(
        Transaction.objects.filter(reference__in=[p.reference for p in due_now]).values_list("reference", flat=True)
    )
    for pen in due_now:
        if pen.reference in used:
            continue
        try:
            with transaction.atomic():
                ledger.post(
                    [
                        ledger.Posting(
                            customer_id=pen.customer_id,
                            amount=-pen.amount,
                            kind=TransactionKind.PENALTY,
                            reference=pen.reference,
                            description=(
                                f"Late fee on invoice {pen.number} overdue {shown_amount(pen.overdue, _places(pen.amount))} "
                                f"(period {pen.period} from {pen.period_start.isoformat()})"
                            ),
                        )
                    ]
                )
        except IntegrityError:  # posted meanwhile by another run: the reference is taken
            continue
        except Exception as exc:  # noqa: BLE001 - reported; the next run tries again
            result.failed.append((pen.number, " ".join(f"{type(exc).__name__}: {exc}".split())))
            continue
        result.posted += 1
        result.amount += pen.amount
    return result
