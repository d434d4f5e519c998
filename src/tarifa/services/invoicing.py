"""The invoice run: for each customer whose billing period has ended, one invoice, numbered without
gaps per issuer, with its discount and taxes posted to the ledger (docs/invoicing.md).

What an invoice holds is the ledger's: the period's Transactions of :data:`INVOICED_KINDS` (a
Transaction belongs to the period its ``created_at`` falls in, in the customer's time zone), shown
with a charge positive, plus the discount and tax Transactions the run posts itself (reference
``<invoice number>:discount`` / ``:tax``). So, for every invoice::

    invoice.total == -(sum of the period's Transactions of INVOICED_KINDS + the invoice's own postings)

to the last decimal. Payments, credits and refunds are the statement's, never invoice lines.
The rules of composition are :mod:`tarifa.core.invoicing`'s; this module reads, numbers and writes.

**Exactly once.** Customers are invoiced in chunks, one database transaction per chunk, which locks
the chunk's customer rows (the ledger's own lock: a posting in flight commits first, and any later
one is dated after the period), skips the customers that already have the period's invoice (a
unique constraint), locks the issuers' :class:`~tarifa.billing.models.InvoiceSequence` rows, and
inserts invoices, lines and postings. A run killed anywhere loses only its open chunk, numbers
included; running it again issues what is missing and nothing twice.
"""

from __future__ import annotations

import os
import signal
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from tarifa.billing import ledger
from tarifa.billing.allocation import CREDIT_TAX_SUFFIX
from tarifa.billing.choices import InvoiceKind, InvoiceStatus, LineSection, TransactionKind
from tarifa.billing.models import BillingProfile, Invoice, InvoiceLine, InvoiceSequence, Transaction
from tarifa.billing.signals import invoice_issued
from tarifa.billing.taxes import tax_engine
from tarifa.core import invoicing as rules
from tarifa.core.taxes import TaxCustomer, TaxEngine, TaxLine
from tarifa.customers.choices import CustomerKind
from tarifa.customers.models import Customer

__all__ = [
    "INVOICED_KINDS",
    "NOT_INVOICED_KINDS",
    "CreditRefused",
    "PeriodNotEnded",
    "RunResult",
    "credit_invoice",
    "invoice_number",
    "period_total",
    "run_invoices",
]

CHUNK = 200  # customers per database transaction

#: Transaction kinds an invoice shows, by the section they go to (taken by ``created_at``).
TIMED_KINDS: dict[str, LineSection] = {
    TransactionKind.CALL_CHARGE: LineSection.CALLS,
    TransactionKind.RECURRING_FEE: LineSection.SERVICES,
    TransactionKind.ONE_TIME_FEE: LineSection.SERVICES,
    TransactionKind.MINIMUM_CHARGE: LineSection.SERVICES,
    TransactionKind.PENALTY: LineSection.PENALTY,
    TransactionKind.DEPOSIT: LineSection.DEPOSIT,
    TransactionKind.ADJUSTMENT: LineSection.ADJUSTMENT,
}
#: ... and the kinds the run posts for an invoice (taken by the invoice's reference).
POSTED_KINDS = (TransactionKind.DISCOUNT, TransactionKind.TAX)
INVOICED_KINDS = (*TIMED_KINDS, *POSTED_KINDS)
NOT_INVOICED_KINDS = (TransactionKind.PAYMENT, TransactionKind.CREDIT, TransactionKind.REFUND)
assert set(INVOICED_KINDS) | set(NOT_INVOICED_KINDS) == set(TransactionKind)

OPERATOR_KEY = "operator"
OPERATOR_PREFIX = "INV"

#: Called with the number of invoices inserted so far, inside the chunk's open transaction (tests
#: kill the process here to show that a run interrupted anywhere leaves nothing half-written).
after_insert: Callable[[int], None] | None = None


class PeriodNotEnded(ValueError):
    """A period asked for has not ended: nothing is posted."""


class CreditRefused(ValueError):
    """A credit note that cannot be issued (field, value and rule in the message)."""


