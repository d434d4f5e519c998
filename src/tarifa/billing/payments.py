"""Payments, credits, refunds and adjustments typed by an operator: the one service every door
calls (back office, ``tarifa payment add``; the API to come).

The rule (sign, limits, what a refund may return) is :mod:`tarifa.core.payments`; this module
reads the balance under its lock, applies the rule and posts through :func:`tarifa.billing.ledger.post`
in one database transaction, so the balance and its Transaction change together or not at all.
"""

from __future__ import annotations

import getpass
import os
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, Sum

from tarifa.billing import ledger
from tarifa.billing.choices import TRANSACTION_KIND_LABELS, TransactionKind
from tarifa.billing.models import Transaction
from tarifa.billing.signals import money_added, payment_received
from tarifa.core.payments import BalanceState, MoneyRequest, Refused, invoice_refusal, signed_amount
from tarifa.customers.choices import BalanceMode
from tarifa.customers.models import Account, Customer

__all__ = ["Refused", "add_money", "cli_actor", "find_customer", "find_invoice", "find_own_balance_account"]


def cli_actor() -> str:
    """Who runs the command line: ``cli:<os user>`` (the user id when the OS has no name for it)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = str(os.getuid())
    return f"cli:{name}"


def find_customer(text: str) -> Customer:
    """A customer by web user name, account code or database id."""
    value = text.strip()
    query = Q(web_username=value) | Q(account_code=value)
    if value.isdigit():
        query |= Q(pk=int(value))
    found = list(Customer.objects.filter(query)[:2])
    if len(found) != 1:
        rule = (
            "no customer has this web user name, account code or id"
            if not found
            else ("matches more than one customer; use the account code")
        )
        raise Refused("customer", text, rule)
    return found[0]


def find_invoice(customer: Customer, text: str) -> int:
    """The id of the customer's invoice numbered ``text`` (as typed; surrounding blanks ignored).
    An unknown number and another customer's invoice get the same answer: a door never tells
    whether another customer's invoice exists."""
    from tarifa.billing.models import Invoice

    found = Invoice.objects.filter(customer=customer, number=text.strip()).values_list("pk", flat=True).first()
    if found is None:
        raise Refused("invoice", text, f"no invoice of {customer.account_code} has this number")
    return int(found)


def _used_reference(reference: str) -> Refused | None:
    used = Transaction.objects.filter(reference=reference).values("pk", "kind", "customer_id").first()
    if used is None:
        return None
    return Refused(
        "reference", reference, f"already used by transaction {used['pk']} ({used['kind']}); references are unique"
    )


def find_own_balance_account(customer: Customer, text: str) -> Account:
    """One of the customer's accounts that keeps its own balance, by account code or name."""
    value = text.strip()
    account = (
        Account.objects.filter(customer=customer).filter(Q(account_code=value) | Q(name=value)).order_by("pk").first()
    )
    if account is None:
        raise Refused("account", text, f"no account of {customer} has this account code or name")
    if account.balance_mode != BalanceMode.OWN:
        raise Refused("account", text, "shares the customer's balance: post to the customer instead")
    return account


def add_money(
    customer: Customer | int,
    request: MoneyRequest,
    *,
    actor: str,
    user_id: int | None = None,
    account: Account | None = None,
    created_at: datetime | None = None,
    invoice: int | None = None,
) -> Transaction:
    """Post one operator money movement on the customer's balance (or on the balance of its
    ``account`` that keeps its own), or raise :class:`Refused`.

    A reference is unique across all Transactions: the same payment entered twice is refused,
    not posted twice. A payment or credit is then allocated to the customer's open invoices, oldest
    first, or to ``invoice`` (an id of one of them); a refund takes back allocated money the
    unallocated money does not cover (:mod:`tarifa.billing.allocation`). A payment sends
    ``payment_received`` once committed.
    """
    from tarifa.billing import allocation
    from tarifa.billing.models import Invoice

    customer_id = customer if isinstance(customer, int) else customer.pk
    account_id = account.pk if account is not None else None
    if account is not None and (account.customer_id != customer_id or account.balance_mode != BalanceMode.OWN):
        raise Refused("account", account.account_code, "must be an account of this customer with its own balance")
    try:
        with transaction.atomic():
            # Lock the balance first, customer then account as ledger.post does (it locks them
            # again, in the same transaction): the refund limit and the range check must see the
            # balance the posting will move.
            row: Any = (
                Customer.objects.select_for_update(no_key=True)
                .filter(pk=customer_id)
                .values("balance", "currency")
                .first()
            )
            if row is None:
                raise Refused("customer", str(customer_id), "no such customer")
            balance = row["balance"]
            own = Transaction.objects.filter(customer_id=customer_id, account__isnull=True)
            if account_id is not None:
                balance = (
                    Account.objects.select_for_update(no_key=True).values_list("balance", flat=True).get(pk=account_id)
                )
                own = Transaction.objects.filter(account_id=account_id)
            sums = own.aggregate(
                paid=Sum("amount", filter=Q(kind=TransactionKind.PAYMENT)),
                refunded=Sum("amount", filter=Q(kind=TransactionKind.REFUND)),
            )
            state = BalanceState(
                balance=balance,
                currency=row["currency"],
                paid=sums["paid"] or Decimal(0),
                refunded=-(sums["refunded"] or Decimal(0)),
            )
            amount = signed_amount(request, state)
            used = _used_reference(request.reference)
            if used is not None:
                raise used
            if invoice is not None:
                chosen = (
                    Invoice.objects.filter(pk=invoice, customer_id=customer_id)
                    .values("number", "kind", "status")
                    .first()
                )
                if chosen is None:
                    raise Refused("invoice", str(invoice), "no invoice of this customer has this id")
                why = invoice_refusal(request.kind, chosen["kind"], chosen["status"])
                if why is not None:
                    raise Refused("invoice", chosen["number"], why)
            ledger.post(
                [
                    ledger.Posting(
                        customer_id=customer_id,
                        account_id=account_id,
                        amount=amount,
                        kind=request.kind,
                        reference=request.reference,
                        description=request.reason.strip() or TRANSACTION_KIND_LABELS.label(request.kind),
                        created_by_id=user_id,
                        actor=actor[:150],
                        created_at=created_at,
                        method=request.method,
                    )
                ]
            )
            posted = Transaction.objects.get(reference=request.reference)
            if request.kind in (TransactionKind.PAYMENT, TransactionKind.CREDIT):
                allocation.allocate_new_money(customer_id, invoice)
            elif request.kind == TransactionKind.REFUND:
                allocation.take_back_for_refund(customer_id, posted)
            if request.kind == TransactionKind.PAYMENT:
                transaction.on_commit(lambda: payment_received.send(sender=Transaction, transaction=posted))
    except IntegrityError:
        # the same reference posted at the same moment by another session (unique constraint)
        used = _used_reference(request.reference)
        if used is None:
            raise
        raise used from None
    if amount > 0:  # money in: accounts blocked for unpaid charges that it covers call again
        money_added.send(sender=Transaction, customer_id=customer_id)
    return posted
