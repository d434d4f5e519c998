"""``GET /api/v1/audit``: the audit log, filtered; operator tokens (and back-office users) only."""

from __future__ import annotations

from ninja import Router

from tarifa.api.crud import Resource, register
from tarifa.audit.models import AuditEntry

router = Router()

AUDIT = register(
    router,
    Resource(
        "audit",
        AuditEntry,
        "audit",
        tenant=None,
        shown=(
            "at",
            "user",
            "token_id",
            "actor",
            "address",
            "via",
            "object_type",
            "object_id",
            "object_repr",
            "action",
            "before",
            "after",
        ),
        filters={
            "object_type": "object_type",
            "object_id": "object_id",
            "action": "action",
            "via": "via",
            "user": "user_id",
            "token": "token_id",
            "actor": "actor__icontains",
            "since": "at__gte",
            "until": "at__lt",
        },
        orderings=("-id",),
        example={
            "at": "2026-03-02T10:00:00Z",
            "actor": "token crm (trf_AbCd…)",
            "via": "api",
            "object_type": "customers.customer",
            "object_id": "42",
            "action": "update",
            "before": {"credit_limit": "0.0000"},
            "after": {"credit_limit": "100.0000"},
        },
        description="Every change made through the back office or the API: who, when, from where, what, "
        "before and after (secrets masked). Append-only. Operator tokens with `audit:read` (or read/full).",
    ),
)
