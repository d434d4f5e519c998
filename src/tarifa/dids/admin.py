"""Back office for DID plans, the DID inventory and virtual numbers.

The inventory's pages call the same services as ``tarifa did``: "Import DIDs" on the list
(needs the add permission), "Assign", "Release" and "Change status" on a number (need the change
permission). A number's account and status are not edited in the plain form: they change only
through those pages, which apply the status rules and say why a number cannot be sold.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter, TextFilter
from unfold.decorators import action
from unfold.widgets import UnfoldAdminPasswordWidget

from tarifa import validators as v
from tarifa.admin_base import TarifaAdmin, text_filter
from tarifa.core.dids import ASSIGNABLE, IMPORT_COLUMNS, NumberRefused, parse_number, pattern_regex
from tarifa.customers.forms import KeepSecretsMixin
from tarifa.customers.models import Account
from tarifa.dids import imports, service
from tarifa.dids.choices import DidStatus
from tarifa.dids.models import Did, DidPlan, NpaNxx, OriginRate, PayphoneOrigin, VirtualNumber
from tarifa.forms import LabeledForm, LabeledModelForm


class OriginRateFormSet(BaseInlineFormSet):
    """Names the repeated origin prefix (Django's own message names only the columns)."""

    def validate_unique(self) -> None:
        seen: set[tuple[str, bool]] = set()
        errors: list[ValidationError] = []
        for form in self.forms:
            if not form.is_valid() or not form.cleaned_data or form.cleaned_data.get("DELETE"):
                continue
            key = (form.cleaned_data.get("prefix") or "", bool(form.cleaned_data.get("toll_free")))
            if key in seen:
                kind = "toll-free origin rate" if key[1] else "origin rate"
                errors.append(v.refuse("Origin prefix", key[0], f"is listed twice: a plan has one {kind} per prefix"))
            seen.add(key)
        if errors:
            raise ValidationError(errors)
        super().validate_unique()


class OriginRateInline(TabularInline):
    """Tiered origination: the plan's origin prefix -> rate table (docs/origination.md)."""

    model = OriginRate
    formset = OriginRateFormSet
    extra = 0
    fields = ("prefix", "rate", "toll_free")


@admin.register(DidPlan)
class DidPlanAdmin(TarifaAdmin):
    list_display = ("name", "monthly_fee", "setup_fee", "included_minutes", "inbound_rate", "lata_billing")
    search_fields = ("name",)
    inlines = (OriginRateInline,)
    fieldsets = (
        (
            None,
            {"fields": ("name", "description", "monthly_fee", "setup_fee", "included_minutes", "offered_for_signup")},
        ),
        (
            "Origination (blended rate, toll-free)",
            {
                "fields": (
                    "inbound_rate",
                    "inbound_interval_1",
                    "inbound_interval_n",
                    "toll_free_rate",
                    "payphone_surcharge",
                ),
            },
        ),
        (
            "LATA-based billing (US numbers)",
            {
                "fields": (
                    "lata_billing",
                    "lata_intra_intrastate",
                    "lata_inter_intrastate",
                    "lata_interstate",
                    "lata_intra_interstate",
                ),
            },
        ),
        (
            "Short-call penalty",
            {
                "fields": ("short_call_seconds", "short_call_threshold", "short_call_penalty", "short_call_mode"),
            },
        ),
    )


@admin.register(OriginRate)
class OriginRateAdmin(TarifaAdmin):
    """Every plan's origin rates in one list (edited on the plan's page as well)."""

    list_display = ("plan", "prefix", "rate", "toll_free")
    search_fields = ("prefix", "plan__name")
    list_filter = ("plan", "toll_free")


@admin.register(PayphoneOrigin)
class PayphoneOriginAdmin(TarifaAdmin):
    list_display = ("prefix", "description")
    search_fields = ("prefix", "description")


class LataUploadForm(LabeledForm):  # refusals name field and value (tarifa.forms)
    file = forms.FileField(label="LATA file (CSV: npa_nxx,lata,state)")
    replace = forms.BooleanField(label="Also remove the NPA-NXX entries the file does not list", required=False)


@admin.register(NpaNxx)
class NpaNxxAdmin(TarifaAdmin):
    """The NPA-NXX -> LATA/state table, imported with "Import LATA file" (or ``tarifa lata import``)."""

    list_display = ("npa_nxx", "lata", "state")
    search_fields = ("npa_nxx", "lata", "state")
    list_filter = (text_filter("NPA-NXX starts with", "npa_nxx", "npa_nxx", "startswith"), "state")
    actions_list = ["lata_import"]

    @action(description="Import LATA file", url_path="lata-import", permissions=["add"])
    def lata_import(self, request: HttpRequest) -> HttpResponse:
        from tarifa.dids.lata import LataRejected, import_lata

        form = LataUploadForm(request.POST or None, request.FILES or None)
        problems: list[Any] = []
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                done = import_lata(upload.read(), upload.name, replace=form.cleaned_data["replace"])
            except LataRejected as exc:
                problems = exc.problems
            else:
                messages.success(
                    request, f"{upload.name}: {done.added} added, {done.changed} changed, {done.removed} removed."
                )
                return redirect("admin:dids_npanxx_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Import LATA file",
            "form": form,
            "problems": problems,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "dids/lata_import.html", context)


class DidForm(KeepSecretsMixin, LabeledModelForm):
    """A number is added to the stock here; it goes on an account only through *Assign*, which
    checks that it can be sold and records the plan and the activation date."""

    secret_fields = ("password",)
    # typed as the import takes it (+, spaces, dashes); clean_number stores E.164 digits
    number = forms.CharField(label="Number", max_length=30, help_text="International form, e.g. +1 212 555 1234.")

    class Meta:
        model = Did
        fields = "__all__"

    def clean_number(self) -> str:
        """The number checked and normalised by the DID import's rule (``core.dids.parse_number``),
        so a number the import refuses is refused here with the same words, and one it takes is
        stored as the same digits."""
        text = self.cleaned_data["number"]
        try:
            return parse_number(text).number
        except NumberRefused as exc:
            raise v.refuse("Number", text, str(exc)) from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or self.cleaned_data
        if self.instance.pk is None:
            status = cleaned.get("status")
            if status in (DidStatus.ASSIGNED, DidStatus.QUARANTINED):
                self.add_error(
                    "status",
                    f"Status {status!r} is refused: add the number as available, reserved, "
                    "porting or disabled, then use Assign (or Release)",
                )
            if cleaned.get("account") is not None:
                self.add_error(
                    "account",
                    "Account is refused here: add the number, then use Assign, which checks that it can be sold",
                )
        return cleaned


class PatternFilter(TextFilter):
    """The local number (after country and area code): digits, ``*`` any digits, ``?`` one digit."""

    title = "Local number pattern (555*)"
    parameter_name = "pattern"

    def queryset(self, request: HttpRequest, queryset: QuerySet[Did]) -> QuerySet[Did]:
        value = (self.value() or "").strip()
        if not value:
            return queryset
        try:
            return queryset.filter(local_number__regex=pattern_regex(value))
        except ValueError as exc:
            messages.error(request, str(exc))
            return queryset.none()


class SellableFilter(admin.SimpleListFilter):
    """Sellable today: available, or quarantined until no later than today (evaluated on read)."""

    title = "sellable today"
    parameter_name = "sellable"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Sellable today"), ("no", "Not sellable")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Did]) -> QuerySet[Did]:
        sellable = service.available_q(service.today())
        if self.value() == "yes":
            return queryset.filter(sellable)
        if self.value() == "no":
            return queryset.exclude(sellable)
        return queryset


class ImportForm(LabeledForm):
    file = forms.FileField(
        label="Inventory file (CSV or XLSX)",
        help_text="Columns: " + ", ".join(IMPORT_COLUMNS) + "; only number is required.",
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith((".csv", ".xlsx", ".txt")):
            raise forms.ValidationError(f"File {upload.name!r} is refused: must be a .csv or .xlsx file")
        return upload


class AssignForm(LabeledForm):
    account = forms.CharField(label="Account (code or name)", max_length=100)
    plan = forms.ModelChoiceField(label="Plan", queryset=DidPlan.objects.all())
    activation_date = forms.DateField(label="Activation date", required=False, help_text="Empty: today (UTC).")
    mac_address = forms.CharField(label="MAC address", required=False, max_length=17)
    username = forms.CharField(label="Username", required=False, max_length=64)
    password = forms.CharField(
        label="Password",
        required=False,
        max_length=64,
        strip=False,
        widget=UnfoldAdminPasswordWidget(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    cost_center = forms.CharField(label="Location / cost center", required=False, max_length=100)
    out_payment_rate = forms.DecimalField(
        label="Out-payment rate (per minute)", required=False, min_value=0, max_digits=12, decimal_places=6
    )

    def clean_account(self) -> Account:
        try:
            return service.find_account(self.cleaned_data["account"])
        except service.DidRefused as exc:
            said = str(exc)
            raise forms.ValidationError(said[:1].upper() + said[1:]) from None


class ReleaseForm(LabeledForm):
    on = forms.DateField(label="Release date", required=False, help_text="Empty: today (UTC).")
    quarantine_days = forms.IntegerField(
        label="Quarantine days",
        required=False,
        min_value=0,
        max_value=3650,
        help_text="Empty: TARIFA_DID_QUARANTINE_DAYS.",
    )


class StatusForm(LabeledForm):
    status = forms.ChoiceField(
        label="New status",
        choices=[(s.value, s.label) for s in DidStatus if s not in (DidStatus.ASSIGNED, DidStatus.QUARANTINED)],
    )


@admin.register(Did)
class DidAdmin(TarifaAdmin):
    form = DidForm
    actions_list = ["did_import"]
    actions_detail = ["did_assign", "did_release", "did_status"]
    list_display = (
        "number",
        "country",
        "area_code",
        "status",
        "sellable_today",
        "quarantine_until",
        "account",
        "plan",
        "vendor",
        "monthly_cost",
        "activation_date",
    )
    search_fields = ("number", "account__name", "account__account_code", "cost_center")
    list_filter = (
        text_filter("Number starts with", "number", "number", "startswith"),
        text_filter("Area code", "area_code", "area_code", "exact"),
        PatternFilter,
        SellableFilter,
        ("status", ChoicesDropdownFilter),
        "country",
        "vendor",
        "plan",
    )
    autocomplete_fields = ("account",)

    @admin.display(boolean=True, description="sellable today")
    def sellable_today(self, obj: Did) -> bool:
        """A quarantine that has ended reads as available (evaluated on read, no timer)."""
        return obj.effective_status(service.today()) in ASSIGNABLE

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        """Account, status and quarantine change only through Assign / Release / Change status."""
        derived = ("country", "area_code", "local_number")
        if obj is None:
            return derived
        return (*derived, "number", "status", "quarantine_until", "account")

    # --- pages ------------------------------------------------------------------------------------

    def _page(
        self, request: HttpRequest, title: str, form: forms.Form, target: Did | None = None, **extra: Any
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": f"{title}: {target}" if target else title,
            "target": target,
            "form": form,
            "opts": self.model._meta,
            **extra,
        }
        return TemplateResponse(request, "dids/did_page.html", context)

    def _back(self, did: Did) -> HttpResponse:
        return redirect(reverse("admin:dids_did_change", args=[did.pk]))

    @action(description="Import DIDs", url_path="import", permissions=["add"])
    def did_import(self, request: HttpRequest) -> HttpResponse:
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = imports.import_file(upload.read(), upload.name)
            except imports.ImportRejected as exc:
                return self._page(
                    request, "Import DIDs", form, errors=exc.errors, count=exc.count, more=exc.more, submit="Import"
                )
            messages.success(request, f"{upload.name}: {result}.")
            return redirect(reverse("admin:dids_did_changelist"))
        return self._page(request, "Import DIDs", form, submit="Import")

    @action(description="Assign", url_path="assign", permissions=["change"])
    def did_assign(self, request: HttpRequest, object_id: str) -> HttpResponse:
        did = self.get_object(request, object_id)
        if did is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        form = AssignForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            options = service.DidOptions(
                mac_address=data["mac_address"],
                username=data["username"],
                password=data["password"],
                cost_center=data["cost_center"],
                out_payment_rate=data["out_payment_rate"] or Decimal(0),
            )
            try:
                service.assign_did(did, data["account"], data["plan"], data["activation_date"], options)
            except service.DidRefused as exc:
                return self._page(request, "Assign", form, did, refusal=str(exc), submit="Assign")
            messages.success(request, f"{did} assigned to {data['account']}.")
            return self._back(did)
        return self._page(request, "Assign", form, did, submit="Assign")

    @action(description="Release", url_path="release", permissions=["change"])
    def did_release(self, request: HttpRequest, object_id: str) -> HttpResponse:
        did = self.get_object(request, object_id)
        if did is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        form = ReleaseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            on: date | None = form.cleaned_data["on"]
            try:
                released = service.release_did(did, on, quarantine_days=form.cleaned_data["quarantine_days"])
            except service.DidRefused as exc:
                return self._page(request, "Release", form, did, refusal=str(exc), submit="Release")
            messages.success(request, f"{did} released; quarantined until {released.quarantine_until}.")
            return self._back(did)
        return self._page(request, "Release", form, did, submit="Release")

    @action(description="Change status", url_path="status", permissions=["change"])
    def did_status(self, request: HttpRequest, object_id: str) -> HttpResponse:
        did = self.get_object(request, object_id)
        if did is None:
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, object_id)
        form = StatusForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                changed = service.set_status(did, form.cleaned_data["status"])
            except service.DidRefused as exc:
                return self._page(request, "Change status", form, did, refusal=str(exc), submit="Change")
            messages.success(request, f"{did} is now {changed.status}.")
            return self._back(did)
        return self._page(request, "Change status", form, did, submit="Change")


@admin.register(VirtualNumber)
class VirtualNumberAdmin(TarifaAdmin):
    list_display = ("number", "primary_did", "account", "activation_date", "additional_charge")
    search_fields = ("number", "primary_did__number", "account__name", "account__customer__company")
    autocomplete_fields = ("account", "primary_did")  # VirtualNumber.clean: assigned DID, same customer
