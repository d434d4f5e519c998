"""Form fields and widgets for the account's list settings (seed 001): a country picker grouped
by region with search and select-all, codec check boxes, and one-per-line address lists.

Each list field validates item by item, so a refusal names the one bad item, never the list.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from collections.abc import Callable
from typing import Any

from django import forms
from django_countries import countries
from unfold.widgets import (
    INPUT_CLASSES,
    UnfoldAdminCheckboxSelectMultipleWidget,
    UnfoldAdminTextareaWidget,
)

from tarifa.validators import CODECS, refuse

# IANA time-zone areas (tzdata's zone.tab) -> the regions a person looks for.
_AREA_REGION = {
    "Africa": "Africa",
    "America": "Americas",
    "Antarctica": "Antarctica",
    "Arctic": "Europe",
    "Asia": "Asia",
    "Atlantic": "Atlantic Ocean",
    "Australia": "Oceania",
    "Europe": "Europe",
    "Indian": "Indian Ocean",
    "Pacific": "Oceania",
}
OTHER_REGION = "Other"


@functools.cache
def country_regions() -> dict[str, str]:
    """ISO 3166 code -> region, from the area of the country's main time zone in the IANA time-zone
    database (the ``tzdata`` package, kept current with every tz release): no hand-kept table.
    Countries without a time zone of their own (Bouvet Island, Heard Island) fall in "Other"."""
    text = importlib.resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
    regions: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            code, _coordinates, zone, *_comment = line.split("\t")
            regions.setdefault(code, _AREA_REGION.get(zone.split("/", 1)[0], OTHER_REGION))
    return regions


def countries_by_region() -> list[tuple[str, list[tuple[str, str]]]]:
    """Django grouped choices: [(region, [(code, name), ...]), ...], regions and names sorted."""
    regions = country_regions()
    grouped: dict[str, list[tuple[str, str]]] = {}
    for code, name in countries:
        grouped.setdefault(regions.get(code, OTHER_REGION), []).append((code, str(name)))
    return sorted(grouped.items(), key=lambda item: (item[0] == OTHER_REGION, item[0]))


class CountryPicker(forms.CheckboxSelectMultiple):
    """Check boxes grouped by region, each region folded, with a select-all box per region and a
    search box (small script; without it the boxes still work)."""

    template_name = "customers/widgets/country_picker.html"

    class Media:
        js = ("customers/country-picker.js",)

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        context["widget"]["regions"] = [
            {"name": group, "options": options, "selected": sum(1 for o in options if o["selected"])}
            for group, options, _index in context["widget"]["optgroups"]
        ]
        context["widget"]["selected_total"] = sum(r["selected"] for r in context["widget"]["regions"])
        context["widget"]["search_classes"] = " ".join(INPUT_CLASSES)
        return context


class CountryListField(forms.MultipleChoiceField):
    """Allowed countries: ISO 3166 alpha-2 codes; none chosen allows every country."""

    widget = CountryPicker

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(choices=countries_by_region, **kwargs)

    def validate(self, value: list[str]) -> None:
        if self.required and not value:
            raise forms.ValidationError(f"{self.label} is required", code="required")
        for item in value:
            if not self.valid_value(item):
                raise refuse(str(self.label), item, "must be an ISO 3166 alpha-2 country code such as GB", "country")

    def clean(self, value: Any) -> list[str]:
        return sorted(set(super().clean(value)))


class CodecListField(forms.MultipleChoiceField):
    """Codecs as check boxes, in the order of ``CODECS``; the refusal names the unknown codec."""

    widget = UnfoldAdminCheckboxSelectMultipleWidget

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(choices=[(codec, codec) for codec in CODECS], **kwargs)

    def validate(self, value: list[str]) -> None:
        if self.required and not value:
            raise forms.ValidationError(f"{self.label} is required", code="required")
        for item in value:
            if item not in CODECS:
                raise refuse(str(self.label), item, f"must be one of {', '.join(CODECS)}", "codec")

    def clean(self, value: Any) -> list[str]:
        chosen = set(super().clean(value))
        return [codec for codec in CODECS if codec in chosen]


_SEPARATORS = re.compile(r"[\s,;]+")


class LineListField(forms.CharField):
    """A list typed one item per line (commas and spaces also separate), stored as a JSON list.

    ``item_validator`` is called with each item and raises a refusal that names it.
    """

    widget = UnfoldAdminTextareaWidget(attrs={"rows": 4})

    def __init__(self, *, item_validator: Callable[[str], None], **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(strip=True, **kwargs)
        self.item_validator = item_validator

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, (list, tuple)):
            return [str(item).strip() for item in value if str(item).strip()]
        text = super().to_python(value)
        return [item for item in _SEPARATORS.split(text) if item] if text else []

    def validate(self, value: list[str]) -> None:
        if self.required and not value:
            raise forms.ValidationError(f"{self.label} is required", code="required")
        for item in value:
            self.item_validator(item)

    def run_validators(self, value: Any) -> None:
        # The length validators of a CharField measure text; the items were checked in validate().
        return


__all__ = [
    "CodecListField",
    "CountryListField",
    "CountryPicker",
    "LineListField",
    "countries_by_region",
    "country_regions",
]
