"""The management API's actions beyond list/get/create/update/delete: rate decks (import, export,
diff) of tariffs and destination sets, DID assign and release, a simulated call with its trace, and
re-rating a period. Each is a thin adapter over the service the CLI and the back office call, and
validates with the back office's own form where there is one (one validation for every door):

- decks: ``rating.decks`` (parse_file, import_rows, diff_deck, export_deck), the form
  ``rating.admin_decks.DeckUploadForm``;
- DIDs: ``dids.service`` (assign_did, release_did), the forms ``dids.admin.AssignForm``/``ReleaseForm``;
- simulate: ``calls.authorize.simulate_for``, the form ``calls.admin_simulate.SimulateForm``;
- re-rate: ``cdrs.rerate.rerate`` (``tarifa cdr rerate``).

Who may: as for the objects (``api.crud``): the object must be in the token's view (its subtree;
404 otherwise) and the token needs the area's scope (``rates`` for tariffs, ``routing`` for
destination sets, ``dids``, ``cdrs``). A reseller's token imports into the tariffs its subtree owns
(``Tariff.owner``); destination sets, simulations (their trace shows vendors, addresses and buy
prices) and re-rating (it moves every customer's money) are the operator's. Every write is announced
to the audit log.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.db import transaction
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema

from tarifa import changes
from tarifa.api.access import MANAGEMENT, Caller, caller_of
from tarifa.api.crud import ERRORS, REGISTRY, ProblemOut, Resource, StrictIn, refusals
from tarifa.api.problems import Problem

router = Router()

#: The largest deck file the API takes (a 60,000-row CSV deck is about 4 MB; an XLSX one less).
DECK_MAX_BYTES = 32 * 1024 * 1024
CHUNK = 64 * 1024
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
WRITE_ERRORS = {**ERRORS, 409: ProblemOut, 413: ProblemOut}


def _refused(detail: str, errors: list[dict[str, Any]]) -> Problem:
    return Problem(422, "Unprocessable request", detail, errors)


def _one(field: str, value: Any, rule: str, reason: str = "") -> list[dict[str, Any]]:
    shown = value if value is None or isinstance(value, (int, str)) else str(value)
    return [{"field": field, "value": shown, "rule": rule, "reason": reason or f"{field} {value!r} is refused: {rule}"}]


def _resource(model: type[Model]) -> Resource:
    return REGISTRY[model]


def _allowed(res: Resource, caller: Caller, action: str, pk: int) -> Any:
    """The object ``pk`` of ``res`` if the caller may ``action`` it: outside its view it is 404
    (as if it did not exist), without the scope 403 (as for the objects)."""
    from tarifa.api.crud import scoped

    if not caller.operator and res.tenant is None:
        raise Problem(403, "Forbidden", f"{res.path}: only an operator's token (or a back-office user) may use these")
    if not caller.may(res.area, "view", res.model):
        raise Problem(403, "Forbidden", f"This operation needs the scope '{res.area}:read' (or read/full)")
    found = scoped(res, caller).filter(pk=pk).first()
    if found is None:
        raise Problem(404, "Not found", f"No {res.label} {pk}")
    if action != "view" and not caller.may(res.area, action, res.model):
        raise Problem(403, "Forbidden", f"This operation needs the scope '{res.area}:write' (or full)")
    return found


def _operator_only(caller: Caller, what: str) -> None:
    if not caller.operator:
        raise Problem(403, "Forbidden", f"{what}: only an operator's token (or a back-office user) may")


# --- rate decks -----------------------------------------------------------------------------------


class _LimitedTemporaryFile(TemporaryFileUploadHandler):
    """Django's upload handler that writes each chunk to a temporary file as it arrives (the upload
    is never whole in memory), stopping at ``DECK_MAX_BYTES``."""

    too_large = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if start + len(raw_data) > DECK_MAX_BYTES:
            self.too_large = True
            raise StopUpload(connection_reset=False)
        return super().receive_data_chunk(raw_data, start)


def _too_large(size: int | None) -> Problem:
    mib = DECK_MAX_BYTES / (1024 * 1024)
    rule = f"must be at most {DECK_MAX_BYTES} bytes" + (f" ({mib:g} MiB)" if mib >= 1 else "")
    what = f"The deck upload of {size} bytes" if size is not None else "The deck upload"
    reason = f"{what} is refused: {rule}"
    return Problem(
        413, "Request body too large", reason, [{"field": "file", "value": size, "rule": rule, "reason": reason}]
    )


def _upload_form(request: HttpRequest) -> Any:
    """The back office's deck form over the request's multipart body, which Django's parser
    writes to a temporary file chunk by chunk; a body announced (or found) larger than the limit is
    refused before (or as soon as) it passes it."""
    from tarifa.rating.admin_decks import DeckUploadForm

    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > DECK_MAX_BYTES + CHUNK:  # the file plus its form fields
        raise _too_large(int(declared))
    limited = _LimitedTemporaryFile(request)
    handler: _LimitedTemporaryFile | None = limited
    try:
        request.upload_handlers = [limited]
    except AttributeError:  # already parsed (a browser session's CSRF check reads the form)
        handler = None
    try:
        files = request.FILES
        posted = request.POST
    except StopUpload:
        raise _too_large(None) from None
    if handler is not None and handler.too_large:
        raise _too_large(None)
    upload = files.get("file")
    if upload is not None and upload.size is not None and upload.size > DECK_MAX_BYTES:
        raise _too_large(upload.size)
    data = posted.copy()  # mutable
    data.setdefault("mode", "add")  # the documented default, as the back office's page preselects it
    form = DeckUploadForm(data, files)
    if not form.is_valid():
        payload = {"file": getattr(upload, "name", None), "mode": posted.get("mode"), "at": posted.get("at")}
        raise _refused("The deck was refused.", refusals(form, payload))
    return form


def _rows(target: Any, upload: Any) -> list[Any]:
    """The deck's rows, or a 422 listing every refused row (line, field, value, rule). The upload
    is on disk (``_LimitedTemporaryFile``); the parser reads it whole (at most ``DECK_MAX_BYTES``),
    as it does for the CLI and the back office."""
    from tarifa.rating.decks import DeckRejected, parse_file

    upload.seek(0)
    data = upload.read()
    try:
        return parse_file(data, upload.name, target.time_zone)
    except DeckRejected as exc:
        raise _refused(
            f"{len(exc.errors)} error(s) in the deck {upload.name}; nothing was imported.",
            [
                {
                    "field": e.field,
                    "line": e.line,
                    "value": e.shown,
                    "rule": e.rule,
                    "reason": f"{e.where}: {e.field} {e.shown!r} is refused: {e.rule}",
                }
                for e in exc.errors
            ],
        ) from None


class ImportOut(Schema):
    target: str
    mode: str
    at: datetime
    added: int
    changed: int
    unchanged: int
    ended: int
    superseded: int
    details: list[str]
    more_details: int
    summary: str


class DeckRowOut(Schema):
    prefix: str
    period: str
    destination: str
    price_1: str
    price_n: str
    interval_1: int
    interval_n: int
    connect_fee: str
    effective_from: datetime | None = None
    effective_to: datetime | None = None
    forbidden: bool


class DeckChangeOut(Schema):
    prefix: str
    period: str
    fields: list[str]
    description: str
    before: DeckRowOut
    after: DeckRowOut


class DiffOut(Schema):
    at: datetime
    added: list[DeckRowOut]
    removed: list[DeckRowOut]
    changed: list[DeckChangeOut]
    unchanged: int
    summary: str


def _row(row: Any) -> dict[str, Any]:
    get = row.get if isinstance(row, dict) else lambda name, default=None: getattr(row, name, default)
    out = {name: get(name) for name in DeckRowOut.model_fields}
    for name in ("price_1", "price_n", "connect_fee"):
        out[name] = str(out[name])
    return out


_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "A .csv or .xlsx deck"},
                        "mode": {"type": "string", "enum": ["add", "replace"], "default": "add"},
                        "at": {
                            "type": "string",
                            "description": "When rows without effective_from take effect, or the moment a "
                            "diff compares (ISO 8601, UTC); empty: now",
                        },
                    },
                }
            }
        },
    }
}


def _export_doc() -> dict[str, Any]:
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {"responses": {"200": {"description": "The deck", "content": {"text/csv": binary, XLSX: binary}}}}


class ExportQuery(Schema):
    format: str = "csv"


def _deck_routes(path: str, model_name: str) -> None:
    def target_model() -> type[Model]:
        from tarifa.rating.models import Tariff
        from tarifa.routing.models import DestinationSet

        return Tariff if model_name == "tariff" else DestinationSet

    def uploaded(request: HttpRequest, id: int, action: str) -> tuple[Caller, Any, Any, list[Any]]:
        """Who asks, the target it may ``action``, the upload form and the deck's checked rows."""
        caller = caller_of(request)
        target = _allowed(_resource(target_model()), caller, action, id)
        form = _upload_form(request)
        return caller, target, form, _rows(target, form.cleaned_data["file"])

    def import_deck(request: HttpRequest, id: int) -> Any:
        caller, target, form, rows = uploaded(request, id, "change")
        upload = form.cleaned_data["file"]
        from tarifa.rating.decks import import_rows

        mode = form.cleaned_data["mode"]
        before = {"rates": target.rates.count()}
        with transaction.atomic():
            result = import_rows(target, rows, mode, form.moment())
            changes.announce(
                caller.actor(request),
                target,
                "deck_import",
                before,
                {"rates": target.rates.count(), "file": upload.name, "mode": mode, "summary": str(result)},
            )
        return {
            "target": f"{model_name} {target.pk} {target.name}",
            "mode": mode,
            "at": result.at,
            "added": result.added,
            "changed": result.changed,
            "unchanged": result.unchanged,
            "ended": result.ended,
            "superseded": result.superseded,
            "details": result.details,
            "more_details": result.more,
            "summary": str(result),
        }

    router.post(
        f"/{path}/{{id}}/deck",
        response={200: ImportOut, **WRITE_ERRORS},
        auth=MANAGEMENT,
        tags=[path],
        summary=f"Import a rate deck into a {model_name.replace('_', ' ')}",
        description=(
            "A CSV or XLSX deck as `multipart/form-data` (`file`, `mode` add|replace, `at`), validated as "
            "the back office and `tarifa deck import` validate it: a deck with any error imports nothing and "
            "every refused row is listed (line, field, value, rule). The upload is written to a temporary "
            f"file as it arrives; larger than {DECK_MAX_BYTES} bytes is refused (413)."
        ),
        operation_id=f"import_{path.replace('-', '_')}_deck",
        openapi_extra=_UPLOAD_DOC,
    )(import_deck)

    def diff_deck(request: HttpRequest, id: int) -> Any:
        from django.utils import timezone

        from tarifa.rating.decks import describe_change
        from tarifa.rating.decks import diff_deck as compare

        _caller, target, form, rows = uploaded(request, id, "view")
        at = form.moment() or timezone.now()
        result = compare(target, rows, at)
        return {
            "at": at,
            "added": [_row(r) for r in result.added],
            "removed": [_row(r) for r in result.removed],
            "changed": [
                {
                    "prefix": new.prefix,
                    "period": new.period,
                    "fields": names,
                    "description": describe_change(old, new, names),
                    "before": _row(old),
                    "after": _row(new),
                }
                for old, new, names in result.changed
            ],
            "unchanged": result.unchanged,
            "summary": f"{len(result.added)} added, {len(result.removed)} removed, {len(result.changed)} changed, "
            f"{result.unchanged} unchanged",
        }

    router.post(
        f"/{path}/{{id}}/deck/diff",
        response={200: DiffOut, **WRITE_ERRORS},
        auth=MANAGEMENT,
        tags=[path],
        summary="Compare a deck file with the stored rates",
        description="What would change for calls at `at` (default now) if the file replaced the stored deck: "
        "added, removed and changed prefixes. Stores nothing; the same upload as the import (`mode` is ignored).",
        operation_id=f"diff_{path.replace('-', '_')}_deck",
        openapi_extra=_UPLOAD_DOC,
    )(diff_deck)

    def export_deck(request: HttpRequest, id: int, query: Query[ExportQuery]) -> HttpResponse:
        from tarifa.rating.decks import export_deck as export
        from tarifa.rating.decks import export_filename

        caller = caller_of(request)
        res = _resource(target_model())
        target = _allowed(res, caller, "view", id)
        if query.format not in ("csv", "xlsx"):
            raise _refused("The export was refused.", _one("format", query.format, "must be csv or xlsx")[:1]) from None
        try:
            data = export(target, query.format)  # type: ignore[arg-type]
        except ValueError as exc:  # a stored value no spreadsheet can hold, named with its rate
            raise Problem(409, "Conflict", str(exc)) from None
        response = HttpResponse(data, content_type="text/csv; charset=utf-8" if query.format == "csv" else XLSX)
        response["Content-Disposition"] = f'attachment; filename="{export_filename(target, query.format)}"'
        return response

    router.get(
        f"/{path}/{{id}}/deck",
        response={200: None, **WRITE_ERRORS},
        auth=MANAGEMENT,
        tags=[path],
        summary="Export the rate deck",
        description="Every version of every rate in the import layout (`format` csv or xlsx): importing it "
        "back changes nothing. No cell runs as a formula.",
        operation_id=f"export_{path.replace('-', '_')}_deck",
        openapi_extra=_export_doc(),
    )(export_deck)


