"""Ingestion helpers several test modules share (a helper module, not a test module): the
vectorised-versus-row-by-row comparison and the balance-equals-ledger check."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Sum

from tarifa.billing.models import Transaction
from tarifa.cdrs.ingest import ingest
from tarifa.cdrs.models import Cdr
from tarifa.core.cdr import CanonicalCdr
from tarifa.customers.models import Account, Customer

SKIP = {"id", "batch", "ingest_run", "received_at", "rated_at"}


class _Rollback(Exception):
    pass


def _snapshot() -> dict:
    fields = [f.attname for f in Cdr._meta.concrete_fields if f.name not in SKIP]
    cdrs = {(r["call_id"], r["leg"]): r for r in Cdr.objects.values(*fields, "rated_at")}
    charge = {t.pk: (t.customer_id, t.account_id, t.amount, t.description, t.kind) for t in Transaction.objects.all()}
    for row in cdrs.values():
        row["rated_at"] = row["rated_at"] is not None
        row["transaction_id"] = charge.get(row["transaction_id"])  # ids differ between runs: compare the charge
    txs = sorted(charge.values(), key=repr)
    running_ok = True
    for owner in {(t.customer_id, t.account_id) for t in Transaction.objects.all()}:
        total = None
        for t in Transaction.objects.filter(customer_id=owner[0], account_id=owner[1]).order_by("id"):
            total = t.amount if total is None else total + t.amount
            running_ok &= t.balance_after == total
    balances = {
        **{("c", pk): b for pk, b in Customer.objects.values_list("pk", "balance")},
        **{("a", pk): b for pk, b in Account.objects.values_list("pk", "balance")},
    }
    return {"cdrs": cdrs, "transactions": txs, "balances": balances, "running_ok": running_ok}


def ingest_in_rollback(calls: list[CanonicalCdr], vectorised: bool, batch_size: int) -> tuple[dict, dict]:
    result: dict = {}
    try:
        with transaction.atomic():
            report = ingest(calls, source="t", fmt="test", vectorised=vectorised, batch_size=batch_size)
            result = _snapshot()
            result["report"] = (
                report.received,
                report.stored,
                report.duplicates,
                report.unrated,
                str(report.charged),
                [(e.line, e.reason) for e in report.rejected],
            )
            result["vectorised"] = report.vectorised
            raise _Rollback
    except _Rollback:
        pass
    return result, {}


def balance_matches_ledger(customer: Customer) -> bool:
    customer.refresh_from_db()
    total = Transaction.objects.filter(customer=customer, account__isnull=True).aggregate(t=Sum("amount"))["t"] or 0
    return customer.balance == total
