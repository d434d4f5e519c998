"""Back-office pages for rate decks on a Tariff or a Destination Set: import, export, diff.

The pages call the same services as ``tarifa deck``; a refused deck shows every bad row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.decorators import action

from tarifa.core.instants import MomentRefused, utc_moment
from tarifa.forms import LabeledForm
from tarifa.rating import decks


class DeckUploadForm(LabeledForm):  # refusals name field and value (tarifa.forms)
    file = forms.FileField(label="Deck file (CSV or XLSX)")
    mode = forms.ChoiceField(
        choices=[
            ("add", "Add (new versions, keep history)"),
            ("replace", "Replace at date (also end-date absent rates)"),
        ],
        initial="add",
    )
    at = forms.DateTimeField(
        label="Effective date (when rows without a date take effect, or the moment a diff compares)",
        required=False,
        help_text="ISO 8601, e.g. 2026-12-01 00:00; empty: now. Times are UTC. No price before it ever changes.",
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith((".csv", ".xlsx", ".txt")):
            raise forms.ValidationError(f"File {upload.name!r} is refused: must be a .csv or .xlsx deck")
        return upload

    def clean_at(self) -> datetime | None:
        """A moment whose UTC time overflows (``9999-12-31T23:59:59-23:59``) is refused here,
        not a 500 later (attack report L3)."""
        value = self.cleaned_data.get("at")
        if value is None:
            return None
        try:
            return utc_moment(value, "Effective date")
        except MomentRefused as exc:
            raise forms.ValidationError(str(exc), code="invalid") from None

    def moment(self) -> datetime | None:
        return self.cleaned_data.get("at")


class DeckAdminMixin:
    """Adds "Import deck", "Export CSV", "Export XLSX" and "Compare with file" to a change page."""

    actions_detail = ["deck_import", "deck_diff", "deck_export_csv", "deck_export_xlsx"]

    def _page(self, request: HttpRequest, target: Any, title: str, form: forms.Form, **extra: Any) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "title": f"{title}: {target}",
            "target": target,
            "form": form,
            "opts": self.model._meta,  # type: ignore[attr-defined]
            **extra,
        }
        return TemplateResponse(request, "rating/deck_page.html", context)

    def _target(self, request: HttpRequest, object_id: str) -> Any:
        """The tariff or destination set, or ``None`` for an id that is not one (``abc``, a
        deleted row, one outside this user's queryset): the caller answers as the change page does."""
        return self.get_object(request, object_id)  # type: ignore[attr-defined]

    def _missing(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)  # type: ignore[attr-defined]

    @action(description="Import deck", url_path="deck-import", permissions=["change"])
    def deck_import(self, request: HttpRequest, object_id: str) -> HttpResponse:
        target = self._target(request, object_id)
        if target is None:
            return self._missing(request, object_id)
        form = DeckUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = decks.import_file(target, upload.read(), upload.name, form.cleaned_data["mode"], form.moment())
            except decks.DeckRejected as exc:
                return self._page(request, target, "Import deck", form, errors=exc.errors)
            messages.success(request, f"Deck {upload.name} imported into {target}: {result}.")
            if result.details:
                messages.info(request, "; ".join(result.details))
            return redirect(request.path)
        return self._page(request, target, "Import deck", form, submit="Import")

    @action(description="Compare with file", url_path="deck-diff", permissions=["view"])
    def deck_diff(self, request: HttpRequest, object_id: str) -> HttpResponse:
        target = self._target(request, object_id)
        if target is None:
            return self._missing(request, object_id)
        form = DeckUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                rows = decks.parse_file(upload.read(), upload.name, target.time_zone)
            except decks.DeckRejected as exc:
                return self._page(request, target, "Compare with file", form, errors=exc.errors)
            diff = decks.diff_deck(target, rows, form.moment())
            changed = [(new, decks.describe_change(old, new, names)) for old, new, names in diff.changed]
            return self._page(request, target, "Compare with file", form, diff=diff, changed=changed, submit="Compare")
        return self._page(request, target, "Compare with file", form, submit="Compare")

    def _export(self, request: HttpRequest, object_id: str, fmt: str) -> HttpResponse:
        target = self._target(request, object_id)
        if target is None:
            return self._missing(request, object_id)
        try:
            data = decks.export_deck(target, fmt)  # type: ignore[arg-type]
        except ValueError as exc:  # a stored value no spreadsheet can hold, named with its rate
            messages.error(request, str(exc))
            return redirect(
                reverse(f"admin:{target._meta.app_label}_{target._meta.model_name}_change", args=[target.pk])
            )
        kind = "text/csv" if fmt == "csv" else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        response = HttpResponse(data, content_type=kind)
        response["Content-Disposition"] = f'attachment; filename="{decks.export_filename(target, fmt)}"'
        return response

    @action(description="Export CSV", url_path="deck-export-csv", permissions=["view"])
    def deck_export_csv(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._export(request, object_id, "csv")

    @action(description="Export XLSX", url_path="deck-export-xlsx", permissions=["view"])
    def deck_export_xlsx(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._export(request, object_id, "xlsx")