_deck_routes("tariffs", "tariff")
_deck_routes("destination-sets", "destination_set")


# --- DIDs -----------------------------------------------------------------------------------------


class AssignIn(StrictIn):
    account: str = Field(..., description="The account's code, or its name when no other account has it")
    plan: int = Field(..., description="A DID plan's id")
    activation_date: str | None = Field(None, description="YYYY-MM-DD; none: today (UTC)")
    mac_address: str = ""
    username: str = ""
    password: str = ""
    cost_center: str = ""
    out_payment_rate: str | None = Field(None, description="Per minute, a decimal string")


class ReleaseIn(StrictIn):
    on: str | None = Field(None, description="The release date, YYYY-MM-DD; none: today (UTC)")
    quarantine_days: int | None = Field(None, description="None: TARIFA_DID_QUARANTINE_DAYS")


class DidOut(Schema):
    id: int
    number: str
    status: str
    account: int | None
    plan: int | None
    activation_date: Any
    quarantine_until: Any


def _did(did: Any) -> dict[str, Any]:
    return {
        "id": did.pk,
        "number": did.number,
        "status": did.status,
        "account": did.account_id,
        "plan": did.plan_id,
        "activation_date": did.activation_date,
        "quarantine_until": did.quarantine_until,
    }


def _form_payload(body: Schema) -> dict[str, Any]:
    return {k: ("" if v is None else v) for k, v in body.model_dump().items()}


