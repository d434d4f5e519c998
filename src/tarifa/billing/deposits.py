"""Deposits posted and returned: by hand (``tarifa deposit post|return``, the back office) and by the
automatic adjustment (tarifa.services.deposits), through one function and one rule
(:func:`tarifa.core.deposits.check_movement`); docs/deposits.md.

A deposit posted charges the balance (``-a``, a Transaction of kind deposit) and raises what the
customer's :class:`~tarifa.billing.models.Deposit` holds; a return does the opposite. The Deposit row is
locked first, then the ledger locks the balance, and both change in one database transaction.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from tarifa.billing import ledger
from tarifa.billing.choices import TransactionKind
from tarifa.billing.models import Deposit, Transaction
from tarifa.core import deposits as rules
from tarifa.core.payments import Refused
from tarifa.customers.models import Customer

__all__ = ["ADJUST_PREFIX", "INTEREST_PREFIX", "Refused", "move_deposit"]

#: deposit Transactions with this reference prefix are interest credited, not money held
INTEREST_PREFIX = "deposit-interest:"
#: the monthly automatic adjustment's references
ADJUST_PREFIX = "deposit-adjust:"


def _used(reference: str) -> Refused | None:
    used = Transaction.objects.filter(reference=reference).values("pk", "kind").first()
    if used is None:
        return None
    return Refused(
        "reference", reference, f"already used by transaction {used['pk']} ({used['kind']}); references are unique"
    )


def move_deposit(
    customer: Customer,
    action: str,
    amount: Decimal,
    *,
    reference: str,
    reason: str = "",
    actor: str = "",
    user_id: int | None = None,
    since: date | None = None,
    created_at: datetime | None = None,
    automatic: bool = False,
) -> Transaction:
    """Post (``action="post"``) or return (``"return"``) ``amount`` of the customer's deposit, or raise
    :class:`Refused` naming the field, the value and the rule. A first deposit creates the customer's
    Deposit (held from ``since``, default today)."""
    if not reference.strip():
        raise Refused("reference", reference, "required: a receipt or ticket reference, unique")
    for prefix in (INTEREST_PREFIX, *(() if automatic else (ADJUST_PREFIX,))):
        if reference.startswith(prefix):
            raise Refused("reference", reference, f"must not start with {prefix} (kept for the monthly deposit job)")
    try:
        with transaction.atomic():
            deposit = Deposit.objects.select_for_update().filter(customer=customer).first()
            held = deposit.held if deposit is not None else Decimal(0)
            problems = rules.check_movement(action, amount, held, customer.billing_decimals)
            if problems:
                p = problems[0]
                raise Refused(p.field, p.value, p.rule)
            used = _used(reference)
            if used is not None:
                raise used
            if deposit is None:
                deposit = Deposit.objects.create(customer=customer, since=since or timezone.now().date())
            signed = -amount if action == "post" else amount
            label = "Deposit" if action == "post" else "Deposit returned"
            ledger.post(
                [
                    ledger.Posting(
                        customer_id=customer.pk,
                        amount=signed,
                        kind=TransactionKind.DEPOSIT,
                        reference=reference,
                        description=f"{label}: {reason.strip()}" if reason.strip() else label,
                        created_by_id=user_id,
                        actor=actor[:150],
                        created_at=created_at,
                    )
                ]
            )
            Deposit.objects.filter(pk=deposit.pk).update(held=held - signed)
    except IntegrityError:
        used = _used(reference)
        if used is None:
            raise
        raise used from None
    return Transaction.objects.get(reference=reference)
