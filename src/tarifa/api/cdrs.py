"""``POST /api/v1/cdrs``: switches push CDRs as calls end."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema

from datetime import datetime

from tarifa.api.auth import CustomerToken, SwitchToken
from tarifa.api.problems import Problem

router = Router(tags=["cdrs"])
MAX_BATCH = 10_000


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
    """Body: a JSON array of canonical CDRs (or ``{"cdrs": [...]}``), fields as in docs/cdr-formats.md.

    Each CDR is stored, rated and posted exactly once per (switch, call_id, leg); the switch is
    the token's. A refused CDR is listed with its 1-based index and the reason; the others are kept.
    """
    from tarifa.cdrs.formats.registry import parse
    from tarifa.cdrs.ingest import ingest

    try:
        body = json.loads(request.body or b"null")
    except json.JSONDecodeError as exc:
        raise Problem(400, "Malformed JSON", f"line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    items = body.get("cdrs") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise Problem(400, "Bad request", "the body must be a JSON array of CDR objects, or {\"cdrs\": [...]}")
    if len(items) > MAX_BATCH:
        raise Problem(413, "Batch too large", f"{len(items)} CDRs sent; at most {MAX_BATCH} per request")
    switch = request.auth.switch_name  # type: ignore[attr-defined]
    for item in items:
        if isinstance(item, dict):
            item["switch"] = switch  # a switch can only write its own records
    lines = "\n".join(json.dumps(item) if isinstance(item, dict) else "[not an object]" for item in items)
    report = ingest(parse("tarifa-json", lines, switch=switch, tz="UTC"), source="api", fmt="api", switch=switch,
                    started_by=request.auth.name)  # type: ignore[attr-defined]
    return {
        "received": report.received, "stored": report.stored, "duplicates": report.duplicates,
        "unrated": report.unrated, "charged": str(report.charged),
        "rejected": [{"index": e.line, "reason": e.reason} for e in report.rejected],
    }


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
    rows = Cdr.objects.filter(customer__path__startswith=customer.path).select_related("account")
    if filters.since:
        rows = rows.filter(start_time__gte=filters.since)
    if filters.until:
        rows = rows.filter(start_time__lt=filters.until)
    return [
        {
            "id": r.pk, "call_id": r.call_id, "account": r.account.name if r.account else None, "caller": r.caller,
            "callee": r.callee, "start_time": r.start_time, "duration": r.duration, "billed_seconds": r.billed_seconds,
            "destination": r.destination, "price": str(r.price), "disposition": r.disposition,
            "rating_status": r.rating_status, "unrated_reason": r.unrated_reason,
        }
        for r in rows.order_by("-start_time", "-id")[: filters.limit]
    ]