def _did_refused(exc: Exception, payload: dict[str, Any]) -> Problem:
    field = getattr(exc, "field", "") or ""
    name = field.replace(" ", "_")
    message = str(exc)
    rule = message.split(" is refused: ", 1)[1] if " is refused: " in message else message
    return _refused(message, [{"field": name, "value": payload.get(name), "rule": rule, "reason": message}])


@router.post(
    "/dids/{id}/assign",
    response={200: DidOut, **WRITE_ERRORS},
    auth=MANAGEMENT,
    tags=["dids"],
    summary="Assign a DID to an account",
    description="As the back office's *Assign* (the same form and service): the number must be sellable "
    "(available, reserved, or its quarantine ended) and the account active. A tenant's token sees only the "
    "DIDs on its subtree's accounts, so in practice the operator assigns.",
    operation_id="assign_did",
    openapi_extra={"requestBody": {"content": {"application/json": {"example": {"account": "C1000-A1", "plan": 1}}}}},
)
def assign(request: HttpRequest, id: int, body: AssignIn) -> Any:
    from tarifa.customers.models import Account
    from tarifa.dids import service
    from tarifa.dids.admin import AssignForm
    from tarifa.dids.models import Did

    caller = caller_of(request)
    did = _allowed(_resource(Did), caller, "change", id)
    payload = body.model_dump()
    form = AssignForm(_form_payload(body))
    _within(form, caller)
    if not form.is_valid():
        raise _refused("The assignment was refused.", refusals(form, payload))
    data = form.cleaned_data
    if not caller.operator and not _scoped_has(Account, caller, data["account"].pk):
        raise _refused("The assignment was refused.", _one("account", body.account, "no account has this code or name"))
    options = service.DidOptions(
        mac_address=data["mac_address"],
        username=data["username"],
        password=data["password"],
        cost_center=data["cost_center"],
        out_payment_rate=data["out_payment_rate"] or Decimal(0),
    )
    before = changes.snapshot(did)
    try:
        with transaction.atomic():
            done = service.assign_did(did, data["account"], data["plan"], data["activation_date"], options)
            changes.announce(caller.actor(request), done, "assign", before, changes.snapshot(done))
    except service.DidRefused as exc:
        raise _did_refused(exc, payload) from None
    return _did(done)


