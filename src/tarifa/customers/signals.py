"""What the customer and DID models ask the layers above them without importing them.

The services that carry a plan (accounts, SIP and IP devices here; DIDs and virtual numbers in
``tarifa.dids``) must refuse edits that would charge a period twice (a changed activation date,
a number assigned into a previous owner's charged days). What was charged is
``tarifa.services.recurring``'s, which the models may not import (docs/architecture.md, "Layers"):
they ask through :data:`service_charged` and the services layer answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.dispatch import Signal

#: Sent by :func:`charged_span`; keywords ``kind`` (a ``ServiceKind`` value such as ``"did"``),
#: ``service_id``, ``activation`` (only the charges of the service from that activation date;
#: ``None``: every activation), ``other_than`` (leave out the charges from that activation date)
#: and ``periods_only`` (only recurring and minimum charges, not one-time fees). A receiver returns
#: a :class:`ChargedSpan` or ``None`` when nothing was charged.
service_charged = Signal()


@dataclass(frozen=True, slots=True)
class ChargedSpan:
    """The days a service's posted charges cover: the first period's start and the last day charged."""

    first: date
    through: date


def charged_span(
    kind: str,
    service_id: int | None,
    *,
    activation: date | None = None,
    other_than: date | None = None,
    periods_only: bool = False,
) -> ChargedSpan | None:
    """The span of the charges posted for a service (see :data:`service_charged`), or ``None``."""
    if service_id is None:
        return None
    for _, answer in service_charged.send(
        sender=None,
        kind=kind,
        service_id=service_id,
        activation=activation,
        other_than=other_than,
        periods_only=periods_only,
    ):
        if isinstance(answer, ChargedSpan):
            return answer
    return None


def stored_activation(instance: Any) -> tuple[bool, date | None]:
    """Whether ``instance`` is stored, and its activation date as stored (before this edit)."""
    if instance.pk is None:
        return False, None
    row = type(instance)._default_manager.filter(pk=instance.pk).values_list("activation_date").first()
    return (False, None) if row is None else (True, row[0])


def activation_change_problem(instance: Any, kind: str, instead: str) -> str | None:
    """Why the activation date of a stored service may not change, or ``None`` when it may: its
    charges are keyed by the activation date, so a new date would charge every period again.
    ``instead`` says what to do (cancel and add a new service, release and assign again)."""
    stored, before = stored_activation(instance)
    if not stored or before is None or before == instance.activation_date:
        return None
    span = charged_span(kind, instance.pk, activation=before)
    if span is None:
        return None
    return f"charges were posted from {span.first.isoformat()} for the activation date {before.isoformat()}; {instead}"


__all__ = ["ChargedSpan", "activation_change_problem", "charged_span", "service_charged", "stored_activation"]
