"""The audit log: one row per change made through the back office or the API; append-only."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from tarifa.changes import Change
from tarifa.fields import AppendOnly


class AuditQuerySet(models.QuerySet["AuditEntry"]):
    """No bulk rewrite either: ``update`` and ``delete`` on a set of entries are refused."""

    def update(self, **kwargs: Any) -> int:
        _refuse("changed")
        return 0

    def delete(self) -> tuple[int, dict[str, int]]:
        _refuse("deleted")
        return 0, {}


class AuditEntry(AppendOnly):
    """Who changed what, when, from where, with the record before and after (secrets masked).

    Append-only in code: ``save`` refuses to change a stored row and ``delete`` (``AppendOnly``, as
    the ledger's) and the queryset's ``update``/``delete`` refuse always, so nothing in Tarifa can
    rewrite history."""

    class Via(models.TextChoices):
        ADMIN = "admin", "back office"
        API = "api", "API"
        PORTAL = "portal", "portal"

    at = models.DateTimeField("when", auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_constraint=False
    )
    token_id = models.PositiveBigIntegerField("API token id", null=True, blank=True)
    actor = models.CharField("who", max_length=200, blank=True)
    address = models.CharField("from address", max_length=150, blank=True)
    via = models.CharField(max_length=8, choices=Via.choices, default=Via.ADMIN)
    object_type = models.CharField("object type", max_length=100, db_index=True)
    object_id = models.CharField("object id", max_length=64, blank=True)
    object_repr = models.CharField("object", max_length=200, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    objects = models.Manager.from_queryset(AuditQuerySet)()

    class Meta:
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"], name="audit_object")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.object_type} {self.object_id}"


def _refuse(what: str) -> None:
    raise ValidationError(f"audit entries are append-only and cannot be {what}")


def record(sender: Any, change: Change, **kwargs: Any) -> None:
    """The receiver of ``tarifa.changes.changed``: one row per change."""
    actor = change.actor
    AuditEntry.objects.create(
        user_id=actor.user_id,
        token_id=actor.token_id,
        actor=actor.label[:200],
        address=actor.address[:150],
        via=actor.via,
        object_type=change.model_label,
        object_id=change.object_id[:64],
        object_repr=change.object_repr[:200],
        action=change.action[:64],
        before=change.before,
        after=change.after,
    )


class ViewAsSession(models.Model):
    """One "log in as" session: a staff user or a reseller opened a customer's portal as that
    customer (docs/portal.md). Written when it starts; ``ended_at`` is set once, when it ends. The
    customer is kept as id and name (the audit app sits below the customers app)."""

    class Via(models.TextChoices):
        ADMIN = "admin", "back office (staff)"
        RESELLER = "reseller", "portal (reseller)"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_constraint=False
    )
    actor = models.CharField("who", max_length=200)
    via = models.CharField(max_length=8, choices=Via.choices, default=Via.ADMIN)
    customer_id = models.PositiveBigIntegerField("customer id", db_index=True)
    customer_repr = models.CharField("customer", max_length=200)
    address = models.CharField("from address", max_length=150, blank=True)
    started_at = models.DateTimeField("started", auto_now_add=True, db_index=True)
    ended_at = models.DateTimeField("ended", null=True, blank=True)

    class Meta:
        verbose_name = "log-in-as session"
        verbose_name_plural = "log-in-as sessions"
        ordering = ["-started_at", "-id"]
        permissions = [("log_in_as", "Can log in to the portal as a customer")]

    def __str__(self) -> str:
        return f"{self.actor} as {self.customer_repr} at {self.started_at:%Y-%m-%d %H:%M:%S}"