def _within(form: Any, caller: Caller) -> None:
    """A tenant picks a plan among those its token can see (plans are the operator's: none)."""
    if caller.operator:
        return
    form.fields["plan"].queryset = form.fields["plan"].queryset.none()


def _scoped_has(model: type[Model], caller: Caller, pk: Any) -> bool:
    from tarifa.api.crud import scoped

    return scoped(_resource(model), caller).filter(pk=pk).exists()


@router.post(
    "/dids/{id}/release",
    response={200: DidOut, **WRITE_ERRORS},
    auth=MANAGEMENT,
    tags=["dids"],
    summary="Release a DID (quarantine)",
    description="As the back office's *Release*: the number leaves its account on `on` (default today, never "
    "ahead) and is quarantined for `quarantine_days`; what it owes is posted first.",
    operation_id="release_did",
    openapi_extra={"requestBody": {"content": {"application/json": {"example": {"quarantine_days": 90}}}}},
)
def release(request: HttpRequest, id: int, body: ReleaseIn) -> Any:
    from tarifa.dids import service
    from tarifa.dids.admin import ReleaseForm
    from tarifa.dids.models import Did

    caller = caller_of(request)
    did = _allowed(_resource(Did), caller, "change", id)
    payload = body.model_dump()
    form = ReleaseForm(_form_payload(body))
    if not form.is_valid():
        raise _refused("The release was refused.", refusals(form, payload))
    before = changes.snapshot(did)
    try:
        with transaction.atomic():
            done = service.release_did(
                did, form.cleaned_data["on"], quarantine_days=form.cleaned_data["quarantine_days"]
            )
            changes.announce(caller.actor(request), done, "release", before, changes.snapshot(done))
    except service.DidRefused as exc:
        raise _did_refused(exc, {**payload, "release_date": body.on, "number": did.number}) from None
    return _did(done)


