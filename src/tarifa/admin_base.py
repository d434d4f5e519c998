"""The one ModelAdmin base of the back office: Unfold theme + export of any listing as
CSV, TXT, XLSX and XLS (django-import-export / tablib), respecting the listing's filters."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters, InlineModelAdmin
from django.contrib.admin.utils import NestedObjects
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import router
from django.db.models import Model, Q, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.forms.formsets import DELETION_FIELD_NAME
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from import_export.admin import ExportActionModelAdmin
from import_export.resources import Resource
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import TextFilter
from unfold.contrib.import_export.forms import ExportForm

from tarifa import changes
from tarifa.exports import FORMATS
from tarifa.forms import LabeledModelForm, labelled
from tarifa.sensitive import is_sensitive
from tarifa.validators import refuse


class HidesSecretsFromViewers:
    """Staff who may only view a record never see its secrets (attack report M2).

    Why drop the fields rather than mask them: a read-only page renders the stored value in clear;
    a user without the change permission has no use for a password, so the field is not on the page
    at all. Users with the change permission keep the field (they may set it)."""

    model: type[Model]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        if obj is None or self.has_change_permission(request, obj):  # type: ignore[attr-defined]
            return fieldsets
        opts = self.model._meta
        model_name = opts.model_name or ""
        kept = []
        for name, options in fieldsets:
            fields = [f for f in options.get("fields", ()) if not _any_sensitive(opts.app_label, model_name, f)]
            if fields:
                kept.append((name, {**options, "fields": fields}))
        return kept


def _any_sensitive(app_label: str, model_name: str, field: Any) -> bool:
    """A fieldset entry is a name or a tuple of names shown on one line."""
    names = field if isinstance(field, (list, tuple)) else [field]
    return any(is_sensitive(app_label, model_name, str(n)) for n in names)


def lookup_touches_a_secret(model: type[Model], lookup: str) -> bool:
    """True when any field the ``a__b__c__startswith`` lookup goes through is a secret.

    Each part is checked against the model it belongs to; the walk stops at the first part that is
    not a field (a lookup or transform such as ``startswith``), since nothing after it is a field."""
    current: type[Model] | None = model
    for part in lookup.split(LOOKUP_SEP):
        if current is None:
            return False
        opts = current._meta
        if is_sensitive(opts.app_label, opts.model_name or "", part):
            return True
        try:
            field = opts.get_field(part)
        except FieldDoesNotExist:
            return False
        current = field.related_model if field.is_relation else None
    return False


_inline_classes: dict[type, type] = {}


#: How many protected records a refused delete names; the rest are counted ("... and 97 more").
PROTECTED_SHOWN = 10


def shown_protected(items: list[str], limit: int = PROTECTED_SHOWN) -> list[str]:
    """The first ``limit`` records that keep a delete from happening, and how many more: an
    account with thousands of CDRs must not produce a page (or a message) listing them all."""
    if len(items) <= limit:
        return items
    return [*items[:limit], f"... and {len(items) - limit} more"]


def protected_refusal(instance: Model) -> ValidationError | None:
    """Why ``instance`` cannot be deleted (records that protect it, at most
    :data:`PROTECTED_SHOWN` named), or ``None`` when it can."""
    collector = NestedObjects(using=router.db_for_write(type(instance)))
    collector.collect([instance])
    if not collector.protected:
        return None
    users = shown_protected(sorted(f"{p._meta.verbose_name} {p}" for p in collector.protected))
    return refuse(
        f"Deleting {instance._meta.verbose_name}", str(instance), f"still used by {', '.join(users)}", "protected"
    )


def _short_protected(form_class: Any) -> Any:
    """An inline's form whose refused delete names at most :data:`PROTECTED_SHOWN` records
    (Django's own ``hand_clean_DELETE`` names every one: thousands of CDRs in one message)."""
    if not hasattr(form_class, "hand_clean_DELETE"):
        return form_class

    def hand_clean_DELETE(self: Any) -> None:
        if self.cleaned_data.get(DELETION_FIELD_NAME, False) and not self.instance._state.adding:
            problem = protected_refusal(self.instance)
            if problem is not None:
                raise problem

    return type(form_class.__name__, (form_class,), {"hand_clean_DELETE": hand_clean_DELETE})


class TarifaAdmin(HidesSecretsFromViewers, ModelAdmin, ExportActionModelAdmin):
    export_form_class = ExportForm
    export_formats = FORMATS
    list_filter_submit = True
    list_per_page = 50
    show_full_result_count = False
    form = LabeledModelForm

    def export_action(self, request: HttpRequest) -> HttpResponse:
        """The export page, whose query string filters the rows like the list's: a parameter that is
        no filter of the list (``?format=0``) sends back to the list with a message naming it, as
        the list itself does, instead of an error page (attack finding 7)."""
        try:
            return super().export_action(request)
        except IncorrectLookupParameters:
            query = request.GET.urlencode()
            messages.error(request, f"Export filter {query!r} is refused: must be filters of this list")
            opts = self.model._meta
            url = reverse(f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist")
            return HttpResponseRedirect(url)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        # Every refusal names field and value (tarifa.forms), whatever form an admin declares.
        return labelled(super().get_form(request, obj, change, **kwargs))

    def get_formsets_with_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        for formset, inline in super().get_formsets_with_inlines(request, obj):
            formset.form = _short_protected(labelled(formset.form))
            yield formset, inline

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """Django's delete page (and the bulk delete action) names at most
        :data:`PROTECTED_SHOWN` of the records that protect the row, then how many more."""
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        return to_delete, model_count, perms_needed, shown_protected(list(protected))

    # --- the audit log: every change made here is announced (tarifa.changes) ----------------
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        before = _stored_snapshot(obj) if change else None
        super().save_model(request, obj, form, change)
        changes.announce(admin_actor(request), obj, "update" if change else "create", before, changes.snapshot(obj))

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Inline rows (a SIP device under its account) are changes of their own."""
        super().save_related(request, form, formsets, change)
        actor = admin_actor(request)
        for formset in formsets:
            for obj in getattr(formset, "new_objects", []):
                changes.announce(actor, obj, "create", None, changes.snapshot(obj))
            for obj, _fields in getattr(formset, "changed_objects", []):
                changes.announce(actor, obj, "update", None, changes.snapshot(obj))
            for obj in getattr(formset, "deleted_objects", []):
                changes.announce(actor, obj, "delete", changes.snapshot(obj), None)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        before, pk = changes.snapshot(obj), obj.pk
        super().delete_model(request, obj)
        obj.pk = obj.pk if obj.pk is not None else pk
        changes.announce(admin_actor(request), obj, "delete", before, None)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        gone = [(obj, changes.snapshot(obj)) for obj in _with_many_to_many(queryset)]
        super().delete_queryset(request, queryset)
        actor = admin_actor(request)
        for obj, before in gone:
            obj.pk = before.get("id", obj.pk)
            changes.announce(actor, obj, "delete", before, None)

    def get_actions(self, request: HttpRequest) -> Any:
        """Each action (other than delete, announced per record above) is announced per selected
        record under its own name, with the record before and after."""
        actions = super().get_actions(request)
        return {
            name: (func if name == "delete_selected" else _audited(func, name), name, description)
            for name, (func, name, description) in actions.items()
        }

    # --- no secret reaches a viewer: not on pages, not through a listing filter (M2) ----------
    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        """``?sip_password__startswith=Sip6`` would let anyone who sees the listing guess a secret
        one character at a time: no query-string lookup may go through a secret field."""
        if lookup_touches_a_secret(self.model, lookup):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> list[InlineModelAdmin]:
        """Inlines (a SIP device's secret under its account) hide secrets from viewers the same way."""
        instances = super().get_inline_instances(request, obj)
        for inline in instances:
            cls = type(inline)
            if not isinstance(inline, HidesSecretsFromViewers):
                if cls not in _inline_classes:
                    _inline_classes[cls] = type(cls.__name__, (HidesSecretsFromViewers, cls), {})
                inline.__class__ = _inline_classes[cls]
        return instances

    # --- who may export what (issue 12 item 2) ---------------------------------------------
    def has_export_permission(self, request: HttpRequest) -> bool:
        """An export shows every row of the listing: it needs what the listing needs (view or change)."""
        return self.has_view_permission(request)

    def get_export_resource_classes(self, request: HttpRequest) -> list[type[Resource]]:
        return [_without_secrets(cls) for cls in super().get_export_resource_classes(request)]

    # --- a whole IP address is searched as itself (issue 11 item 20) -------------------------
    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """``198.51.100.2`` finds that address, not ``198.51.100.20``-``29``: a search for a whole
        IP address matches every search field exactly; other searches stay substring matches."""
        address = ip_address_or_none(search_term)
        if address is None:
            return super().get_search_results(request, queryset, search_term)
        match = Q()
        for field in self.get_search_fields(request):
            match |= Q(**{f"{field.lstrip('^=@')}__iexact": address})
        return queryset.filter(match), True


def admin_actor(request: HttpRequest) -> changes.Actor:
    """The logged-in user of a back-office request, and the client's address."""
    user = getattr(request, "user", None)
    user_id = getattr(user, "pk", None)
    return changes.Actor(
        user_id=user_id,
        label=user.get_username() if user_id is not None else "",  # type: ignore[union-attr]
        address=changes.address_of(request.META),
        via="admin",
    )


def _stored_snapshot(obj: Model) -> dict[str, Any] | None:
    stored = type(obj)._default_manager.filter(pk=obj.pk).first()
    return changes.snapshot(stored) if stored is not None else None


def _with_many_to_many(queryset: QuerySet) -> QuerySet:
    """``queryset`` with its many-to-many fields fetched in one query each: ``changes.snapshot``
    reads them for every record (an account's POP restriction), else one query per record."""
    return queryset.prefetch_related(*(f.name for f in queryset.model._meta.many_to_many))


_MOST_AUDITED = 1000  # an action over more records is announced for the first 1,000 only


def _audited(func: Any, name: str) -> Any:
    def run(modeladmin: Any, request: HttpRequest, queryset: QuerySet) -> Any:
        pks = list(queryset.values_list("pk", flat=True)[:_MOST_AUDITED])
        model = queryset.model
        before = {o.pk: changes.snapshot(o) for o in _with_many_to_many(model._default_manager.filter(pk__in=pks))}
        result = func(modeladmin, request, queryset)
        actor = admin_actor(request)
        for obj in _with_many_to_many(model._default_manager.filter(pk__in=pks)):
            after = changes.snapshot(obj)
            if after != before.get(obj.pk):
                changes.announce(actor, obj, name, before.get(obj.pk), after)
        return result

    run.__name__ = getattr(func, "__name__", name)
    for attribute in ("short_description", "allowed_permissions", "permissions"):
        if hasattr(func, attribute):
            setattr(run, attribute, getattr(func, attribute))
    return run


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

    class WithoutSecrets(resource_class):
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


def ip_address_or_none(text: str) -> str | None:
    """The address as stored (IPv6 compressed) when ``text`` is one whole IP address, else None."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def text_filter(title: str, parameter: str, lookup: str, op: str = "icontains") -> type[TextFilter]:
    """A free-text listing filter on any lookup path, e.g. ``accounts__sipdevices__login``."""

    def queryset(self: TextFilter, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value in (None, ""):
            return queryset
        address = ip_address_or_none(value)
        if address is not None and op == "icontains":
            return queryset.filter(**{f"{lookup}__iexact": address}).distinct()
        return queryset.filter(**{f"{lookup}__{op}": value.strip()}).distinct()

    return type(
        f"{parameter.title().replace('_', '')}Filter",
        (TextFilter,),
        {"title": title, "parameter_name": parameter, "queryset": queryset},
    )


__all__ = ["ReadOnlyAdmin", "TarifaAdmin", "admin", "text_filter"]
