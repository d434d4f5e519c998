"""Model field helpers that keep the house rules in one place.

* money is ``DecimalField`` with 6 decimal places (billing decimals go up to 6);
* every refusal names the field, the value and the rule, including the built-in checks Django
  does itself (length, choices), so those messages are replaced by labelled ones here.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import MaxLengthValidator
from django.db import models

from tarifa.customers.validators import Between, MaxLength

MONEY_DIGITS = 20
MONEY_PLACES = 6


def _labelled_max_length(validators: list, label: str, limit: int) -> list:
    kept = [v for v in validators if not isinstance(v, MaxLengthValidator)]
    return [*kept, MaxLength(label, limit)]


class LabeledCharField(models.CharField):
    """A CharField whose length refusal reads "<label> '<value>' is refused: at most N characters"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._error_messages_override = dict(kwargs.get("error_messages") or {})
        super().__init__(*args, **kwargs)

    def contribute_to_class(self, cls: Any, name: str, private_only: bool = False) -> None:
        super().contribute_to_class(cls, name, private_only)
        label = str(self.verbose_name).capitalize()
        if self.max_length is not None:
            self.validators[:] = _labelled_max_length(self.validators, label, self.max_length)

    def formfield(self, **kwargs: Any) -> forms.Field:
        if self.choices and "invalid_choice" in self._error_messages_override:
            kwargs.setdefault("error_messages", {"invalid_choice": self._error_messages_override["invalid_choice"]})
        field = super().formfield(**kwargs)
        if self.max_length is not None and not self.choices:
            field.validators[:] = _labelled_max_length(
                field.validators, str(self.verbose_name).capitalize(), self.max_length
            )
        return field


def choice_field(label: str, choices: Any, **kwargs: Any) -> LabeledCharField:
    """A CharField with choices whose refusal names the field and lists the allowed values."""
    allowed = ", ".join(str(value) for value, _ in choices.choices)
    kwargs.setdefault("max_length", 16)
    return LabeledCharField(
        label,
        choices=choices.choices,
        error_messages={
            "invalid_choice": f"{label} %(value)r is refused: must be one of {allowed}",
        },
        **kwargs,
    )


def money_field(label: str, *, minimum: int | str | None = None, **kwargs: Any) -> models.DecimalField:
    validators = list(kwargs.pop("validators", []))
    if minimum is not None:
        validators.append(Between(label, minimum, None))
    kwargs.setdefault("default", 0)
    return models.DecimalField(
        label,
        max_digits=MONEY_DIGITS,
        decimal_places=MONEY_PLACES,
        validators=validators,
        error_messages={
            "invalid": f"{label} %(value)r is refused: must be a decimal number",
        },
        **kwargs,
    )


def int_field(label: str, low: int | None, high: int | None, unit: str = "", **kwargs: Any) -> models.IntegerField:
    return models.IntegerField(
        label,
        validators=[Between(label, low, high, unit)],
        error_messages={"invalid": f"{label} %(value)r is refused: must be a whole number"},
        **kwargs,
    )


class TimestampedModel(models.Model):
    created_at = models.DateTimeField("created at", auto_now_add=True)
    updated_at = models.DateTimeField("updated at", auto_now=True)

    class Meta:
        abstract = True