# --- simulate a call ------------------------------------------------------------------------------


class SimulateIn(StrictIn):
    account: str = Field(..., description="Account code, SIP user, trunk or account name")
    callee: str
    caller: str = ""
    source_ip: str = ""
    pop: str = ""


class SimulationOut(Schema):
    allowed: bool
    reason: str
    sip_code: int
    account: str
    customer: str
    number: str
    destination_class: str
    country: str
    max_duration: int
    caller_id: str
    rate: dict[str, Any] | None
    routes: list[dict[str, Any]]
    trace: list[str]


@router.post(
    "/calls/simulate",
    response={200: SimulationOut, **ERRORS},
    auth=MANAGEMENT,
    tags=["calls"],
    summary="Simulate a call, with its trace",
    description="The full authorisation decision for a call from this account, reserving nothing (as "
    "`tarifa call simulate` and the back office's *Simulate a call*), with every step. The trace names "
    "vendors, their addresses and buy prices: operator tokens with `routing:read` (or read/full) only.",
    operation_id="simulate_call",
    openapi_extra={
        "requestBody": {"content": {"application/json": {"example": {"account": "C1000-A1", "callee": "442071234567"}}}}
    },
)
def simulate(request: HttpRequest, body: SimulateIn) -> Any:
    from tarifa.calls.admin_simulate import SimulateForm
    from tarifa.calls.authorize import find_account, simulate_for
    from tarifa.customers.models import Account
    from tarifa.routing.models import Connection

    caller = caller_of(request)
    _operator_only(caller, "Simulating a call")
    if not (caller.may("routing", "view", Connection) and caller.may("accounts", "view", Account)):
        raise Problem(403, "Forbidden", "This operation needs the scopes 'routing:read' and 'accounts:read' (or read)")
    payload = body.model_dump()
    try:
        account = None if "\x00" in body.account else find_account(body.account)
    except LookupError:
        account = None
    if account is None:
        raise _refused(
            "The simulation was refused.",
            _one("account", body.account, "no account has this code, SIP user, trunk or name"),
        )
    form = SimulateForm(payload, account=account)
    if not form.is_valid():
        raise _refused("The simulation was refused.", refusals(form, payload))
    data = form.cleaned_data
    decision = simulate_for(
        account.account_code, data["callee"], caller=data["caller"], source_ip=data["source_ip"] or "", pop=data["pop"]
    )
    return {
        "allowed": decision.allowed,
        "reason": str(decision.reason),
        "sip_code": decision.sip_code,
        "account": decision.account,
        "customer": decision.customer,
        "number": decision.number,
        "destination_class": decision.destination_class,
        "country": decision.country,
        "max_duration": decision.max_duration,
        "caller_id": decision.caller_id,
        "rate": _plain(decision.rate),
        "routes": [dict(_plain(r) or {}) for r in decision.routes],
        "trace": list(decision.trace),
    }


