"""Attacks on the back office: exports without permission, secrets in exports, NUL in searches,
log-in brute force, the database file readable by other local users."""

from __future__ import annotations

import html

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.urls import reverse

from tests.factories import ACCOUNT_SIP_PASSWORD, DEVICE_SECRET, staff_user

pytestmark = pytest.mark.django_db


# Values no export may contain, one per kind of secret we store.
def _export_urls() -> list[tuple[type, str]]:
    urls = []
    for model, model_admin in admin.site._registry.items():
        if hasattr(model_admin, "export_action"):
            urls.append((model, reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_export")))
    return urls


def test_every_export_refuses_a_staff_user_without_permissions(client, secrets_stored) -> None:
    client.force_login(staff_user("nobody"))
    urls = _export_urls()
    assert len(urls) >= 20
    for _model, url in urls:
        assert client.get(url).status_code == 403, url
        assert client.post(url, {"format": "0", "resource": "0"}).status_code == 403, url


def test_every_detail_page_action_refuses_a_staff_user_without_permissions(client, secrets_stored) -> None:
    """Deck export/import/compare, simulate a call, ...: each is refused like the model's own pages."""
    client.force_login(staff_user("nobody"))
    checked = 0
    for model, model_admin in admin.site._registry.items():
        obj = model._default_manager.first()
        for name in getattr(model_admin, "actions_detail", None) or []:
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{name}", args=[obj.pk if obj else 1])
            assert client.get(url).status_code == 403, url
            checked += 1
    assert checked >= 3


def test_the_export_action_of_the_listing_is_refused_too(client, secrets_stored) -> None:
    from tarifa.customers.models import SipDevice

    client.force_login(staff_user("nobody"))
    url = reverse("admin:customers_sipdevice_changelist")
    pks = [str(pk) for pk in SipDevice.objects.values_list("pk", flat=True)]
    response = client.post(url, {"action": "export_admin_action", "_selected_action": pks})
    assert response.status_code == 403
    assert DEVICE_SECRET.encode() not in response.content


def test_view_permission_of_the_model_allows_its_export_only(client, secrets_stored) -> None:
    client.force_login(staff_user("viewer", "view_sipdevice"))
    response = client.post(reverse("admin:customers_sipdevice_export"), {"format": "0", "resource": "0"})
    assert response.status_code == 200
    assert b"secretdev" in _body(response)
    assert client.get(reverse("admin:customers_account_export")).status_code == 403


def _body(response) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_no_export_of_any_model_contains_a_secret(client, secrets_stored) -> None:
    from tarifa.sensitive import is_sensitive

    client.force_login(get_user_model().objects.create_superuser("boss", "boss@x.example", "Boss-pass-1234"))
    secrets = [ACCOUNT_SIP_PASSWORD, DEVICE_SECRET, secrets_stored["token_hash"], secrets_stored["raw_token"]]
    exported = 0
    for model, url in _export_urls():
        response = client.post(url, {"format": "0", "resource": "0"})  # CSV
        assert response.status_code == 200, url
        text = _body(response).decode("utf-8-sig")
        header = text.splitlines()[0].split(",") if text else []
        assert not [h for h in header if is_sensitive(model._meta.app_label, model._meta.model_name, h)], url
        for secret in secrets:
            assert secret not in text, (url, secret)
        exported += 1
    assert exported >= 20
    # The rows themselves are exported (the secrets are left out, not the records).
    text = _body(client.post(reverse("admin:customers_sipdevice_export"), {"format": "0", "resource": "0"})).decode()
    assert "secretdev" in text


@pytest.fixture
def boss(client):  # type: ignore[no-untyped-def]
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@x.example", "Boss-pass-1234"))
    return client


def test_a_nul_in_any_listing_search_or_filter_is_refused_not_a_500(boss, secrets_stored) -> None:
    """PostgreSQL cannot compare text with a NUL: every listing's search and text filter (and the
    export that follows the listing) refuses it by name instead of answering a 500."""
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        url = reverse("admin:{}_{}_changelist".format(*info))
        queries = [{"q": "ab\x00c"}]
        for list_filter in model_admin.list_filter:
            parameter = getattr(list_filter, "parameter_name", None)
            if parameter:
                queries.append({parameter: "x\x00"})
        for query in queries:
            response = boss.get(url, query)
            assert response.status_code == 302, (url, query, response.status_code)
            assert "\x00" not in response["Location"] and "%00" not in response["Location"]
            shown = boss.get(response["Location"])
            assert shown.status_code == 200
            name = next(iter(query))
            assert html.escape(f"{name} {query[name]!r} is refused") in shown.content.decode(), (url, query)
        if hasattr(model_admin, "export_action"):
            export = boss.get(reverse("admin:{}_{}_export".format(*info)), {"q": "\x00"})
            assert export.status_code == 302, url


def test_a_nul_in_an_autocomplete_search_finds_nothing(boss, secrets_stored) -> None:
    response = boss.get(
        reverse("admin:autocomplete"),
        {"term": "Sec\x00", "app_label": "customers", "model_name": "account", "field_name": "customer"},
    )
    assert response.status_code == 200
    assert response.json()["results"] == []
    found = boss.get(
        reverse("admin:autocomplete"),
        {"term": "Sec", "app_label": "customers", "model_name": "account", "field_name": "customer"},
    )
    assert [r["text"] for r in found.json()["results"]] != []


def test_other_filter_values_with_a_nul_are_refused(boss, secrets_stored) -> None:
    response = boss.get(reverse("admin:customers_customer_changelist"), {"status__exact": "\x00", "company": "Sec"})
    assert response.status_code == 302
    assert response["Location"].endswith("?company=Sec")


@pytest.mark.parametrize("object_id", ["abc", "1.5", "-", "99999999999999999999999", "%00"])
def test_simulate_call_page_with_a_bad_account_id_is_not_a_500(boss, object_id: str) -> None:
    url = reverse("admin:customers_account_simulate_call", args=["X"]).replace("/X/", f"/{object_id}/")
    for response in (boss.get(url), boss.post(url, {"callee": "441234567890"})):
        assert response.status_code in (302, 404), (object_id, response.status_code)
        if response.status_code == 302:
            said = [str(m) for m in get_messages(response.wsgi_request)]
            assert any("doesn’t exist" in m for m in said), said


def test_simulate_call_page_needs_the_view_permission_of_accounts(client, secrets_stored) -> None:
    from tarifa.customers.models import Account

    account = Account.objects.get(name="secret-main")
    client.force_login(staff_user("nobody"))
    url = reverse("admin:customers_account_simulate_call", args=[account.pk])
    assert client.get(url).status_code == 403


# --- log-in throttling (issue 12 item 8) ---------------------------------------------------------

ADMIN_PASSWORD = "Right-pass-1234"


@pytest.fixture
def admin_user(db):  # type: ignore[no-untyped-def]
    return get_user_model().objects.create_superuser("admin", "admin@x.example", ADMIN_PASSWORD)


def _login(client, username: str, password: str, address: str = "203.0.113.5", **extra: str):  # type: ignore[no-untyped-def]
    return client.post(
        reverse("admin:login"), {"username": username, "password": password}, REMOTE_ADDR=address, **extra
    )


def _logged_in(client) -> bool:  # type: ignore[no-untyped-def]
    return "_auth_user_id" in client.session


def _age_failures(seconds: int) -> None:
    """Move every recorded failure into the past, as if that much time had gone by."""
    from datetime import timedelta

    from tarifa.throttle.models import LoginFailure

    for failure in LoginFailure.objects.all():
        failure.at -= timedelta(seconds=seconds)
        failure.save(update_fields=["at"])


def test_wrong_passwords_lock_the_user_name_with_the_time_it_ends(client, admin_user) -> None:
    from tarifa.throttle.models import LoginFailure

    for _ in range(5):
        response = _login(client, "admin", "wrong-guess")
        assert response.status_code == 200 and not _logged_in(client)
    # The right password now is refused too, with when the lock-out ends.
    response = _login(client, "admin", ADMIN_PASSWORD)
    text = html.unescape(response.content.decode())
    assert response.status_code == 200 and not _logged_in(client)
    assert "Too many failed log-ins for user name 'admin': log-in is locked until " in text
    assert "UTC (in 15 minutes)" in text
    # The state is in the database (every process of the system sees it).
    assert LoginFailure.objects.filter(scope="user", key="admin:admin").count() == 5
    # From another address too: the user name is locked, not only the address.
    assert not _logged_in(client) and _login(client, "admin", ADMIN_PASSWORD, "198.51.100.77").status_code == 200
    # Once the lock-out has passed, the right password works and the user's failures are forgotten.
    _age_failures(901)
    response = _login(client, "admin", ADMIN_PASSWORD)
    assert response.status_code == 302 and _logged_in(client)
    assert not LoginFailure.objects.filter(scope="user", key="admin:admin").exists()


def test_attempts_while_locked_do_not_extend_the_lock(client, admin_user) -> None:
    for _ in range(5):
        _login(client, "admin", "wrong-guess")
    _age_failures(600)
    for _ in range(10):
        _login(client, "admin", "wrong-guess")
    _age_failures(301)
    assert _login(client, "admin", ADMIN_PASSWORD).status_code == 302


def test_many_user_names_from_one_address_lock_the_address(client, admin_user) -> None:
    for n in range(20):
        _login(client, f"guess{n}", "wrong-guess", "203.0.113.9")
    response = _login(client, "admin", ADMIN_PASSWORD, "203.0.113.9")
    assert not _logged_in(client)
    assert "Too many failed log-ins from address 203.0.113.9" in html.unescape(response.content.decode())
    assert _login(client, "admin", ADMIN_PASSWORD, "203.0.113.10").status_code == 302


def test_behind_a_proxy_the_address_is_the_one_the_proxy_saw(client, admin_user, monkeypatch) -> None:
    monkeypatch.setenv("TARIFA_TRUSTED_PROXIES", "1")
    monkeypatch.setenv("TARIFA_LOGIN_FAILURES_PER_ADDRESS", "3")
    for n in range(3):
        # The client writes a different left-hand address each time; the proxy appends the real one.
        _login(client, f"guess{n}", "x", "10.0.0.1", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 203.0.113.50")
    response = _login(client, "admin", ADMIN_PASSWORD, "10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.99, 203.0.113.50")
    assert "from address 203.0.113.50" in html.unescape(response.content.decode())
    assert _login(client, "admin", ADMIN_PASSWORD, "10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.51").status_code == 302


def test_the_limits_come_from_the_configuration(client, admin_user, monkeypatch) -> None:
    monkeypatch.setenv("TARIFA_LOGIN_FAILURES_PER_USER", "2")
    monkeypatch.setenv("TARIFA_LOGIN_LOCKOUT", "60")
    _login(client, "admin", "x")
    _login(client, "admin", "x")
    response = _login(client, "admin", ADMIN_PASSWORD)
    assert "(in 1 minute)" in html.unescape(response.content.decode()) and not _logged_in(client)
    _age_failures(61)
    assert _login(client, "admin", ADMIN_PASSWORD).status_code == 302


# --- the SQLite files are private (issue 12 item 4) ----------------------------------------------


def _mode(path) -> int:  # type: ignore[no-untyped-def]
    import stat

    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():  # type: ignore[no-untyped-def]
    """The usual umask (022), under which SQLite alone would create files readable by everyone."""
    import os

    old = os.umask(0o022)
    yield
    os.umask(old)


def _sqlite_connection(path):  # type: ignore[no-untyped-def]
    from django.db.utils import ConnectionHandler

    from tarifa.settings import _database

    return ConnectionHandler({"default": _database(f"sqlite:///{path}")})["default"]


def test_a_new_sqlite_database_and_its_wal_and_shm_files_are_private(tmp_path, open_umask) -> None:
    path = tmp_path / "new.sqlite3"
    connection = _sqlite_connection(path)
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE t (x INTEGER)")
            cursor.execute("INSERT INTO t VALUES (1)")
        files = {p.name: _mode(p) for p in tmp_path.iterdir()}
    finally:
        connection.close()
    assert files == {"new.sqlite3": 0o600, "new.sqlite3-wal": 0o600, "new.sqlite3-shm": 0o600}


def test_an_existing_readable_database_is_made_private_and_its_later_wal_too(tmp_path, open_umask) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    sqlite3.connect(path).execute("CREATE TABLE t (x INTEGER)").connection.close()
    path.chmod(0o644)
    connection = _sqlite_connection(path)
    try:
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO t VALUES (1)")
        assert _mode(path) == 0o600
        assert _mode(tmp_path / "old.sqlite3-wal") == 0o600
        assert _mode(tmp_path / "old.sqlite3-shm") == 0o600
    finally:
        connection.close()


def test_tarifa_migrate_makes_a_private_var_directory(tmp_path, open_umask) -> None:
    import os

    from tests.conftest import run_tarifa

    var = tmp_path / "var"
    env = {**os.environ, "TARIFA_VAR_DIR": str(var), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    env.pop("TARIFA_DATABASE_URL", None)
    result = run_tarifa(env, "manage", "migrate", "contenttypes")  # one small app: the file is made the same way
    assert result.returncode == 0, result.stderr
    assert _mode(var) == 0o700
    assert _mode(var / "tarifa.sqlite3") == 0o600
    assert _mode(var / "secret_key") == 0o600


def test_an_existing_open_var_directory_is_tightened(tmp_path, open_umask, monkeypatch) -> None:
    from tarifa import config

    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    var.chmod(0o755)
    monkeypatch.setenv("TARIFA_VAR_DIR", str(var))
    assert config.var_dir() == var
    assert _mode(var) == 0o700


def test_a_lock_out_recorded_by_one_process_holds_in_another(migrated_database_url, tmp_path) -> None:
    """Several processes serve one system: failures one process records lock the user name in the next."""
    import os

    from tests.conftest import run_tarifa

    env = {**os.environ, "TARIFA_DATABASE_URL": migrated_database_url, "TARIFA_VAR_DIR": str(tmp_path / "var")}
    record = "from tarifa.throttle import service\nfor _ in range(5): service.record_failure('admin', '203.0.113.5')"
    assert run_tarifa(env, "manage", "shell", "-c", record).returncode == 0
    check = (
        "from tarifa.throttle import service\n"
        "lock = service.lock_for('admin', '198.51.100.1')\n"
        "print(lock.message() if lock else 'not locked')"
    )
    result = run_tarifa(env, "manage", "shell", "-c", check)
    assert result.returncode == 0, result.stderr
    assert "Too many failed log-ins for user name 'admin'" in result.stdout


def test_guessing_the_old_password_on_the_change_password_page_is_throttled(client, admin_user) -> None:
    client.force_login(admin_user)
    url = reverse("admin:password_change")
    assert client.get(url).status_code == 200
    new = {"new_password1": "Brand-new-pass-5678", "new_password2": "Brand-new-pass-5678"}
    for _ in range(5):
        response = client.post(url, {"old_password": "wrong-guess", **new}, REMOTE_ADDR="203.0.113.5")
        assert response.status_code == 200
    response = client.post(url, {"old_password": ADMIN_PASSWORD, **new}, REMOTE_ADDR="203.0.113.5")
    assert response.status_code == 200
    assert "Too many failed log-ins for user name 'admin'" in html.unescape(response.content.decode())
    admin_user.refresh_from_db()
    assert admin_user.check_password(ADMIN_PASSWORD)
    _age_failures(901)
    response = client.post(url, {"old_password": ADMIN_PASSWORD, **new}, REMOTE_ADDR="203.0.113.5")
    assert response.status_code == 302 and response["Location"] == reverse("admin:password_change_done")
    admin_user.refresh_from_db()
    assert admin_user.check_password("Brand-new-pass-5678")


@pytest.mark.parametrize(
    ("old", "new1", "new2", "expected"),
    [
        (
            "Right-pass-1234",
            "Brand-new-pass-5678",
            "Brand-new-pass-9999",
            "New password confirmation '*******************' is refused: must be the same as the new password",
        ),
        (
            "wrong-guess",
            "Brand-new-pass-5678",
            "Brand-new-pass-5678",
            "Old password '***********' is refused: is not the current password of this user; enter it again",
        ),
        (
            "Right-pass-1234",
            "password123",
            "password123",
            "New password confirmation '***********' is refused: too common a password",
        ),
    ],
)
def test_the_change_password_page_names_field_and_rule(
    client, admin_user, old: str, new1: str, new2: str, expected: str
) -> None:
    """User report 14: Django's stock "The two password fields didn't match." and friends."""
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:password_change"), {"old_password": old, "new_password1": new1, "new_password2": new2}
    )
    page = html.unescape(response.content.decode())
    assert response.status_code == 200 and expected in page
    for stock in ("didn’t match", "didn't match", "entered incorrectly", "This password is too common"):
        assert stock not in page
    admin_user.refresh_from_db()
    assert admin_user.check_password(ADMIN_PASSWORD)
