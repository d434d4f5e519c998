"""One generic layer for the management API's objects: list (filters, ordering, cursor pages), get,
create, update (PATCH), delete or deactivate; each object is a ``Resource`` of a few lines.

- Validation in one place: writes go through the back office's own form of the model (the
  ``ModelAdmin``'s form, else ``LabeledModelForm``), whose ``_post_clean`` runs the model's
  ``full_clean()``; the API refuses exactly what the back office refuses. Refusals are RFC 9457
  problems with ``errors: [{field, value, rule, reason}]``.
- Tenants in the same place: a customer's (or reseller's) token sees its subtree only; another
  tenant's object is a 404, exactly like one that does not exist. Objects with no customer (vendors,
  POPs, ...) are the operator's: other tokens get a 403 for the whole collection, which names no object.
- Pages: an opaque cursor over (ordering key, id), never OFFSET: every page costs one index range scan.
- Every change is announced to the audit log (``tarifa.changes``).

Deliberately without ``from __future__ import annotations``: django-ninja reads the generated views'
annotations, which are real classes made at run time.
"""

import base64
import binascii
import datetime as dt
import decimal
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from django import forms as django_forms
from django.contrib import admin as django_admin
from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ValidationError
from django.db import models, transaction
from django.db.models import Model, Q, QuerySet
from django.forms.models import model_to_dict, modelform_factory
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status
from ninja.responses import NinjaJSONEncoder
from pydantic import ConfigDict, create_model

from tarifa import changes
from tarifa.admin_base import protected_refusal
from tarifa.api.access import MANAGEMENT, Caller, caller_of
from tarifa.api.problems import Problem
from tarifa.core.instants import MomentRefused, utc_moment
from tarifa.fields import ExactDecimalField
from tarifa.forms import LabeledModelForm, labelled
from tarifa.sensitive import is_sensitive

MAX_LIMIT = 500
DEFAULT_LIMIT = 50


