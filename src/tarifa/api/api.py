"""The REST API (django-ninja, OpenAPI at /api/v1/docs)."""

from __future__ import annotations

from django.db import DatabaseError, connection
from django.db.migrations.loader import MigrationLoader
from django.http import HttpRequest
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


@api.get("/health", response={200: Health, 503: Health}, tags=["system"])
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


def _mount() -> None:
    from tarifa.api.calls import router as calls_router
    from tarifa.api.cdrs import router as cdrs_router

    api.add_router("", cdrs_router)
    api.add_router("", calls_router)


_mount()
