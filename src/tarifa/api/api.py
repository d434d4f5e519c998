"""The REST API (django-ninja, OpenAPI at /api/v1/docs)."""

from __future__ import annotations

from django.db import DatabaseError, connection
from django.db.migrations.loader import MigrationLoader
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve, reverse
from django.views.decorators.csrf import csrf_exempt
from ninja import Schema, Status

import tarifa
from tarifa.api import problems

api = problems.Api(title="Tarifa API", version=tarifa.__version__, urls_namespace="api")
problems.install(api)


class Health(Schema):
    status: str
    database: str
    migrations: str
    pending_migrations: int
    version: str


class Index(Schema):
    name: str
    version: str
    links: dict[str, str]


@api.get("/", response=Index, tags=["system"], url_name="index")
def index(request: HttpRequest) -> Index:
    """What this API is and where to start: its documentation, its OpenAPI description, its health.
    Open like them: it says nothing the published documentation does not."""
    return Index(
        name=api.title,
        version=tarifa.__version__,
        links={
            "docs": reverse("api:openapi-view"),
            "openapi": reverse("api:openapi-json"),
            "health": reverse("api:health"),
        },
    )


# HEAD too: load balancers and monitors often probe with HEAD (the server sends no body for it)
@api.api_operation(["GET", "HEAD"], "/health", response={200: Health, 503: Health}, tags=["system"], url_name="health")
def health(request: HttpRequest) -> Status:
    """Database reachable, migrations applied, version. 503 when either check fails."""
    database = "ok"
    pending = -1
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        loader = MigrationLoader(connection)
        pending = len(set(loader.graph.nodes) - set(loader.applied_migrations))
    except DatabaseError as exc:
        database = f"error: {exc.__class__.__name__}"
    migrations = "applied" if pending == 0 else ("unknown" if pending < 0 else "pending")
    ok = database == "ok" and pending == 0
    body = Health(
        status="ok" if ok else "degraded",
        database=database,
        migrations=migrations,
        pending_migrations=max(pending, 0),
        version=tarifa.__version__,
    )
    return Status(200 if ok else 503, body)


@csrf_exempt
def not_found(request: HttpRequest) -> HttpResponse:
    """Any path under /api/ that is no operation: a problem document (RFC 9457) like every other API
    answer, not Django's HTML page (``urls.py`` routes here after the API's own paths)."""
    detail = f"No API operation at {request.path}: the operations are listed at {reverse('api:openapi-view')}"
    try:
        with_slash = resolve(request.path + "/")
    except Resolver404:
        with_slash = None
    if with_slash is not None and with_slash.func is not not_found:  # /api/v1 for /api/v1/
        detail = f"No API operation at {request.path}; did you mean {request.path}/?"
    return problems.problem(api, request, 404, "Not found", detail)


def _mount() -> None:
    from tarifa.api.calls import router as calls_router
    from tarifa.api.cdrs import router as cdrs_router
    from tarifa.api.invoices import router as invoices_router
    from tarifa.api.payments import router as payments_router

    api.add_router("", cdrs_router)
    api.add_router("", calls_router)
    api.add_router("", payments_router)
    api.add_router("", invoices_router)
    _mount_management()


def _mount_management() -> None:
    """The management API: objects (api.objects over api.crud) and the audit log."""
    from tarifa.api.actions import router as actions_router
    from tarifa.api.audit import router as audit_router
    from tarifa.api.objects import router as objects_router

    api.add_router("", objects_router)
    api.add_router("", audit_router)
    api.add_router("", actions_router)


_mount()
