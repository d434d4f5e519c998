"""Shared fixtures. Tests run on SQLite by default and on PostgreSQL when TARIFA_DATABASE_URL says so."""

from __future__ import annotations

import os
import tempfile
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from tests.databases import (  # noqa: F401  (migrated databases for the processes tests start)
    django_db_setup,
    migrated_database_url,
    migrated_sqlite_url,
    migrated_template,
    module_database_url,
    postgres_database,
    sqlite_template,
)
from tests.factories import did_buyer, net, secrets_stored, token, world  # noqa: F401  (fixtures for every test package)
from tests.origination_world import cli, origination  # noqa: F401  (the origination tests' fixtures)
from tests.services_page import shop  # noqa: F401  (the customer services page tests' fixture)
from tests.smtp import _smtp_controller, smtp_server  # noqa: F401  (a real SMTP server on loopback)

hypothesis_settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# Keep generated state (secret key, SQLite file) of test runs out of the working tree.
os.environ.setdefault("TARIFA_VAR_DIR", tempfile.mkdtemp(prefix="tarifa-test-var-"))

_PRODUCTION_HASHERS: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def _back_office_pages() -> None:
    """The back office's pages registered, as a serving process registers them when it first loads
    its URLs (tarifa.urls; settings: SimpleAdminConfig), for the tests that read admin.site directly."""
    from django.urls import get_resolver

    assert get_resolver().url_patterns


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing():  # type: ignore[no-untyped-def]
    """Cheap Argon2 (tests/hashers.py) for the whole run: production Argon2 costs ~0.2 s of CPU a hash."""
    from django.conf import settings
    from django.test.utils import override_settings

    _PRODUCTION_HASHERS[:] = settings.PASSWORD_HASHERS
    with override_settings(PASSWORD_HASHERS=["tests.hashers.CheapArgon2PasswordHasher", *_PRODUCTION_HASHERS]):
        yield


@pytest.fixture(autouse=True)
def _real_password_hasher(request):  # type: ignore[no-untyped-def]
    """The production hashers, for the tests (marked ``real_password_hasher``) that check the hasher itself."""
    if request.node.get_closest_marker("real_password_hasher") is None:
        yield
        return
    from django.test.utils import override_settings

    with override_settings(PASSWORD_HASHERS=_PRODUCTION_HASHERS):
        yield


@pytest.fixture
def tariff(db):  # type: ignore[no-untyped-def]
    from tarifa.rating.models import Rate, Tariff

    tariff = Tariff.objects.create(name="Test tariff")
    Rate.objects.create(
        tariff=tariff, prefix="44", destination="United Kingdom", price_1=Decimal("0.02"), price_n=Decimal("0.02")
    )
    return tariff


@pytest.fixture
def operator(tariff):  # type: ignore[no-untyped-def]
    from tarifa.customers.models import Customer

    return Customer.objects.create(
        kind="operator",
        name="Op",
        company="Operator Co",
        web_username="operator",
        tariff=tariff,
        email="op@example.com",
        phone="+12015550123",
        country="US",
    )


def customer_data(the_tariff: Any, the_parent: Any, /, **overrides: Any) -> dict[str, Any]:
    """A complete, valid add-customer form (seed 003); tests change one field at a time."""
    data: dict[str, Any] = {
        "kind": "customer",
        "parent": the_parent.pk,
        "customer_type": "LIVE",
        "status": "active",
        "name": "Jane Doe",
        "company": "Doe Ltd",
        "web_username": "janedoe1",
        "web_password": "Secret-pass1",
        "tariff": the_tariff.pk,
        "billing_type": "prepaid",
        "currency": "USD",
        "payment_term_days": 15,
        "credit_limit": "0",
        "billing_decimals": 4,
        "time_zone": "UTC",
        "tax_flag": "NONE",
        "tax_rate": "0",
        "max_call_sessions": 10,
        "calls_per_second": 5,
        "codecs": ["PCMU"],
        "call_with_media": "on",
        "max_call_duration": 3600,
        "email": "jane@doe.example",
        "address": "1 High Street",
        "phone": "020 7946 0958",
        "country": "GB",
        "pin": "SW1A 1AA",
    }
    data.update(overrides)
    return data


@pytest.fixture
def customer_form_data(tariff, operator):  # type: ignore[no-untyped-def]
    return lambda **overrides: customer_data(tariff, operator, **overrides)


@pytest.fixture
def fresh_database_url(tmp_path):  # type: ignore[no-untyped-def]
    """A new empty database of the kind under test, for subprocesses (CLI, servers) to migrate and use."""
    from django.db import connection

    if connection.vendor != "postgresql":
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    with postgres_database("tarifa_fresh") as url:
        yield url


def run_tarifa(env: dict, *args: str, timeout: int = 600):  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "tarifa.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(autouse=True)
def _fresh_call_cache():  # type: ignore[no-untyped-def]
    """Each test starts with no cached snapshot (on_commit bumps do not run inside test transactions)."""
    from tarifa.calls import cache

    cache.reset()
    yield
    cache.reset()


# ``serving``, ``tarifa_serve``: a real ``tarifa serve`` (tests/served.py), started by module fixtures.
_SUBPROCESS_NAMES = frozenset({"run_tarifa", "subprocess", "Popen", "serving", "tarifa_serve"})
_PROCESS_DATABASES = frozenset(
    {"fresh_database_url", "migrated_database_url", "migrated_sqlite_url", "migrated_template", "sqlite_template"}
)


def _code_names(function: Any) -> set[str]:
    code = getattr(function, "__code__", None)
    return set(code.co_names) | set(code.co_varnames) if code is not None else set()


#: Fixtures that give a test the database under test (directly or through its fixtures' closure).
_DATABASE_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
        "live_server",
        "fresh_database_url",
        "migrated_database_url",
        "module_database_url",
        "migrated_template",
    }
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="run only the tests that use the database under test (the PostgreSQL pass of make test: "
        "a test without a database, or with a SQLite file of its own, ran the same in the SQLite pass)",
    )


def uses_database(item: pytest.Item) -> bool:
    """Whether ``item`` reaches the database under test: a ``django_db`` mark, or a database fixture."""
    return item.get_closest_marker("django_db") is not None or bool(
        _DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--database-tests-only"):
        kept = [item for item in items if uses_database(item)]
        config.hook.pytest_deselected(items=[item for item in items if not uses_database(item)])
        items[:] = kept
    _mark_slow(items)


def _mark_slow(items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test that starts processes (``tarifa`` commands, servers, benchmark
    scripts): the end-to-end and benchmark directories, the tests given a database for a
    subprocess, and the tests whose own code or whose fixtures' code calls ``run_tarifa``,
    ``subprocess`` or ``serving``. The mark only lets a developer leave them out of a quick loop
    (``-m "not slow"``); ``make test`` and CI run them all."""
    slow = pytest.mark.slow
    for item in items:
        path = item.path.as_posix()
        names = _code_names(getattr(item, "function", None))
        info = getattr(item, "_fixtureinfo", None)
        for definitions in getattr(info, "name2fixturedefs", {}).values():
            names |= _code_names(definitions[-1].func)
        if (
            "/tests/e2e/" in path
            or "/tests/bench/" in path
            or _PROCESS_DATABASES & set(getattr(item, "fixturenames", ()))
            or names & _SUBPROCESS_NAMES
        ):
            item.add_marker(slow)