@dataclass
class RunResult:
    customers: int = 0  # customers whose period was looked at
    issued: list[str] = field(default_factory=list)  # numbers of the invoices issued now
    ids: list[int] = field(default_factory=list)  # ... and their ids (for their PDFs)
    already: int = 0  # periods invoiced by an earlier run
    empty: int = 0  # periods without anything to invoice
    totals: dict[str, Decimal] = field(default_factory=dict)  # currency -> sum of the invoices issued now

    def summary(self) -> str:
        from tarifa.core.money import format_money

        money = ", ".join(format_money(amount, cur) for cur, amount in sorted(self.totals.items())) or "0"
        return (
            f"{len(self.issued)} invoice(s) issued ({money}); {self.already} period(s) already invoiced, "
            f"{self.empty} without charges; {self.customers} customer period(s) looked at"
        )


@dataclass(frozen=True, slots=True)
class Billed:
    """A customer as the run needs it."""

    id: int
    code: str
    name: str
    kind: str
    parent_id: int | None
    zone: ZoneInfo
    currency: str
    decimals: int
    country: str
    exempt: bool
    payment_term_days: int
    cycle: rules.Cycle
    discount: rules.Discount

    def tax_customer(self) -> TaxCustomer:
        return TaxCustomer(self.id, self.country, "", self.currency, self.exempt, self.decimals)


Tree = dict[int, tuple[int | None, str, str]]  # customer id -> (parent id, kind, account code)


def _tree() -> Tree:
    return {
        pk: (parent, kind, account_code)
        for pk, parent, kind, account_code in Customer.objects.values_list("pk", "parent_id", "kind", "account_code")
    }


def _customers(code: str | None) -> tuple[list[Billed], Tree]:
    """The customers to invoice (one, by account code or web user name, or all but operators), and
    the tree (id -> parent, kind, account code) for the issuers."""
    tree = _tree()
    rows = Customer.objects.exclude(kind=CustomerKind.OPERATOR)
    if code is not None:
        rows = rows.filter(account_code=code) | rows.filter(web_username=code)
        if not rows.exists():
            raise ValueError(f"Customer {code!r} is refused: no customer has this account code or web user name")
    profiles = {p.customer_id: p for p in BillingProfile.objects.all()}
    billed = []
    for r in rows.order_by("pk").values(
        "pk",
        "account_code",
        "company",
        "kind",
        "parent_id",
        "time_zone",
        "currency",
        "billing_decimals",
        "country",
        "tax_flag",
        "payment_term_days",
    ):
        profile = profiles.get(r["pk"])
        billed.append(
            Billed(
                id=r["pk"],
                code=r["account_code"],
                name=r["company"],
                kind=r["kind"],
                parent_id=r["parent_id"],
                zone=ZoneInfo(r["time_zone"] or "UTC"),
                currency=r["currency"],
                decimals=r["billing_decimals"],
                country=str(r["country"] or ""),
                exempt=False,  # tax-exempt customers are the tax engine's to know
                payment_term_days=r["payment_term_days"],
                cycle=profile.as_cycle() if profile else rules.DEFAULT_CYCLE,
                discount=profile.as_discount() if profile else rules.Discount(),
            )
        )
    return billed, tree


def issuer_of(customer_parent: int | None, tree: Tree) -> int | None:
    """The nearest reseller above the customer (it bills it), else None (the operator)."""
    seen = 0
    parent = customer_parent
    while parent is not None and seen < 64:
        up, kind, _ = tree[parent]
        if kind == CustomerKind.RESELLER:
            return parent
        parent = up
        seen += 1
    return None


def _periods(
    customer: Billed, wanted: rules.Period | None, now: datetime
) -> tuple[list[rules.Period], list[rules.Period]]:
    """(ended, not ended) periods of the customer: the last ended one, or those ending in ``wanted``."""
    if wanted is None:
        return [rules.last_ended_period(customer.cycle, customer.zone, now)], []
    ended: list[rules.Period] = []
    open_: list[rules.Period] = []
    for p in rules.ended_periods_in(customer.cycle, wanted.start, wanted.end):
        (ended if p.bounds(customer.zone)[1] <= now else open_).append(p)
    return ended, open_