def _plain(value: Any) -> Any:
    from dataclasses import asdict, is_dataclass

    if value is None:
        return None
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, dict):
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in value.items()}
    return value


# --- re-rate --------------------------------------------------------------------------------------


class RerateIn(StrictIn):
    start: str | None = Field(None, alias="from", description="Calls started at or after (ISO 8601)")
    end: str | None = Field(None, alias="to", description="Calls started before (ISO 8601)")
    reason: str = Field(..., description="Why: recorded with every adjustment")
    customer: str | None = Field(None, description="Account code or web user name (its subtree)")
    unrated: bool = Field(False, description="Only the CDRs that could not be rated")


class RerateOut(Schema):
    run: int
    criteria: str
    examined: int
    changed: int
    still_unrated: int
    adjustment_total: str
    summary: str


@router.post(
    "/cdrs/rerate",
    response={200: RerateOut, **ERRORS},
    auth=MANAGEMENT,
    tags=["cdrs"],
    summary="Re-rate the CDRs of a period",
    description="As `tarifa cdr rerate`: re-rates the stored CDRs started from `from` up to (not including) "
    "`to`, of `customer`'s subtree if given; only the difference is posted, as adjustments referencing the "
    "re-rating. Operator tokens with `cdrs:write` (or full) only.",
    operation_id="rerate_cdrs",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "example": {"from": "2026-03-01T00:00:00Z", "to": "2026-04-01T00:00:00Z", "reason": "UK fix"}
                }
            }
        }
    },
)
def rerate(request: HttpRequest, body: RerateIn) -> Any:
    from tarifa.cdrs.models import Cdr
    from tarifa.cdrs.rerate import Criteria
    from tarifa.cdrs.rerate import rerate as run
    from tarifa.core.instants import MomentRefused, parse_moment

    caller = caller_of(request)
    _operator_only(caller, "Re-rating")
    if not caller.may("cdrs", "change", Cdr):
        raise Problem(403, "Forbidden", "This operation needs the scope 'cdrs:write' (or full)")
    moments: dict[str, datetime | None] = {}
    for name, value in (("from", body.start), ("to", body.end)):
        try:
            moments[name] = parse_moment(value, name) if value else None
        except MomentRefused as exc:
            raise _refused(str(exc), [{"field": name, "value": value, "rule": str(exc), "reason": str(exc)}]) from None
    for name, value in (("reason", body.reason), ("customer", body.customer or "")):
        if "\x00" in value:
            raise _refused("The re-rating was refused.", _one(name, value, "must not contain a NUL character"))
    if not body.reason.strip():
        raise _refused("The re-rating was refused.", _one("reason", body.reason, "must not be empty"))
    if not (body.unrated or body.start or body.end or body.customer):
        rule = "say what to re-rate: unrated, or from/to and/or customer"
        raise _refused(f"The re-rating was refused: {rule}", _one("from", None, rule, f"from is required: {rule}"))
    start, end = moments["from"], moments["to"]
    if start and end and start >= end:
        rule = f"must be before to {end.isoformat()} (calls started from `from` up to, not including, `to`)"
        raise _refused("The re-rating was refused.", _one("from", body.start, rule))
    criteria = Criteria(unrated_only=body.unrated, start=start, end=end, customer=body.customer or None)
    if body.customer:
        try:
            criteria.queryset()
        except ValueError:
            raise _refused(
                "The re-rating was refused.",
                _one("customer", body.customer, "no customer has this account code or web user name"),
            ) from None
    done = run(criteria, reason=body.reason, by=caller.label, user_id=getattr(caller.user, "pk", None))
    changes.announce(caller.actor(request), done, "rerate", None, changes.snapshot(done))
    return {
        "run": done.pk,
        "criteria": done.criteria,
        "examined": done.examined,
        "changed": done.changed,
        "still_unrated": done.still_unrated,
        "adjustment_total": str(done.adjustment_total),
        "summary": f"{done.examined} examined, {done.changed} changed, {done.still_unrated} still unratable, "
        f"adjustments {done.adjustment_total}",
    }
