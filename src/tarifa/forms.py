"""The back office's one form mechanism: every refusal names the field and the value.

Django's own messages ("This field is required.", "Enter a number.", "Enter a valid JSON.") say
neither which field nor which value; our validators already do (``tarifa.validators.refuse``).
``LabeledErrorsMixin`` rewrites the others at the one point every form error passes through,
``Form.add_error`` (field cleaning, ``clean()`` and the model's ``full_clean()`` all end there),
so a form only has to inherit it — and ``TarifaAdmin`` mixes it into every admin form and inline.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.forms.utils import pretty_name

from tarifa.validators import refuse

_SHOWN_MAX = 80


class _Params(dict[str, Any]):
    """A message's parameters; one Django did not give reads as empty rather than failing."""

    def __missing__(self, key: str) -> str:
        return ""


#: Django's codes whose rule reads the same for every field, with the message's parameters.
_RULES: dict[str, str] = {
    "unique": "already in use",
    # django.contrib.auth: the change-password form and the password validators
    "password_mismatch": "must be the same as the new password (the two entries differ)",
    "password_incorrect": "is not the current password of this user; enter it again",
    "password_too_common": "too common a password (it is on the list of commonly used passwords)",
    "password_too_short": "at least {min_length} characters",
    "password_entirely_numeric": "must not be entirely numeric",
    "password_too_similar": "too similar to the {verbose_name}",
    "invalid_list": "must be a list of values",
    "max_value": "must be at most {limit_value}",
    "min_value": "must be at least {limit_value}",
    "max_length": "at most {limit_value} characters (it has {show_value})",
    "min_length": "at least {limit_value} characters (it has {show_value})",
    "max_digits": "at most {max} digits in total",
    "max_decimal_places": "at most {max} decimal places",
    "max_whole_digits": "at most {max} digits before the decimal point",
}


def _rule(field: forms.Field, error: ValidationError) -> str | None:
    """A rule sentence for Django's generic error codes, or None to keep Django's wording."""
    code, params = error.code, error.params or {}
    if code == "invalid":
        for kind, rule in (
            (forms.DecimalField, "must be a number"),  # before IntegerField: its subclass
            (forms.FloatField, "must be a number"),
            (forms.IntegerField, "must be a whole number"),
            (forms.JSONField, "must be valid JSON"),
            (forms.GenericIPAddressField, "must be an IPv4 or IPv6 address"),
            (forms.DateTimeField, "must be a date and time such as 2026-01-31 13:45"),
            (forms.DateField, "must be a date such as 2026-01-31"),
            (forms.TimeField, "must be a time such as 13:45"),
            (forms.EmailField, "must be a valid e-mail address (name@domain)"),
            (forms.URLField, "must be a valid URL"),
            (forms.UUIDField, "must be a UUID"),
        ):
            if isinstance(field, kind):
                return rule
        return None
    if code == "invalid_choice":
        if isinstance(field, forms.ModelChoiceField):
            return "must be one of the available choices"
        choices = [str(value) for value, _label in getattr(field, "choices", []) if value not in ("", None)]
        if 0 < len(choices) <= 12:
            return "must be one of " + ", ".join(choices)
        return "must be one of the available choices"
    template = _RULES.get(code or "")
    return None if template is None else template.format_map(_Params(params))


def _sentence(text: str) -> str:
    """Django's message as the rule part of ours: no final stop, no capital (unless an acronym)."""
    text = text.strip().rstrip(".")
    if len(text) > 1 and text[1].isupper():
        return text
    return text[:1].lower() + text[1:]


