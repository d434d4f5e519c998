"""Every change to a record, told once: the back office and the API announce, the audit log listens.

Why a signal: the back office's base class (``admin_base``) sits below the apps, so it cannot import
the audit log's model; lower layers tell higher ones through signals (see ``billing.signals``).
``snapshot`` is the one picture of a record that every announcement carries: plain JSON values,
secrets masked (``tarifa.sensitive``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Model
from django.dispatch import Signal

from tarifa import config
from tarifa.sensitive import is_sensitive

#: Sent with ``change=Change(...)`` after a change is stored (inside the same database transaction).
changed = Signal()

MASK = "********"


@dataclass(frozen=True)
class Actor:
    """Who made a change and from where: a logged-in user or an API token (id and label), and the address."""

    user_id: int | None = None
    token_id: int | None = None
    label: str = ""
    address: str = ""
    via: str = "admin"  # "admin", "api" or "portal"


@dataclass(frozen=True)
class Change:
    actor: Actor
    model_label: str  # "customers.customer"
    object_id: str
    object_repr: str
    action: str  # "create", "update", "delete" or an action's name
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, float):  # float-ok: a JSON value stored as the model holds it
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def snapshot(obj: Model) -> dict[str, Any]:
    """The record's stored fields as JSON values (foreign keys as ids), every secret masked."""
    opts = obj._meta
    out: dict[str, Any] = {}
    for field in opts.concrete_fields:
        value = getattr(obj, field.attname)
        if is_sensitive(opts.app_label, opts.model_name or "", field.name):
            out[field.name] = MASK if value not in (None, "") else value
        else:
            out[field.name] = _plain(value)
    if obj.pk is not None and not obj._state.adding:
        for m2m in opts.many_to_many:
            out[m2m.name] = sorted(r.pk for r in getattr(obj, m2m.name).all())
    return out


def announce(
    actor: Actor, obj: Model, action: str, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> None:
    """Tell the listeners (the audit log) that ``obj`` changed."""
    change = Change(
        actor=actor,
        model_label=obj._meta.label_lower,
        object_id=str(obj.pk if obj.pk is not None else (before or {}).get("id", "")),
        object_repr=str(obj)[:200],
        action=action,
        before=before,
        after=after,
    )
    changed.send(sender=type(obj), change=change)


def address_of(meta: Mapping[str, Any]) -> str:
    """The client's address of a request's META / WSGI environ: REMOTE_ADDR, or with
    TARIFA_TRUSTED_PROXIES=n the n-th address from the right of X-Forwarded-For (each proxy appends
    the address it saw; the left end is the client's word)."""
    proxies = config.trusted_proxies()
    remote = meta.get("REMOTE_ADDR", "") or "unknown"
    if proxies:
        hops = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= proxies:
            return str(hops[-proxies])[:150]
    return str(remote)[:150]
