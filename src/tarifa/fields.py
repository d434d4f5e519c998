"""Model field helpers that keep the house rules in one place.

* money is ``DecimalField`` with 6 decimal places (billing decimals go up to 6);
* every refusal names the field, the value and the rule, including the built-in checks Django
  does itself (length, choices), so those messages are replaced by labelled ones here.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db import models
from django.utils.deconstruct import deconstructible
from django.utils.text import capfirst

from tarifa.core.rate_rules import MONEY_PLACES, column_max, control_character, range_rule
from tarifa.validators import Between, MaxLength, refuse

MONEY_DIGITS = 20


@deconstructible
class NoControlCharacters:
    """Refuses control characters (C0, DEL, C1) and lone surrogates in free text: they break
    XLSX exports, PostgreSQL refuses NUL, and no name or label needs them."""

    def __init__(self, label: str) -> None:
        self.label = label

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NoControlCharacters) and other.label == self.label

    def __call__(self, value: Any) -> None:
        rule = control_character(value) if isinstance(value, str) else None
        if rule:
            raise refuse(self.label, value, rule, "control_character")


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

    def formfield(self, **kwargs: Any) -> forms.Field | None:
        if self.choices and "invalid_choice" in self._error_messages_override:
            kwargs.setdefault("error_messages", {"invalid_choice": self._error_messages_override["invalid_choice"]})
        field = super().formfield(**kwargs)
        if field is not None and self.max_length is not None and not self.choices:
            field.validators[:] = _labelled_max_length(
                field.validators, str(self.verbose_name).capitalize(), self.max_length
            )
        return field


def choice_field(label: str, choices: Any, **kwargs: Any) -> LabeledCharField:
    """A CharField with choices whose refusal names the field and lists the allowed values."""
    allowed = ", ".join(str(value) for value, _ in choices.choices)
    kwargs.setdefault("max_length", 16)
    if isinstance(kwargs.get("default"), Enum):  # a core enum member: migrations record its plain value
        kwargs["default"] = kwargs["default"].value
    return LabeledCharField(
        label,
        choices=choices.choices,
        error_messages={
            "invalid_choice": f"{label} %(value)r is refused: must be one of {allowed}",
        },
        **kwargs,
    )


class ExactDecimalField(models.BigIntegerField):
    """``Decimal`` in Python, an integer count of ``10**-places`` units in the database.

    SQLite gives ``DECIMAL`` columns NUMERIC affinity and keeps such values as binary floats;
    integer units are exact on every database, and SQL ``SUM`` stays exact too. Values with
    more than ``places`` decimals are refused, never rounded silently.

    Careful with expressions: combine with ``Value(x, output_field=ExactDecimalField(...))``
    (see ``tarifa.billing.ledger``), never with a bare ``Decimal``.
    """

    def __init__(self, *args: Any, places: int = MONEY_PLACES, **kwargs: Any) -> None:
        self.places = places
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["places"] = self.places
        return name, path, args, kwargs

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Decimal | None:
        if value is None:
            return None
        return Decimal(int(value)).scaleb(-self.places)

    def to_python(self, value: Any) -> Decimal | None:
        if value is None or value == "":
            return None
        if isinstance(value, Decimal):
            return value
        if isinstance(value, float):
            raise ValidationError(self.error_messages["invalid"], code="invalid", params={"value": value})
        try:
            return Decimal(str(value).strip())
        except InvalidOperation:
            raise ValidationError(self.error_messages["invalid"], code="invalid", params={"value": value}) from None

    @property
    def column_rule(self) -> str:
        """The range the column can store, in the words of every other range refusal, narrowed
        by the field's own range (a non-negative fee says 0 to the maximum, never a negative
        bound it would refuse anyway)."""
        limit = column_max(self.places)
        low, high = -limit, limit
        for validator in self.validators:
            if isinstance(validator, Between):
                if validator.low is not None:
                    low = max(low, Decimal(str(validator.low)))
                if validator.high is not None:
                    high = min(high, Decimal(str(validator.high)))
        return range_rule(low, high)

    def _fits(self, number: Decimal) -> bool:
        limit = column_max(self.places)
        return -limit <= number <= limit

    def get_prep_value(self, value: Any) -> int | None:
        value = models.Field.get_prep_value(self, value)
        number = self.to_python(value)
        if number is None:
            return None
        if not number.is_finite():
            raise ValueError(f"{self.verbose_name} {number} is refused: must be a finite number")
        if not self._fits(number):
            # Never hand the driver an integer it cannot store (OverflowError on SQLite).
            raise ValueError(f"{self.verbose_name} {number} is refused: {self.column_rule}")
        units = number.scaleb(self.places)
        if units != units.to_integral_value():
            raise ValueError(f"{self.verbose_name} {number} is refused: at most {self.places} decimal places")
        return int(units)

    def validate(self, value: Any, model_instance: Any) -> None:
        super().validate(value, model_instance)
        if value is not None:
            units = Decimal(value).scaleb(self.places)
            if not units.is_finite() or units != units.to_integral_value():
                raise ValidationError(
                    f"{str(self.verbose_name).capitalize()} {value} is refused: at most {self.places} decimal places",
                    code="decimal_places",
                )

    def run_validators(self, value: Any) -> None:
        # The field's own validators first (a rate's tighter limits speak first), then the
        # column's range, which every money field has whatever its validators say.
        super().run_validators(value)
        if value is not None and value not in self.empty_values and not self._fits(Decimal(value)):
            raise refuse(str(self.verbose_name).capitalize(), value, self.column_rule, "column_range")

    def _form_check(self, value: Any) -> None:
        if value is not None:
            self.validate(value, None)
            self.run_validators(value)

    def formfield(self, **kwargs: Any) -> forms.Field:
        defaults: dict[str, Any] = {
            "form_class": forms.DecimalField,
            # No generic digit limits on the form: the field's own checks (decimal places, its
            # validators, the column's range) refuse with its label, the value and the limit,
            # on any form built from it, model form or not.
            "max_digits": None,
            "decimal_places": None,
            "validators": [self._form_check],
            "required": not self.blank,
            "label": str(self.verbose_name).capitalize(),
            "help_text": self.help_text,
        }
        if self.has_default():
            defaults["initial"] = self.get_default()
        defaults.update(kwargs)
        form_class = defaults.pop("form_class")
        return form_class(**defaults)

    @property
    def validators(self) -> list[Any]:
        # Integer range validators of BigIntegerField speak of units, not of the Decimal value.
        # (``_validators`` is Django's list of the field's own validators; the stubs omit it.)
        return list(self._validators)  # type: ignore[attr-defined]


def money_field(
    label: str,
    *,
    minimum: int | str | Decimal | None = None,
    maximum: int | str | Decimal | None = None,
    places: int = MONEY_PLACES,
    **kwargs: Any,
) -> ExactDecimalField:
    validators = list(kwargs.pop("validators", []))
    if minimum is not None or maximum is not None:
        validators.append(Between(label, minimum, maximum))
    kwargs.setdefault("default", Decimal(0))
    return ExactDecimalField(
        label,
        places=places,
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


class AppendOnly(models.Model):
    """Rows that are written once and never changed or deleted: corrections are new rows (the
    ledger's Transactions, the audit log)."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise ValidationError(f"{capfirst(self._meta.verbose_name)} {self.pk} is append-only and cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValidationError(f"{capfirst(self._meta.verbose_name)} {self.pk} is append-only and cannot be deleted")


class LockedDeleteQuerySet(models.QuerySet):
    """``delete()`` takes the rows' write lock before Django checks what still refers to them."""

    def delete(self) -> tuple[int, dict[str, int]]:
        from django.db import transaction

        with transaction.atomic(using=self.db):
            # FOR UPDATE waits for CDR batches holding FOR KEY SHARE on these rows (the CDR and
            # Transaction tables have no database foreign keys); the PROTECT check that follows
            # then sees the calls those batches stored.
            list(self.select_for_update().values_list("pk", flat=True))
            return super().delete()


class LockedDeleteModel(models.Model):
    """Rows CDRs and Transactions refer to without a database constraint (customers, accounts,
    connections): deleting one waits for the ingest batches that use it, then is refused by
    ``on_delete=PROTECT`` if any of their calls refer to it."""

    objects = LockedDeleteQuerySet.as_manager()

    class Meta:
        abstract = True

    def delete(self, using: Any = None, keep_parents: bool = False) -> tuple[int, dict[str, int]]:
        from django.db import router, transaction

        db = using or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=db):
            list(type(self)._base_manager.using(db).select_for_update().filter(pk=self.pk).values_list("pk", flat=True))
            return super().delete(using=using, keep_parents=keep_parents)
