"""Invoice PDFs rendered once and kept in the database (issue 15): :func:`stored_pdf` for every
download and the invoice e-mail, :func:`render_invoice_pdfs` for the invoice run.

The database is the store: every machine that serves downloads or sends mail reads the same
:class:`~tarifa.billing.models.InvoicePdf` rows, bytes and SHA-256. What an issued invoice or
credit note says never changes, but an invoice's PDF also shows the amount still due (its total
less the money allocated to it, :func:`tarifa.billing.render.amount_due`), which changes when it
is paid. So each stored PDF keeps the amount due it shows; a reader whose invoice's amount due no
longer matches renders it again and stores the new one (a payment costs one new rendering, on
first need). A draft is never stored (it can still change).

The run renders in worker processes (:func:`render_invoice_pdfs`), each with its own database
connection, storing its PDFs in batches; the invoices are committed before, and a PDF that fails
is reported by number and rendered on its first download: the run's invoices stand either way.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import connection
from django.utils import timezone

from tarifa.core.invoices import InvoiceKind, InvoiceStatus

if TYPE_CHECKING:
    from tarifa.billing.models import Invoice

__all__ = ["BATCH", "PER_WORKER", "PdfRun", "default_workers", "render_batch", "render_invoice_pdfs", "stored_pdf"]

log = logging.getLogger(__name__)

#: Invoices a worker renders and stores per task (one query for them, one insert for their PDFs).
BATCH = 25
#: By default one worker process per this many invoices, at most one per core: below it the
#: worker's start-up (Django, reportlab: about a second) costs more than it saves.
PER_WORKER = 100


@dataclass
class PdfRun:
    """What :func:`render_invoice_pdfs` did."""

    rendered: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # invoice number -> why its PDF failed
    workers: int = 0  # worker processes used (0: rendered in this process)
    seconds: float = 0.0  # float-ok: elapsed time, not money
    cpu: float = 0.0  # float-ok: CPU seconds the rendering took, all processes together

    def summary(self) -> str:
        where = f"{self.workers} worker process(es)" if self.workers else "this process"
        text = f"PDFs: {self.rendered} rendered and stored by {where} in {self.seconds:.1f} s ({self.cpu:.1f} s CPU)"
        if self.failed:
            text += f"; {len(self.failed)} failed (each is rendered on its first download)"
        return text


def _due(invoice: Invoice) -> Decimal | None:
    from tarifa.billing.render import amount_due

    return amount_due(invoice) if invoice.kind == InvoiceKind.INVOICE else None


def _render(invoice: Invoice, due: Decimal | None) -> bytes:
    from tarifa.billing.render import invoice_document, render_pdf

    return render_pdf(invoice_document(invoice, due=due))


def _store(rows: Sequence[tuple[int, bytes, Decimal | None]]) -> None:
    """Insert or replace the PDFs ``(invoice id, bytes, amount due shown)`` in one statement."""
    from tarifa.billing.models import InvoicePdf

    if not rows:
        return
    now = timezone.now()
    InvoicePdf.objects.bulk_create(
        [
            InvoicePdf(
                invoice_id=pk, data=data, sha256=hashlib.sha256(data).hexdigest(), amount_due=due, rendered_at=now
            )
            for pk, data, due in rows
        ],
        update_conflicts=True,
        unique_fields=["invoice"],
        update_fields=["data", "sha256", "amount_due", "rendered_at"],
    )


def stored_pdf(invoice: Invoice) -> bytes:
    """The invoice's PDF: the stored one while the amount due it shows still holds, else rendered
    now and stored (a draft is rendered and never stored)."""
    from tarifa.billing.models import InvoicePdf

    if invoice.status == InvoiceStatus.DRAFT:
        return _render(invoice, _due(invoice))
    due = _due(invoice)
    row = InvoicePdf.objects.filter(invoice_id=invoice.pk).values_list("data", "amount_due").first()
    if row is not None and row[1] == due:
        return bytes(row[0])
    data = _render(invoice, due)
    _store([(invoice.pk, data, due)])
    return data


def _reason(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def render_batch(ids: Sequence[int]) -> tuple[int, dict[str, str], float]:  # float-ok: CPU seconds
    """Render and store the PDFs of the invoices ``ids`` (drafts skipped); (stored, failed by
    number, CPU seconds taken)."""
    from tarifa.billing.models import Invoice

    cpu = time.process_time()
    rows: list[tuple[int, bytes, Decimal | None]] = []
    failed: dict[str, str] = {}
    invoices = (
        Invoice.objects.filter(pk__in=ids)
        .exclude(status=InvoiceStatus.DRAFT)
        .select_related("customer", "issuer", "credited_invoice")
        .order_by("pk")
    )
    for invoice in invoices:
        try:
            due = _due(invoice)
            rows.append((invoice.pk, _render(invoice, due), due))
        except Exception as exc:  # noqa: BLE001 - reported by number; the PDF renders on first need
            failed[invoice.number] = _reason(exc)
            log.warning("PDF of invoice %s not rendered: %s", invoice.number, failed[invoice.number])
    _store(rows)
    return len(rows), failed, time.process_time() - cpu


def _worker_start() -> None:
    """A worker process: Django configured from the same TARIFA_* environment as its parent."""
    from tarifa.bootstrap import start_django

    start_django(database=False)


def _numbers(ids: Iterable[int]) -> list[str]:
    from tarifa.billing.models import Invoice

    return list(Invoice.objects.filter(pk__in=list(ids)).values_list("number", flat=True))


def default_workers() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def render_invoice_pdfs(ids: Sequence[int], workers: int | None = None) -> PdfRun:
    """Render and store the PDFs of the committed invoices ``ids``, in ``workers`` processes
    (default: one per core, and one per :data:`PER_WORKER` invoices); 1, or a caller inside a
    database transaction (other processes could not see its rows), renders in this process.
    A PDF that fails is reported in :attr:`PdfRun.failed`; nothing is undone."""
    started = time.perf_counter()
    result = PdfRun()
    ids = sorted(ids)
    batches = [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]
    if workers is None:
        workers = min(default_workers(), math.ceil(len(ids) / PER_WORKER))
    workers = min(workers, len(batches))
    if workers <= 1 or connection.in_atomic_block:
        for batch in batches:
            try:
                stored, failed, cpu = render_batch(batch)
            except Exception as exc:  # noqa: BLE001 - the batch's store failed: reported, rendered on need
                stored, failed, cpu = 0, dict.fromkeys(_numbers(batch), _reason(exc)), 0.0
            result.rendered += stored
            result.cpu += cpu
            result.failed.update(failed)
    else:
        import multiprocessing

        result.workers = workers
        # spawn, not fork: a forked child would share this process's database connection.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_start) as pool:
            futures: list[tuple[list[int], Future[tuple[int, dict[str, str], float]]]] = [
                (batch, pool.submit(render_batch, batch)) for batch in batches
            ]
            for batch, future in futures:
                try:
                    stored, failed, cpu = future.result()
                except Exception as exc:  # noqa: BLE001 - a worker died or its store failed: reported
                    stored, failed, cpu = 0, dict.fromkeys(_numbers(batch), _reason(exc)), 0.0
                result.rendered += stored
                result.cpu += cpu
                result.failed.update(failed)
    result.seconds = time.perf_counter() - started
    return result
