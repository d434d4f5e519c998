"""The one ModelAdmin base of the back office: Unfold theme + export of any listing as
CSV, TXT, XLSX and XLS (django-import-export / tablib), respecting the listing's filters."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from import_export.admin import ExportActionModelAdmin
from import_export.resources import Resource
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import TextFilter
from unfold.contrib.import_export.forms import ExportForm

from tarifa.sensitive import is_sensitive


class TarifaAdmin(ModelAdmin, ExportActionModelAdmin):
    export_form_class = ExportForm
    list_filter_submit = True
    list_per_page = 50
    show_full_result_count = False

    # --- who may export what (issue 12 item 2) ---------------------------------------------
    def has_export_permission(self, request: HttpRequest) -> bool:
        """An export shows every row of the listing: it needs what the listing needs (view or change)."""
        return self.has_view_permission(request)

    def get_export_resource_classes(self, request: HttpRequest) -> list[type[Resource]]:
        return [_without_secrets(cls) for cls in super().get_export_resource_classes(request)]


class ReadOnlyAdmin(TarifaAdmin):
    """For append-only records: visible and exportable, never edited or deleted here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _without_secrets(resource_class: type[Resource]) -> type[Resource]:
    """The resource minus every field ``tarifa.sensitive`` calls a secret (by name or attribute)."""

    class WithoutSecrets(resource_class):  # type: ignore[valid-type,misc]
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            model = self._meta.model
            for name, field in list(self.fields.items()):
                paths = {name, field.attribute or "", field.column_name or ""}
                if model is not None and any(
                    is_sensitive(model._meta.app_label, model._meta.model_name, p) for p in paths if p
                ):
                    del self.fields[name]

    WithoutSecrets.__name__ = WithoutSecrets.__qualname__ = resource_class.__name__
    return WithoutSecrets


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
