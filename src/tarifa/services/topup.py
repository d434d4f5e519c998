"""Automatic top-up of prepaid customers whose balance fell below their threshold (a job of
``tarifa worker``; settings per customer in ``billing.AutoTopUp``).

Stateless: every attempt is a ``GatewayCharge`` row, written and committed before the gateway is
called, with its own idempotency key. A worker that dies after sending leaves the row ``pending``;
the next sweep sends that same charge again with the same key, which the gateway answers with the
first result: the customer is never charged twice. A decline (or a failure) waits before the next
attempt -- one hour, doubling, at most a day (``core.statement.retry_after_seconds``) -- so a dead
card is not charged every sweep. A success posts one PAYMENT (reference ``<gateway>:<charge id>``,
unique) and sends ``payment_received``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from tarifa.billing.cards import default_method, new_charge, send_charge
from tarifa.billing.gateway import PaymentGateway, configured_gateway
from tarifa.billing.models import AutoTopUp, GatewayCharge
from tarifa.core.statement import retry_after_seconds
from tarifa.customers.choices import BillingType, Status

__all__ = ["TopUpResult", "run_topups"]


@dataclass
class TopUpResult:
    checked: int = 0
    charged: int = 0
    declined: int = 0
    amount: Decimal = Decimal(0)
    failed: list[tuple[str, str]] = field(default_factory=list)  # customer, reason


def _due(now: datetime) -> list[int]:
    return list(
        AutoTopUp.objects.filter(
            enabled=True,
            customer__billing_type=BillingType.PREPAID,
            customer__status=Status.ACTIVE,
            customer__balance__lt=F("threshold"),
        )
        .exclude(next_attempt_at__gt=now)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _claim(setting_id: int, now: datetime) -> tuple[AutoTopUp, GatewayCharge | str] | None:
    """Under the setting's row lock: the setting (its customer read with it) and the charge to send
    (a pending one again, or a new one) or a reason why none can be; None when the top-up is no
    longer due."""
    with transaction.atomic():
        rows = AutoTopUp.objects.select_for_update(skip_locked=connection.vendor == "postgresql", of=("self",))
        setting = rows.select_related("customer", "method").filter(pk=setting_id).first()
        if setting is None:  # another worker holds it
            return None
        customer = setting.customer
        if not setting.enabled or customer.balance >= setting.threshold:
            return None
        if setting.next_attempt_at is not None and setting.next_attempt_at > now:
            return None
        pending = GatewayCharge.objects.filter(
            customer=customer, purpose="topup", status=GatewayCharge.Status.PENDING
        ).first()
        if pending is not None:
            return setting, pending
        method = setting.method if setting.method is not None and setting.method.active else default_method(customer.pk)
        if method is None:
            reason = "no active saved payment method"
            _wait(setting, now, reason)
            return setting, reason
        return setting, new_charge(customer, method, setting.amount, "topup")


def _wait(setting: AutoTopUp, now: datetime, reason: str) -> None:
    declines = setting.declines + 1
    AutoTopUp.objects.filter(pk=setting.pk).update(
        declines=declines,
        next_attempt_at=now + timedelta(seconds=retry_after_seconds(declines)),
        last_error=reason[:200],
        updated_at=now,
    )


def run_topups(now: datetime | None = None, gateway: PaymentGateway | None = None) -> TopUpResult:
    """Charge every prepaid customer below its threshold once (or not, while it waits after a decline)."""
    result = TopUpResult()
    gateway = gateway or configured_gateway()
    if gateway is None:
        return result
    now = now or timezone.now()
    for setting_id in _due(now):
        result.checked += 1
        found = _claim(setting_id, now)
        if found is None:
            continue
        setting, claimed = found
        if isinstance(claimed, str):
            result.failed.append((str(setting.customer), claimed))
            continue
        outcome = send_charge(claimed, gateway)
        if outcome.charge.status == GatewayCharge.Status.SUCCEEDED:
            AutoTopUp.objects.filter(pk=setting_id).update(
                declines=0, next_attempt_at=None, last_error="", updated_at=now
            )
            if outcome.posted is not None:
                result.charged += 1
                result.amount += outcome.posted.amount
            continue
        # declined, failed, or still pending after a gateway error: wait before the next attempt
        _wait(setting, now, outcome.message or outcome.charge.status)
        if outcome.charge.status == GatewayCharge.Status.DECLINED:
            result.declined += 1
        else:
            result.failed.append((str(setting.customer), outcome.message))
    return result
