"""The one ModelAdmin base of the back office: Unfold theme + export of any listing as
CSV, TXT, XLSX and XLS (django-import-export / tablib), respecting the listing's filters."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from import_export.admin import ExportActionModelAdmin
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import TextFilter
from unfold.contrib.import_export.forms import ExportForm

from tarifa.forms import LabeledModelForm, labelled


class TarifaAdmin(ModelAdmin, ExportActionModelAdmin):
    export_form_class = ExportForm
    list_filter_submit = True
    list_per_page = 50
    show_full_result_count = False
    form = LabeledModelForm

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        # Every refusal names field and value (tarifa.forms), whatever form an admin declares.
        return labelled(super().get_form(request, obj, change, **kwargs))

    def get_formsets_with_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        for formset, inline in super().get_formsets_with_inlines(request, obj):
            formset.form = labelled(formset.form)
            yield formset, inline


class ReadOnlyAdmin(TarifaAdmin):
    """For append-only records: visible and exportable, never edited or deleted here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def text_filter(title: str, parameter: str, lookup: str, op: str = "icontains") -> type[TextFilter]:
    """A free-text listing filter on any lookup path, e.g. ``accounts__sipdevices__login``."""

    def queryset(self: TextFilter, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value in (None, ""):
            return queryset
        return queryset.filter(**{f"{lookup}__{op}": value.strip()}).distinct()

    return type(
        f"{parameter.title().replace('_', '')}Filter",
        (TextFilter,),
        {"title": title, "parameter_name": parameter, "queryset": queryset},
    )


__all__ = ["ReadOnlyAdmin", "TarifaAdmin", "admin", "text_filter"]