class StrictIn(Schema):
    """A request body: a field that is not the object's is refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


class ErrorItem(Schema):
    field: str
    reason: str
    value: Any | None = None
    rule: str | None = None


class ProblemOut(Schema):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    instance: str
    detail: str | None = None
    errors: list[ErrorItem] | None = None


ERRORS = {401: ProblemOut, 403: ProblemOut, 404: ProblemOut, 422: ProblemOut, 429: ProblemOut}


@dataclass
class Resource:
    """One object type of the API. ``tenant`` is the lookup from the model to the customer whose
    subtree owns it ("" for a customer itself; None: the operator's only)."""

    path: str
    model: type[Model]
    area: str
    tenant: str | None
    fields: tuple[str, ...] = ()  # writable (the form's fields); empty: read only
    write_only: dict[str, Any] = field(default_factory=dict)  # form-only fields (a password) -> type
    shown: tuple[str, ...] = ()  # read-only fields shown besides ``fields`` and the id
    filters: dict[str, str] = field(default_factory=dict)  # query parameter -> model lookup
    orderings: tuple[str, ...] = ("id",)
    retire: tuple[str, Any] | None = None  # (field, value) set by DELETE instead of deleting
    form: "type[django_forms.ModelForm[Any]] | None" = None
    example: dict[str, Any] | None = None
    description: str = ""

    @property
    def label(self) -> str:
        return str(self.model._meta.verbose_name)

    @property
    def writable(self) -> bool:
        return bool(self.fields)


#: model -> its resource (and so its tenant lookup), for the form's choice fields.
REGISTRY: dict[type[Model], Resource] = {}


# --- schemas made from the model's fields -----------------------------------------------------------


def _python_type(f: Any, for_input: bool) -> Any:
    if isinstance(f, models.ManyToManyField):
        return list[int]
    if isinstance(f, models.ForeignKey):
        return int
    if isinstance(f, models.BooleanField):
        return bool
    if isinstance(f, ExactDecimalField):  # stored as integer units, a decimal to everyone else
        return decimal.Decimal if for_input else str
    if isinstance(f, (models.AutoField, models.IntegerField)):
        return int
    if isinstance(f, models.DecimalField):
        return decimal.Decimal if for_input else str
    if isinstance(f, models.DateTimeField):
        return dt.datetime
    if isinstance(f, models.DateField):
        return dt.date
    if isinstance(f, models.TimeField):
        return dt.time
    if isinstance(f, models.JSONField):
        return Any
    return str


def _field(model: type[Model], name: str) -> Any:
    return model._meta.get_field(name)


def _out_schema(res: Resource) -> type[Schema]:
    spec: dict[str, Any] = {"id": (int, ...)}
    for name in (*res.fields, *res.shown):
        f = _field(res.model, name)
        kind = _python_type(f, for_input=False)
        spec[name] = (kind | None, None) if f.null else (kind, ...)
    return create_model(f"{res.model.__name__}Out", __base__=Schema, **spec)


def _in_schema(res: Resource) -> type[Schema]:
    """Every field optional: the form says what is required (one validation, one wording)."""
    spec: dict[str, Any] = {}
    for name in res.fields:
        f = _field(res.model, name)
        spec[name] = (_python_type(f, for_input=True) | None, None)
    for name, kind in res.write_only.items():
        spec[name] = (kind | None, None)
    return create_model(f"{res.model.__name__}In", __base__=StrictIn, **spec)


def _filter_schema(res: Resource) -> type[Schema]:
    spec: dict[str, Any] = {
        "limit": (int, DEFAULT_LIMIT),
        "cursor": (str | None, None),
        "ordering": (
            Literal[tuple(o for key in res.orderings for o in (key.lstrip("-"), f"-{key.lstrip('-')}"))],
            res.orderings[0],
        ),
    }
    for param, lookup in res.filters.items():
        spec[param] = (_lookup_type(res.model, lookup) | None, None)
    return create_model(f"{res.model.__name__}Filters", __base__=Schema, **spec)


def _filter_field(model: type[Model], lookup: str) -> Any:
    """The model field an exact filter compares with (None for a lookup through a relation or with an operator)."""
    try:
        return model._meta.get_field(lookup)
    except FieldDoesNotExist:
        return None


def _lookup_type(model: type[Model], lookup: str) -> Any:
    parts = lookup.split("__")
    current: Any = model
    f: Any = None
    for part in parts:
        try:
            f = current._meta.get_field(part)
        except (FieldDoesNotExist, AttributeError):
            break
        current = f.related_model if f.is_relation else None
    if parts[-1] in ("startswith", "icontains", "istartswith"):
        return str
    if parts[-1] in ("gte", "lte", "gt", "lt") and f is not None:
        return _python_type(f, for_input=True)
    return int if f is not None and f.is_relation else _python_type(f, for_input=True) if f is not None else str


# --- values out -----------------------------------------------------------------------------------


_PLAN: dict[str, list[tuple[str, str, bool, bool]]] = {}


def _plan(res: Resource) -> list[tuple[str, str, bool, bool]]:
    """(name, attribute, secret, many-to-many) of each shown field, worked out once per resource."""
    plan = _PLAN.get(res.path)
    if plan is None:
        opts = res.model._meta
        plan = []
        for name in (*res.fields, *res.shown):
            f = _field(res.model, name)
            secret = is_sensitive(opts.app_label, opts.model_name or "", name)
            plan.append((name, f.attname, secret, isinstance(f, models.ManyToManyField)))
        _PLAN[res.path] = plan
    return plan


def _dump(res: Resource, obj: Model) -> dict[str, Any]:
    out: dict[str, Any] = {"id": obj.pk}
    for name, attname, secret, many in _plan(res):
        if many:
            out[name] = sorted(r.pk for r in getattr(obj, name).all())
            continue
        value = getattr(obj, attname)
        if value is None or isinstance(value, (bool, int, str)):
            if secret and value not in (None, ""):
                value = changes.MASK
        elif isinstance(value, decimal.Decimal):
            value = str(value)
        elif not isinstance(value, (list, dict, dt.date, dt.time)):
            value = str(value)  # a country, an address object: as text
        out[name] = value
    return out


def answer(request: HttpRequest, body: Any, status: int = 200) -> HttpResponse:
    """A JSON answer written straight from the dicts ``_dump`` made (they follow the documented
    schema, which the schemathesis test checks): validating every row again through pydantic cost
    about half of a page's time."""
    return HttpResponse(json.dumps(body, cls=NinjaJSONEncoder), status=status, content_type="application/json")


# --- who sees what ------------------------------------------------------------------------------


def scoped(res: Resource, caller: Caller, qs: QuerySet[Any] | None = None) -> QuerySet[Any]:
    """The objects of ``res`` the caller may see (its subtree), closed for operator-only objects."""
    qs = res.model._default_manager.all() if qs is None else qs
    if caller.operator:
        return qs
    if res.tenant is None:
        return qs.none()
    assert caller.root is not None
    return qs.filter(caller.root.in_subtree(res.tenant))


def _guard(res: Resource, caller: Caller, action: str) -> None:
    if not caller.operator and res.tenant is None:
        raise Problem(403, "Forbidden", f"{res.path}: only an operator's token (or a back-office user) may use these")
    if not caller.may(res.area, action, res.model):
        need = f"{res.area}:read" if action == "view" else f"{res.area}:write"
        raise Problem(403, "Forbidden", f"This operation needs the scope {need!r} (or read/full) for {res.path}")


def _get(res: Resource, caller: Caller, pk: int) -> Model:
    found = scoped(res, caller).filter(pk=pk).first()
    if found is None:
        raise Problem(404, "Not found", f"No {res.label} {pk}")
    return found  # type: ignore[no-any-return]


def _filter_value(param: str, value: Any, field: Any = None) -> Any:
    """A filter's value as the database can take it: an overflowing offset (-20:58), an integer
    beyond 64 bits or a malformed IP address (PostgreSQL's inet refuses it when the rows are read)
    is a 422 naming the parameter, not a database error."""
    if isinstance(field, models.GenericIPAddressField) and value is not None:
        try:
            field.run_validators(value)
        except ValidationError as exc:
            rule = "; ".join(exc.messages)
            reason = f"{param} {value!r} is refused: {rule}"
        else:
            return value
    elif isinstance(value, dt.datetime):
        try:
            return utc_moment(value, param)
        except MomentRefused as exc:
            reason = rule = str(exc)
    elif isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        rule = "must be a whole number of at most 19 digits"
        reason = f"{param} {value} is refused: {rule}"
    else:
        return value
    raise Problem(
        422, "Unprocessable request", reason, [{"field": param, "value": str(value), "rule": rule, "reason": reason}]
    )


# --- cursors --------------------------------------------------------------------------------------


def encode_cursor(key: Any, pk: int) -> str:
    if isinstance(key, (dt.datetime, dt.date)):
        key = key.isoformat()
    elif isinstance(key, decimal.Decimal):
        key = str(key)
    return base64.urlsafe_b64encode(json.dumps([key, pk]).encode()).decode().rstrip("=")


def _decode(res: Resource, key_field: str, cursor: str) -> tuple[Any, int]:
    bad = Problem(
        422,
        "Unprocessable request",
        f"cursor {cursor[:40]!r} is refused: not a cursor of this listing (use next_cursor as given)",
        [{"field": "cursor", "value": cursor[:40], "rule": "must be a next_cursor of this listing", "reason": ""}],
    )
    try:
        key, pk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(pk, int) or isinstance(pk, bool):
            raise bad
        f = _field(res.model, key_field) if key_field != "id" else None
        value = f.to_python(key) if f is not None else int(key)
        if isinstance(value, dt.datetime):  # one whose UTC time overflows is refused, not a database error
            value = utc_moment(value, "cursor")
    except (ValueError, TypeError, binascii.Error, ValidationError, UnicodeDecodeError):
        raise bad from None
    return value, pk


def page(res: Resource, qs: QuerySet[Any], ordering: str, cursor: str | None, limit: int) -> dict[str, Any]:
    if not 1 <= limit <= MAX_LIMIT:
        raise Problem(
            422,
            "Unprocessable request",
            f"limit {limit} is refused: must be between 1 and {MAX_LIMIT}",
            [{"field": "limit", "value": limit, "rule": f"must be between 1 and {MAX_LIMIT}", "reason": ""}],
        )
    descending = ordering.startswith("-")
    key = ordering.lstrip("-")
    if cursor:
        value, pk = _decode(res, key, cursor)
        if key == "id":
            qs = qs.filter(pk__lt=pk) if descending else qs.filter(pk__gt=pk)
        else:
            # key >= v AND (key > v OR id > pk): the first term lets the database start an index range
            # scan at v (a bare OR of the two makes PostgreSQL scan from the start)
            after, from_ = ("lt", "lte") if descending else ("gt", "gte")
            qs = qs.filter(
                Q(**{f"{key}__{from_}": value}) & (Q(**{f"{key}__{after}": value}) | Q(**{f"pk__{after}": pk}))
            )
    order = [f"-{key}", "-pk"] if descending else [key, "pk"]
    if key == "id":
        order = order[1:]
    rows = list(qs.order_by(*order)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    next_cursor = (
        encode_cursor(getattr(last, key if key != "id" else "pk"), last.pk) if more and last is not None else None
    )
    return {"items": [_dump(res, r) for r in rows], "next_cursor": next_cursor}


# --- writes through the back office's form --------------------------------------------------------


def form_class(res: Resource) -> "type[django_forms.ModelForm[Any]]":
    base = res.form
    if base is None:
        model_admin = django_admin.site._registry.get(res.model)
        base = getattr(model_admin, "form", None) or LabeledModelForm
    made: Any = labelled(modelform_factory(res.model, form=base, fields=list(res.fields)))
    return made  # type: ignore[no-any-return]


def _form_data(form: "type[django_forms.ModelForm[Any]]", instance: Model) -> dict[str, Any]:
    """What the back office's page would post for this record as it stands."""
    data = model_to_dict(instance, fields=[n for n in form.base_fields if n in form._meta.fields])  # type: ignore[operator]
    return {name: _form_value(form.base_fields[name], value) for name, value in data.items()}


def _form_value(f: Any, value: Any) -> Any:
    """A JSON value as the form field reads it from a posted page."""
    if isinstance(f, django_forms.ModelMultipleChoiceField):
        return [v.pk if isinstance(v, Model) else v for v in (value or [])]
    if isinstance(f, django_forms.MultipleChoiceField):
        return list(value or []) if isinstance(value, (list, tuple)) else value
    if isinstance(f, django_forms.JSONField):
        return json.dumps(value)
    if value is None:
        return ""
    if isinstance(f, django_forms.BooleanField):
        return bool(value)
    if isinstance(value, (list, tuple)):  # a list the page shows one item per line (IP restriction)
        return "\n".join(str(v) for v in value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return value


def _restrict_choices(form: "django_forms.ModelForm[Any]", caller: Caller) -> None:
    """A tenant picks related objects (a parent, an account, a tariff) from its own subtree only;
    what the record already points at stays valid (an account on the operator's tariff or service
    plan can still be renamed), nothing else outside the subtree can be chosen."""
    if caller.operator:
        return
    for name, f in form.fields.items():
        if isinstance(f, django_forms.ModelChoiceField) and f.queryset is not None:
            choices = f.queryset
            related = REGISTRY.get(choices.model)
            if related is not None:
                current = _current_pks(form.instance, name)
                own = scoped(related, caller, choices)
                f.queryset = own | choices.filter(pk__in=current) if current else own


def _current_pks(instance: Model, name: str) -> list[Any]:
    """The ids a stored record's relation ``name`` points at now (none for a new record)."""
    if instance._state.adding or instance.pk is None:
        return []
    f = _field(type(instance), name)
    if isinstance(f, models.ManyToManyField):
        return list(getattr(instance, name).values_list("pk", flat=True))
    value = getattr(instance, f.attname)
    return [] if value is None else [value]


def refusals(form: django_forms.BaseForm, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The form's errors as ``{field, value, rule, reason}`` (reason: the whole house sentence)."""
    out = []
    for name, errors in form.errors.as_data().items():
        for error in errors:
            for message in error.messages:
                rule = message.split(" is refused: ", 1)[1] if " is refused: " in message else message
                out.append(
                    {
                        "field": "" if name == NON_FIELD_ERRORS else name,
                        "value": _jsonable(payload.get(name)),
                        "rule": rule,
                        "reason": message,
                    }
                )
    return out


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _save(
    res: Resource, caller: Caller, request: HttpRequest, instance: Model, payload: dict[str, Any], action: str
) -> Model:
    form_cls = form_class(res)
    data = _form_data(form_cls, instance)
    for name, value in payload.items():
        if name in form_cls.base_fields:
            data[name] = _form_value(form_cls.base_fields[name], value)
    form = form_cls(data=data, instance=instance)
    _restrict_choices(form, caller)
    before = changes.snapshot(instance) if action == "update" else None
    if not form.is_valid():
        raise Problem(422, "Unprocessable request", f"The {res.label} was refused.", refusals(form, payload))
    _tenant_write_check(res, caller, form.instance, payload)
    with transaction.atomic():
        obj = form.save()
        changes.announce(caller.actor(request), obj, action, before, changes.snapshot(obj))
    return obj  # type: ignore[no-any-return]


def _tenant_write_check(res: Resource, caller: Caller, obj: Model, payload: dict[str, Any]) -> None:
    """A tenant writes inside its subtree only; its own customer record is not its to change."""
    if caller.operator or res.tenant is None:
        return
    root = caller.root
    assert root is not None
    if res.tenant == "":
        parent = getattr(obj, "parent", None)
        if obj.pk == root.pk or parent is None:
            value = payload.get("parent")
            rule = "a token's own customer is changed by its parent; new customers go below it"
            raise Problem(
                422,
                "Unprocessable request",
                f"parent {value} is refused: {rule}",
                [{"field": "parent", "value": value, "rule": rule, "reason": f"parent {value} is refused: {rule}"}],
            )


def payload_of(body: Schema) -> dict[str, Any]:
    return dict(body.model_dump(exclude_unset=True))


# --- the routes of one resource ---------------------------------------------------------------------


def register(router: Router, res: Resource) -> Resource:
    REGISTRY[res.model] = res
    out = _out_schema(res)
    page_schema = create_model(
        f"{res.model.__name__}Page",
        __base__=Schema,
        items=(list[out], ...),  # type: ignore[valid-type]
        next_cursor=(str | None, None),
    )
    filters = _filter_schema(res)
    tags = [res.path]
    what = res.label
    filter_doc = ", ".join(f"`{p}`" for p in res.filters) or "none"
    example_out = {"id": 1, **(res.example or {})}

    def list_view(request: HttpRequest, params: Any) -> HttpResponse:
        caller = caller_of(request)
        _guard(res, caller, "view")
        qs = scoped(res, caller)
        for param, lookup in res.filters.items():
            value = _filter_value(param, getattr(params, param), _filter_field(res.model, lookup))
            if value is not None:
                qs = qs.filter(**{lookup: value})
        return answer(request, page(res, qs, params.ordering, params.cursor, params.limit))

    list_view.__annotations__ = {"request": HttpRequest, "params": Query[filters], "return": HttpResponse}  # type: ignore[valid-type,misc]
    router.get(
        f"/{res.path}",
        response={200: page_schema, **ERRORS},
        auth=MANAGEMENT,
        tags=tags,
        summary=f"List {res.model._meta.verbose_name_plural}",
        description=(
            f"{res.description}\n\nFilters: {filter_doc}. Ordering: {', '.join(o.lstrip('-') for o in res.orderings)}"
            f" (default {res.orderings[0]}; prefix `-` "
            f"for descending). Pages: `limit` (1-{MAX_LIMIT}), then `cursor` = the `next_cursor` of the page before."
        ),
        operation_id=f"list_{res.path.replace('-', '_')}",
        openapi_extra=_example_response({"items": [example_out], "next_cursor": None}),
    )(list_view)

    def get_view(request: HttpRequest, id: int) -> HttpResponse:
        caller = caller_of(request)
        _guard(res, caller, "view")
        return answer(request, _dump(res, _get(res, caller, id)))

    router.get(
        f"/{res.path}/{{id}}",
        response={200: out, **ERRORS},
        auth=MANAGEMENT,
        tags=tags,
        summary=f"Get a {what}",
        operation_id=f"get_{res.path.replace('-', '_')}",
        openapi_extra=_example_response(example_out),
    )(get_view)

    if not res.writable:
        return res
    body_schema = _in_schema(res)

    def create_view(request: HttpRequest, body: Any) -> Status[Any]:
        caller = caller_of(request)
        _guard(res, caller, "add")
        obj = _save(res, caller, request, res.model(), payload_of(body), "create")
        return Status(201, _dump(res, obj))

    create_view.__annotations__ = {"request": HttpRequest, "body": body_schema, "return": Status[Any]}
    router.post(
        f"/{res.path}",
        response={201: out, **ERRORS},
        auth=MANAGEMENT,
        tags=tags,
        summary=f"Create a {what}",
        description="Validated as the back office validates (the same form and model rules).",
        operation_id=f"create_{res.path.replace('-', '_')}",
        openapi_extra=_example_request(res.example),
    )(create_view)

    def update_view(request: HttpRequest, id: int, body: Any) -> dict[str, Any]:
        caller = caller_of(request)
        _guard(res, caller, "view")
        obj = _get(res, caller, id)
        _guard(res, caller, "change")
        return _dump(res, _save(res, caller, request, obj, payload_of(body), "update"))

    update_view.__annotations__ = {"request": HttpRequest, "id": int, "body": body_schema, "return": dict}
    router.patch(
        f"/{res.path}/{{id}}",
        response={200: out, **ERRORS},
        auth=MANAGEMENT,
        tags=tags,
        summary=f"Change a {what}",
        description="Only the fields sent change; the whole record is validated as the back office does.",
        operation_id=f"update_{res.path.replace('-', '_')}",
        openapi_extra=_example_request(_first(res.example)),
    )(update_view)

    def delete_view(request: HttpRequest, id: int) -> Any:
        caller = caller_of(request)
        _guard(res, caller, "view")
        obj = _get(res, caller, id)
        _guard(res, caller, "delete")
        if not caller.operator and res.tenant == "" and obj.pk == getattr(caller.root, "pk", None):
            raise Problem(403, "Forbidden", "A token cannot close its own customer")
        actor = caller.actor(request)
        before = changes.snapshot(obj)
        if res.retire is not None:
            name, value = res.retire
            with transaction.atomic():
                setattr(obj, name, value)
                obj.save(update_fields=[name])
                changes.announce(actor, obj, "deactivate", before, changes.snapshot(obj))
            return Status(200, _dump(res, obj))
        refusal = protected_refusal(obj)
        if refusal is not None:
            raise Problem(409, "Conflict", " ".join(refusal.messages))
        with transaction.atomic():
            pk = obj.pk
            obj.delete()
            obj.pk = pk
            changes.announce(actor, obj, "delete", before, None)
        return Status(204, None)

    retire_doc = (
        f"Deactivates (sets `{res.retire[0]}` to `{res.retire[1]}`; the history stays)"
        if res.retire
        else "Deletes; refused (409) while other records still use it"
    )
    router.delete(
        f"/{res.path}/{{id}}",
        response={200: out, 204: None, 409: ProblemOut, **ERRORS},
        auth=MANAGEMENT,
        tags=tags,
        summary=f"Delete or deactivate a {what}",
        description=retire_doc + ".",
        operation_id=f"delete_{res.path.replace('-', '_')}",
    )(delete_view)
    return res


def _first(example: dict[str, Any] | None) -> dict[str, Any] | None:
    if not example:
        return None
    key = next(iter(example))
    return {key: example[key]}


def _example_request(example: dict[str, Any] | None) -> dict[str, Any]:
    if not example:
        return {}
    return {"requestBody": {"content": {"application/json": {"example": example}}, "required": True}}


def _example_response(example: dict[str, Any]) -> dict[str, Any]:
    return {"responses": {"200": {"content": {"application/json": {"example": example}}}}}


def editable(model: type[Model], exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The fields a person edits in the back office (editable, not the id, not timestamps)."""
    skip = {"id", "created_at", "updated_at", *exclude}
    return tuple(
        f.name
        for f in (*model._meta.concrete_fields, *model._meta.many_to_many)
        if getattr(f, "editable", False) and f.name not in skip and not f.auto_created
    )
