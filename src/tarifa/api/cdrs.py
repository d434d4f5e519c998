"""``POST /api/v1/cdrs``: switches push CDRs as calls end."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema

from tarifa.api.auth import CustomerToken, SwitchToken
from tarifa.api.problems import Problem
from tarifa.core.instants import MomentRefused, utc_moment

router = Router(tags=["cdrs"])
MAX_BATCH = 10_000
MAX_BODY_BYTES = 32 * 2**20  # 10,000 CDRs with every field at its longest fit


class Rejected(Schema):
    index: int
    reason: str


class CdrBatchResult(Schema):
    received: int
    stored: int
    duplicates: int
    unrated: int
    charged: str
    rejected: list[Rejected]


@router.post("/cdrs", auth=SwitchToken(), response=CdrBatchResult, summary="Push a batch of CDRs")
def post_cdrs(request: HttpRequest) -> dict[str, Any]:
    """Body: a JSON array of canonical CDRs (or ``{"cdrs": [...]}``), fields as in docs/cdr-formats.md;
    at most 10,000 CDRs and 32 MiB.

    Each CDR is stored, rated and posted exactly once per (switch, call_id, leg); the switch is
    the token's. A refused CDR is listed with its 1-based index and the reason; the others are kept.
    """
    from tarifa.cdrs.formats.tarifa import BatchError, parse_batch
    from tarifa.cdrs.ingest import ingest

    body = _read_body(request)
    switch = request.auth.switch_name  # type: ignore[attr-defined]
    try:
        items = parse_batch(body, switch=switch)
    except BatchError as exc:
        raise Problem(400, "Malformed JSON" if exc.malformed else "Bad request", str(exc)) from None
    if len(items) > MAX_BATCH:
        raise Problem(413, "Batch too large", f"{len(items)} CDRs sent; at most {MAX_BATCH} per request")
    report = ingest(items, source="api", fmt="api", switch=switch, started_by=request.auth.name)  # type: ignore[attr-defined]
    return {
        "received": report.received,
        "stored": report.stored,
        "duplicates": report.duplicates,
        "unrated": report.unrated,
        "charged": str(report.charged),
        "rejected": [{"index": e.line, "reason": e.reason} for e in sorted(report.rejected, key=lambda e: e.line)],
    }


def _read_body(request: HttpRequest) -> bytes:
    """The request body, at most MAX_BODY_BYTES: this endpoint's own limit, read from the stream
    so that Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB, for forms) does not refuse the
    documented maximum batch (10,000 CDRs are about 3.1 MB)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Problem(
            400, "Bad request", f"Content-Length {request.META.get('CONTENT_LENGTH')!r} is not a number"
        ) from None
    too_large = Problem(
        413, "Body too large", f"at most {MAX_BODY_BYTES} bytes ({MAX_BODY_BYTES // 2**20} MiB) per request"
    )
    if declared > MAX_BODY_BYTES:
        raise too_large
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise too_large
    return body


class CdrOut(Schema):
    id: int
    call_id: str
    account: str | None
    caller: str
    callee: str
    start_time: datetime
    duration: int
    billed_seconds: int
    destination: str
    price: str
    disposition: str
    rating_status: str
    unrated_reason: str


class CdrFilter(Schema):
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100


@router.get("/cdrs", auth=CustomerToken(), response=list[CdrOut], summary="A customer's call history")
def list_cdrs(request: HttpRequest, filters: Query[CdrFilter]) -> list[dict[str, Any]]:
    """The token customer's calls (its whole subtree for a reseller), newest first, as soon as stored."""
    from tarifa.cdrs.models import Cdr

    if not 1 <= filters.limit <= 1000:
        raise Problem(422, "Unprocessable request", f"limit {filters.limit} is refused: must be between 1 and 1000")
    customer = request.auth.customer  # type: ignore[attr-defined]
    rows = Cdr.objects.filter(customer.in_subtree("customer")).select_related("account")
    for name in ("since", "until"):  # an overflowing offset (9999-12-31T23:59:59-23:59) is a 422, not a 500
        value = getattr(filters, name)
        if value is not None:
            try:
                setattr(filters, name, utc_moment(value, name))
            except MomentRefused as exc:
                raise Problem(422, "Unprocessable request", str(exc)) from None
    if filters.since:
        rows = rows.filter(start_time__gte=filters.since)
    if filters.until:
        rows = rows.filter(start_time__lt=filters.until)
    return [
        {
            "id": r.pk,
            "call_id": r.call_id,
            "account": r.account.name if r.account else None,
            "caller": r.caller,
            "callee": r.callee,
            "start_time": r.start_time,
            "duration": r.duration,
            "billed_seconds": r.billed_seconds,
            "destination": r.destination,
            "price": str(r.price),
            "disposition": r.disposition,
            "rating_status": r.rating_status,
            "unrated_reason": r.unrated_reason,
        }
        for r in rows.order_by("-start_time", "-id")[: filters.limit]
    ]