def run_invoices(
    *,
    period: rules.Period | None = None,
    customer: str | None = None,
    now: datetime | None = None,
    chunk: int = CHUNK,
    engine: Callable[[Sequence[int]], TaxEngine] = tax_engine,
) -> RunResult:
    """Issue the invoices of ended periods that have none (module docstring). ``period``: the days
    whose cycle periods (those ending in them) are invoiced; default: each customer's last ended
    period. A period asked for that has not ended refuses the whole run (:class:`PeriodNotEnded`)
    before anything is written."""
    moment = now or timezone.now()
    customers, tree = _customers(customer)
    work: dict[tuple[rules.Period, datetime, datetime], list[Billed]] = defaultdict(list)
    for c in customers:
        ended, open_ = _periods(c, period, moment)
        if open_:
            p = open_[0]
            end = p.bounds(c.zone)[1]
            utc = "" if end.astimezone(c.zone).utcoffset() == end.utcoffset() else f" ({end:%Y-%m-%d %H:%M} UTC)"
            raise PeriodNotEnded(
                f"Period {p.label} of customer {c.name} ({c.code}) is refused: it has not ended; it ends at "
                f"{end.astimezone(c.zone):%Y-%m-%d %H:%M} {c.zone.key}{utc}. Nothing was issued."
            )
        for p in ended:
            work[(p, *p.bounds(c.zone))].append(c)
    result = RunResult()
    inserted = 0
    for (p, start, end), group in sorted(work.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        for first in range(0, len(group), chunk):
            part = group[first : first + chunk]
            result.customers += len(part)
            issued = _run_chunk(part, p, start, end, tree, moment, engine, result, inserted)
            inserted += len(issued)
            for inv in issued:
                result.issued.append(inv.number)
                result.ids.append(inv.pk)
                result.totals[inv.currency] = result.totals.get(inv.currency, Decimal(0)) + inv.total
    if result.issued:
        # Money paid before the invoices existed pays them now, oldest first (docs/payments.md).
        from tarifa.billing.allocation import apply_all_unallocated

        apply_all_unallocated()
    return result


def _run_chunk(
    part: list[Billed],
    period: rules.Period,
    start: datetime,
    end: datetime,
    tree: Tree,
    moment: datetime,
    engine: Callable[[Sequence[int]], TaxEngine],
    result: RunResult,
    inserted_before: int,
) -> list[Invoice]:
    ids = [c.id for c in part]
    with transaction.atomic():
        # The ledger's lock (FOR NO KEY UPDATE, by id): postings in flight for these customers commit
        # before we read, and every later one is dated now, after the period.
        list(Customer.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk").values_list("pk"))
        done = set(
            Invoice.objects.filter(
                kind=InvoiceKind.INVOICE, customer_id__in=ids, period_start=period.start, period_end=period.end
            ).values_list("customer_id", flat=True)
        )
        result.already += len(done)
        todo = [c for c in part if c.id not in done]
        if not todo:
            return []
        data = _period_data([c.id for c in todo], start, end)
        tax = engine([c.id for c in todo])
        composed: list[tuple[Billed, rules.Composition]] = []
        for c in todo:
            d = data.get(c.id)
            if d is None or d.empty:
                result.empty += 1
                continue
            composed.append((c, rules.compose(d, c.discount, tax, c.tax_customer(), period.end)))
        if not composed:
            return []
        issued = _issue(composed, period, tree, moment, inserted_before)
        transaction.on_commit(_announce(*issued))
        return issued


def _announce(*invoices: Invoice) -> Callable[[], None]:
    """Tell the layers above (notices) once the invoices are committed, each with its customer
    loaded (one query for them all, not one per receiver)."""

    def send() -> None:
        customers = Customer.objects.in_bulk({inv.customer_id for inv in invoices})
        for invoice in invoices:
            invoice.customer = customers[invoice.customer_id]
            invoice_issued.send(sender=Invoice, invoice=invoice)

    return send


def _period_data(ids: list[int], start: datetime, end: datetime) -> dict[int, rules.PeriodData]:
    """Each customer's charges in ``[start, end)``, summed as the invoice shows them."""
    from tarifa.cdrs.models import Cdr
    from tarifa.dids.models import Did

    timed = Transaction.objects.filter(
        customer_id__in=ids, created_at__gte=start, created_at__lt=end, kind__in=list(TIMED_KINDS)
    )
    calls: dict[int, list[rules.CallGroup]] = defaultdict(list)
    usage: dict[int, dict[str, list[int | Decimal]]] = defaultdict(dict)
    items: dict[int, list[rules.Item]] = defaultdict(list)
    charged: dict[int, Decimal] = defaultdict(Decimal)  # call charges by customer (ledger side, positive)
    for customer_id, total in (
        timed.filter(kind=TransactionKind.CALL_CHARGE)
        .values("customer_id")
        .annotate(t=Sum("amount"))
        .values_list("customer_id", "t")
    ):
        charged[customer_id] = -total
    batch = timed.filter(kind=TransactionKind.CALL_CHARGE, cdr__isnull=True).values("id")
    single = timed.filter(kind=TransactionKind.CALL_CHARGE, cdr__isnull=False)
    grouped: dict[int, dict[str, list[Any]]] = defaultdict(dict)

    def add(into: dict[str, list[Any]], key: str, n: int, seconds: int, amount: Decimal) -> None:
        have = into.setdefault(key, [0, 0, Decimal(0)])
        have[0] += n
        have[1] += seconds
        have[2] += amount

    # Usage by location: the cost center of the DID a call names, else the one cost center of its
    # account's DIDs; calls with neither have no location.
    places = dict(Did.objects.exclude(cost_center="").values_list("number", "cost_center"))
    by_account: dict[int, set[str]] = defaultdict(set)
    for holder, place in (
        Did.objects.exclude(cost_center="").filter(account__isnull=False).values_list("account_id", "cost_center")
    ):
        if holder is not None:
            by_account[holder].add(place)
    # One pass over the period's charged calls (by the Transactions that charged them: index
    # cdr_charged_by), grouped finely enough for both the destinations and the locations.
    rows: Iterable[tuple[int, str, int | None, str, int, int | None, Decimal | None]] = (
        Cdr.objects.filter(transaction_id__in=batch)
        .values("transaction__customer_id", "destination", "account_id", "did")
        .annotate(n=Count("id"), s=Sum("billed_seconds"), a=Sum("price"))
        .values_list("transaction__customer_id", "destination", "account_id", "did", "n", "s", "a")
        .order_by()
    )
    for customer_id, destination, account_id, did, n, seconds, amount in rows:
        add(grouped[customer_id], destination, n, seconds or 0, amount or Decimal(0))
        if places:
            own = by_account.get(account_id, set()) if account_id is not None else set()
            place = places.get(did) or (next(iter(own)) if len(own) == 1 else "")
            add(usage[customer_id], place, n, seconds or 0, amount or Decimal(0))
    singles = list(single.values_list("customer_id", "cdr_id", "amount"))
    cdr_info = {
        pk: (dest, secs)
        for pk, dest, secs in Cdr.objects.filter(pk__in=[s[1] for s in singles]).values_list(
            "pk", "destination", "billed_seconds"
        )
    }
    for customer_id, cdr_id, amount in singles:
        dest, secs = cdr_info.get(cdr_id, ("", 0))
        add(grouped[customer_id], dest, 1, secs, -amount)
    for customer_id, groups in grouped.items():
        listed = sum((g[2] for g in groups.values()), Decimal(0))
        residue = charged.get(customer_id, Decimal(0)) - listed
        if residue:  # calls re-rated after they were charged: the charge stands, the difference shows
            add(groups, "Calls re-rated after charging (difference)", 0, 0, residue)
        calls[customer_id] = [rules.CallGroup(k, int(v[0]), int(v[1]), v[2]) for k, v in groups.items()]
    for customer_id, total in charged.items():
        if customer_id not in grouped and total:
            calls[customer_id] = [rules.CallGroup("Calls", 0, 0, total)]
    for customer_id, kind, description, amount, created in (
        timed.exclude(kind=TransactionKind.CALL_CHARGE)
        .order_by("customer_id", "created_at", "id")
        .values_list("customer_id", "kind", "description", "amount", "created_at")
    ):
        label = description or TransactionKind(kind).name.replace("_", " ").capitalize()
        items[customer_id].append(rules.Item(TIMED_KINDS[kind], f"{label} ({created:%Y-%m-%d})", -amount))
    out = {}
    for customer_id in ids:
        out[customer_id] = rules.PeriodData(
            calls=calls.get(customer_id, []),
            usage=[
                rules.UsageGroup(k, int(v[0]), int(v[1]), Decimal(v[2])) for k, v in usage.get(customer_id, {}).items()
            ],
            items=items.get(customer_id, []),
        )
        if all(u.location == "" for u in out[customer_id].usage):  # nobody has a location: no usage section
            out[customer_id] = rules.PeriodData(out[customer_id].calls, (), out[customer_id].items)
    return out


def invoice_number(prefix: str, year: int, n: int) -> str:
    return f"{prefix}-{year}-{n:06d}"


def _sequence(issuer: int | None, year: int, tree: Tree) -> InvoiceSequence:
    """The issuer's sequence row for the year, locked FOR UPDATE (created at 0 when missing)."""
    key = f"{OPERATOR_KEY if issuer is None else issuer}:{year}"
    found = InvoiceSequence.objects.select_for_update().filter(key=key).first()
    if found is not None:
        return found
    prefix = OPERATOR_PREFIX if issuer is None else tree[issuer][2]
    try:
        with transaction.atomic():
            InvoiceSequence.objects.create(key=key, issuer_id=issuer, prefix=prefix, year=year, last=0)
    except IntegrityError:
        pass  # another run created it meanwhile
    return InvoiceSequence.objects.select_for_update().get(key=key)


def _take_numbers(issuer: int | None, year: int, count: int, tree: Tree) -> list[str]:
    seq = _sequence(issuer, year, tree)
    numbers = [invoice_number(seq.prefix, year, seq.last + n) for n in range(1, count + 1)]
    InvoiceSequence.objects.filter(pk=seq.pk).update(last=seq.last + count)
    return numbers


_LINE_COLUMNS = (
    "invoice",
    "section",
    "description",
    "calls",
    "seconds",
    "location",
    "quantity",
    "unit_price",
    "amount",
    "tax_rate",
    "tax_base",
)


def _issue(
    composed: list[tuple[Billed, rules.Composition]],
    period: rules.Period,
    tree: Tree,
    moment: datetime,
    inserted_before: int,
) -> list[Invoice]:
    """Inside the chunk's transaction: number, insert and post."""
    from tarifa.db import bulk_insert

    year = moment.astimezone(UTC).year
    by_issuer: dict[int | None, list[tuple[Billed, rules.Composition]]] = defaultdict(list)
    for c, comp in composed:
        by_issuer[issuer_of(c.parent_id, tree)].append((c, comp))
    invoices: list[Invoice] = []
    # Issuers in a fixed order (operator first, then by id): two runs lock sequences alike, no deadlock.
    for issuer in sorted(by_issuer, key=lambda i: -1 if i is None else i):
        group = by_issuer[issuer]
        numbers = _take_numbers(issuer, year, len(group), tree)
        for (c, comp), number in zip(group, numbers, strict=True):
            invoices.append(
                Invoice(
                    customer_id=c.id,
                    issuer_id=issuer,
                    kind=InvoiceKind.INVOICE,
                    number=number,
                    period_start=period.start,
                    period_end=period.end,
                    issued_at=moment,
                    due_date=moment.astimezone(c.zone).date() + timedelta(days=c.payment_term_days),
                    status=InvoiceStatus.ISSUED,
                    currency=c.currency,
                    subtotal=comp.subtotal,
                    discount=comp.discount,
                    penalty=comp.penalty,
                    tax=comp.tax,
                    total=comp.total,
                )
            )
    Invoice.objects.bulk_create(invoices)
    if any(inv.pk is None for inv in invoices):  # a backend that returns no ids: read them back
        ids = dict(Invoice.objects.filter(number__in=[i.number for i in invoices]).values_list("number", "pk"))
        for inv in invoices:
            inv.pk = inv.id = ids[inv.number]
    comps = {c.id: comp for c, comp in composed}
    rows = []
    postings = []
    for inv in invoices:
        comp = comps[inv.customer_id]
        for line in comp.lines:
            rows.append(
                [
                    inv.pk,
                    line.section,
                    line.description[:200],
                    line.calls,
                    line.seconds,
                    line.location[:100],
                    line.quantity,
                    line.unit_price,
                    line.amount,
                    line.tax_rate,
                    line.tax_base,
                ]
            )
        if comp.discount:
            postings.append(
                ledger.Posting(
                    customer_id=inv.customer_id,
                    amount=comp.discount,
                    kind=TransactionKind.DISCOUNT,
                    reference=f"{inv.number}:discount",
                    description=f"Discount of invoice {inv.number}",
                )
            )
        if comp.tax_posted:
            postings.append(
                ledger.Posting(
                    customer_id=inv.customer_id,
                    amount=-comp.tax_posted,
                    kind=TransactionKind.TAX,
                    reference=f"{inv.number}:tax",
                    description=f"Tax of invoice {inv.number}",
                )
            )
    bulk_insert(InvoiceLine, _LINE_COLUMNS, rows)
    if after_insert is not None:
        after_insert(inserted_before + len(invoices))
    ledger.post(postings)
    return invoices


def period_total(customer_id: int, start: datetime, end: datetime, invoice_numbers: Iterable[str] = ()) -> Decimal:
    """Minus the sum of the Transactions an invoice of ``[start, end)`` accounts for (the check)."""
    timed = Transaction.objects.filter(
        customer_id=customer_id, created_at__gte=start, created_at__lt=end, kind__in=list(TIMED_KINDS)
    ).aggregate(t=Sum("amount"))["t"] or Decimal(0)
    refs = [f"{n}:{k}" for n in invoice_numbers for k in ("discount", "tax")]
    own = Transaction.objects.filter(reference__in=refs).aggregate(t=Sum("amount"))["t"] or Decimal(0)
    return -(timed + own)


def kill_after(count: int) -> Callable[[int], None]:
    """A hook for :data:`after_insert` that SIGKILLs this process once ``count`` invoices are in
    (tests of the interrupted run)."""

    def hook(inserted: int) -> None:
        if inserted >= count:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


# ---------------------------------------------------------------------------------------------
# Credit notes


def credit_invoice(
    number: str, amount: Decimal | None, reason: str, *, actor: str = "", now: datetime | None = None
) -> Invoice:
    """Issue a credit note of ``amount`` against the issued invoice ``number`` (which never changes):
    its own number from the issuer's sequence and a negative total. ``amount`` is tax included: on a
    taxed invoice it is split into net and tax in the invoice's proportions
    (:func:`tarifa.core.invoicing.credit_split`), the note getting a tax line per invoice tax line
    (rate, base). It posts the net as a ``credit`` (``<note>:credit``) and the tax as a ``tax``
    Transaction (``<note>:credit-tax``), both raising the balance, so the ledger stays minus the
    invoices and credit notes. At most what the invoice's total leaves after earlier notes; ``None``:
    all of it (the invoice credited in full)."""
    moment = now or timezone.now()
    if not reason.strip():
        raise CreditRefused(f"Reason {reason!r} is refused: a credit note needs a reason")
    if amount is not None and (amount <= 0 or amount.as_tuple().exponent < -6):  # type: ignore[operator]
        raise CreditRefused(f"Amount {amount} is refused: must be positive, with at most 6 decimal places")
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().filter(number=number, kind=InvoiceKind.INVOICE).first()
        if invoice is None:
            if Invoice.objects.filter(number=number, kind=InvoiceKind.CREDIT_NOTE).exists():
                raise CreditRefused(
                    f"Invoice {number!r} is refused: it is a credit note; only an invoice can be credited"
                )
            raise CreditRefused(f"Invoice {number!r} is refused: no invoice has this number")
        places = Customer.objects.filter(pk=invoice.customer_id).values_list("billing_decimals", flat=True).get()
        if amount is not None and amount != amount.quantize(Decimal(1).scaleb(-places)):  # 1.2500: 2 places
            raise CreditRefused(
                f"Amount {amount} is refused: at most {places} decimal places (the customer's billing decimals)"
            )
        if invoice.status not in (InvoiceStatus.ISSUED, InvoiceStatus.PAID):
            raise CreditRefused(
                f"Invoice {number} is refused: it is {invoice.status}; only an issued invoice is credited"
            )
        credited = -(
            Invoice.objects.filter(credited_invoice=invoice, kind=InvoiceKind.CREDIT_NOTE).aggregate(t=Sum("total"))[
                "t"
            ]
            or Decimal(0)
        )
        left = invoice.total - credited
        if amount is None:  # in full
            if left <= 0:
                raise CreditRefused(f"Invoice {number} is refused: nothing is left to credit (total {invoice.total})")
            amount = left
        if amount > left:
            raise CreditRefused(
                f"Amount {amount} is refused: at most {left} is left to credit on invoice {number} "
                f"(total {invoice.total}, credited before {credited})"
            )
        split = rules.credit_split(
            amount,
            invoice.total,
            _tax_lines(invoice.lines.filter(section=LineSection.TAX)),
            credited,
            _tax_lines(
                InvoiceLine.objects.filter(
                    invoice__credited_invoice=invoice,
                    invoice__kind=InvoiceKind.CREDIT_NOTE,
                    section=LineSection.TAX,
                ),
                sign=-1,
            ),
            places,
        )
        tree = _tree()
        (cn_number,) = _take_numbers(invoice.issuer_id, moment.astimezone(UTC).year, 1, tree)
        text = f"Credit on invoice {number}: {reason.strip()}"[:200]
        note = Invoice(
            customer_id=invoice.customer_id,
            issuer_id=invoice.issuer_id,
            kind=InvoiceKind.CREDIT_NOTE,
            credited_invoice=invoice,
            number=cn_number,
            period_start=invoice.period_start,
            period_end=invoice.period_end,
            issued_at=moment,
            due_date=None,
            status=InvoiceStatus.DRAFT,  # its lines first; then issued (which freezes it)
            currency=invoice.currency,
            subtotal=-split.net,
            tax=-split.tax,
            total=-amount,
        )
        note.full_clean(exclude=["customer", "issuer", "credited_invoice"])
        note.save()
        lines = [
            InvoiceLine(
                invoice=note, section=LineSection.ADJUSTMENT, description=text, unit_price=-split.net, amount=-split.net
            )
        ]
        lines += [
            InvoiceLine(
                invoice=note,
                section=LineSection.TAX,
                description=t.name[:200],
                unit_price=-t.amount,
                amount=-t.amount,
                tax_rate=t.rate,
                tax_base=-t.base,
            )
            for t in split.taxes
        ]
        InvoiceLine.objects.bulk_create(lines)
        note.status = InvoiceStatus.ISSUED
        note.save(update_fields=["status", "updated_at"])
        postings = [
            ledger.Posting(
                customer_id=invoice.customer_id,
                amount=split.net,
                kind=TransactionKind.CREDIT,
                reference=f"{cn_number}:credit",
                description=text,
                actor=actor,
            )
        ]
        if split.tax:
            postings.append(
                ledger.Posting(
                    customer_id=invoice.customer_id,
                    amount=split.tax,
                    kind=TransactionKind.TAX,
                    reference=f"{cn_number}{CREDIT_TAX_SUFFIX}",
                    description=f"Tax given back by credit note {cn_number} on invoice {number}",
                    actor=actor,
                )
            )
        ledger.post([p for p in postings if p.amount])
        transaction.on_commit(_announce(note))
    return note


def _tax_lines(lines: Any, sign: int = 1) -> list[TaxLine]:
    """Stored tax lines as the core's tax lines (``sign=-1``: a credit note's, stored negative)."""
    return [
        TaxLine(
            line.description,
            line.tax_rate,
            sign * (line.tax_base if line.tax_base is not None else Decimal(0)),
            sign * line.amount,
            fixed=line.tax_rate is None,
        )
        for line in lines.order_by("id")
    ]


def parse_amount(text: str) -> Decimal:
    """The amount of a credit note as typed: the one rule of typed amounts (core.payments), so the
    credit-note doors accept and refuse exactly what the payment doors do (``1e3`` is refused)."""
    from tarifa.core.payments import Refused
    from tarifa.core.payments import parse_amount as parse

    try:
        return parse(text)
    except Refused as exc:
        raise CreditRefused(str(exc)) from None


def today_utc() -> date:
    return timezone.now().astimezone(UTC).date()