class LabeledErrorsMixin:
    """Rewrites generic field errors as "<Label> <value> is refused: <rule>" (or "<Label> is
    required"); messages that already name their field are kept as they are."""

    def add_error(self, field: str | None, error: Any) -> None:
        if not isinstance(error, ValidationError):
            error = ValidationError(error)
        if hasattr(error, "error_dict"):
            if field is not None:
                super().add_error(field, error)  # type: ignore[misc]  # Django's own TypeError
                return
            mapping = error.error_dict
        else:
            mapping = {field or NON_FIELD_ERRORS: error.error_list}
        rewritten: dict[str, list[ValidationError]] = {}
        for name, errors in mapping.items():
            # a model rule about a field this form does not show (stored data an older version
            # let through, e.g. a cancellation before the activation) is the form's own error,
            # not Django's ValueError (an HTTP 500); its message names the field
            shown = name if name == NON_FIELD_ERRORS or name in self.fields else NON_FIELD_ERRORS  # type: ignore[attr-defined]
            rewritten.setdefault(shown, []).extend(self._labelled(name, e) for e in errors)
        super().add_error(None, ValidationError(rewritten))  # type: ignore[misc]

    def _labelled(self, name: str, error: ValidationError) -> ValidationError:
        field = self.fields.get(name)  # type: ignore[attr-defined]
        if field is None:
            return self._labelled_together(error) if error.code == "unique_together" else error
        label = str(field.label or pretty_name(name))
        text = " ".join(error.messages)
        if " is refused: " in text or text.lower().startswith(label.lower()) or error.code == "throttled":
            return error  # already named; a log-in lock (tarifa.throttle) is about the user, not the value
        if error.code in ("required", "blank", "null"):
            return ValidationError(f"{label} is required", code="required")
        rule = _rule(field, error) or _sentence(text)
        return refuse(label, self._shown_value(name, field), rule, error.code or "invalid")

    def _labelled_together(self, error: ValidationError) -> ValidationError:
        """A unique-together refusal ("Invoice with this Customer, Period start and Period end
        already exists.") naming each field with its value and the rule."""
        params = error.params or {}
        model, check = params.get("model_class"), params.get("unique_check") or ()
        instance = params.get("model") or getattr(self, "instance", None)
        if model is None or not check or instance is None:
            return error
        parts, labels = [], []
        for name in check:
            field = model._meta.get_field(name)
            label = str(field.verbose_name)
            labels.append(label)
            value = getattr(instance, field.name, None)
            shown = repr(value) if isinstance(value, str) else ("(empty)" if value is None else str(value))
            shown = shown if len(shown) <= _SHOWN_MAX else shown[: _SHOWN_MAX - 1] + "…"
            parts.append(f"{label.capitalize()} {shown}")
        together = ", ".join(labels[:-1]) + f" and {labels[-1]}" if len(labels) > 1 else labels[0]
        return ValidationError(
            "%(fields)s is refused: another %(model)s already has the same %(together)s",
            code="unique_together",
            params={"fields": ", ".join(parts), "model": str(model._meta.verbose_name), "together": together},
        )

    def _shown_value(self, name: str, field: forms.Field) -> Any:
        """The value as typed: masked for passwords, shortened when long."""
        try:
            value = self[name].data  # type: ignore[index]
        except Exception:  # noqa: BLE001 - a value we cannot read is shown as empty, never a 500
            return None
        if isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value)
        if value in (None, ""):
            return None
        if isinstance(field.widget, forms.PasswordInput):
            return "*" * min(len(str(value)), 40)
        value = value if isinstance(value, str) else str(getattr(value, "name", value))
        return value if len(value) <= _SHOWN_MAX else value[: _SHOWN_MAX - 1] + "…"


class LabeledForm(LabeledErrorsMixin, forms.Form):
    """A plain form with labelled refusals."""


class LabeledModelForm(LabeledErrorsMixin, forms.ModelForm):
    """A model form with labelled refusals (the admin's default form)."""


def labelled(form_class: type[forms.BaseForm]) -> type[forms.BaseForm]:
    """``form_class`` with labelled refusals (itself if it has them already)."""
    if issubclass(form_class, LabeledErrorsMixin):
        return form_class
    metaclass: type[Any] = type(form_class)  # the form's own metaclass (it collects the declared fields)
    return metaclass(form_class.__name__, (LabeledErrorsMixin, form_class), {"__module__": form_class.__module__})


__all__ = ["LabeledErrorsMixin", "LabeledForm", "LabeledModelForm", "labelled"]
