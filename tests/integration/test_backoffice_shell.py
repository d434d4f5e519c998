"""The back office's shell: log-in lands on the dashboard, the API docs work offline, readable listings."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_logging_in_without_next_lands_on_the_dashboard(client) -> None:
    get_user_model().objects.create_superuser("boss", "boss@x.example", "Boss-pass-1234")
    page = client.get(reverse("admin:login"))
    assert page.status_code == 200
    response = client.post(reverse("admin:login"), {"username": "boss", "password": "Boss-pass-1234"})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    assert client.get(response["Location"]).status_code == 200


def test_createadmin_prints_the_configured_url_and_only_a_password_that_still_works(
    migrated_database_url, tmp_path
) -> None:
    import os

    from tests.conftest import run_tarifa

    env = {
        **os.environ,
        "TARIFA_DATABASE_URL": migrated_database_url,
        "TARIFA_VAR_DIR": str(tmp_path / "var"),
        "TARIFA_LISTEN": "127.0.0.2:9123",
    }
    env.pop("TARIFA_ADMIN_PASSWORD", None)
    first = run_tarifa(env, "createadmin")
    assert first.returncode == 0, first.stderr
    password = (tmp_path / "var" / "admin-password").read_text().strip()
    assert f"Login: admin / {password}" in first.stdout
    assert "http://127.0.0.2:9123/admin/" in first.stdout
    assert "127.0.0.1:8080" not in first.stdout

    again = run_tarifa(env, "createadmin")
    assert f"Login: admin / {password}" in again.stdout

    # The administrator changes the password in the back office: the old one is no longer shown.
    changed = run_tarifa(
        env,
        "manage",
        "shell",
        "-c",
        "from django.contrib.auth.models import User; u = User.objects.get(username='admin'); "
        "u.set_password('Changed-pass-1234'); u.save()",
    )
    assert changed.returncode == 0, changed.stderr
    after = run_tarifa(env, "createadmin")
    assert password not in after.stdout
    assert "tarifa createadmin --username admin --password NEW" in after.stdout
    assert "http://127.0.0.2:9123/admin/" in after.stdout


def test_a_bad_configuration_value_is_named_without_a_traceback(tmp_path) -> None:
    import os

    from tests.conftest import run_tarifa

    env = {**os.environ, "TARIFA_VAR_DIR": str(tmp_path / "var"), "TARIFA_LISTEN": "127.0.0.1:http"}
    result = run_tarifa(env, "serve")
    assert result.returncode == 2
    assert "TARIFA_LISTEN '127.0.0.1:http' is refused: must be host:port" in result.stderr
    assert "Traceback" not in result.stderr
    env = {**os.environ, "TARIFA_VAR_DIR": str(tmp_path / "var"), "TARIFA_HTTPS": "maybe"}
    result = run_tarifa(env, "migrate")
    assert result.returncode == 2 and "TARIFA_HTTPS 'maybe' is refused: must be on or off" in result.stderr


# --- pages load only their own scripts, under the Content-Security-Policy ------------------------


class _Assets:
    """What a browser would fetch or run from a page: script/style/image URLs, inline scripts, on* handlers."""

    def __init__(self, text: str) -> None:
        from html.parser import HTMLParser

        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self.handlers: list[str] = []
        outer = self

        class Parser(HTMLParser):
            script_type: str | None = None

            def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
                found = dict(attrs)
                outer.handlers += [f"{tag} {name}" for name, _ in attrs if name.startswith("on")]
                if tag == "script":
                    if found.get("src"):
                        outer.urls.append(str(found["src"]))
                        self.script_type = None
                    else:
                        self.script_type = found.get("type") or "text/javascript"
                elif tag == "link" and found.get("href") and "stylesheet" in (found.get("rel") or ""):
                    outer.urls.append(str(found["href"]))
                elif tag == "img" and found.get("src") and not str(found["src"]).startswith("data:"):
                    outer.urls.append(str(found["src"]))

            def handle_data(self, data: str) -> None:
                if self.script_type and data.strip():
                    outer.inline_scripts.append(self.script_type)

            def handle_endtag(self, tag: str) -> None:
                if tag == "script":
                    self.script_type = None

        Parser().feed(text)


def _check_page(client, url: str) -> _Assets:  # type: ignore[no-untyped-def]
    from tarifa.middleware import CONTENT_SECURITY_POLICY

    response = client.get(url)
    assert response.status_code == 200, url
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assets = _Assets(response.content.decode())
    # Every script and style is Tarifa's own, and is there.
    for asset in assets.urls:
        assert asset.startswith("/") and not asset.startswith("//"), (url, asset)
        fetched = client.get(asset)
        assert fetched.status_code == 200, (url, asset)
        body = b"".join(fetched.streaming_content) if fetched.streaming else fetched.content
        assert body, (url, asset)
    # The policy allows no inline script: only data blocks (JSON), never code, and no on* handlers.
    assert all(kind in ("application/json", "text/template") for kind in assets.inline_scripts), (
        url,
        assets.inline_scripts,
    )
    assert assets.handlers == [], (url, assets.handlers)
    return assets


def test_the_api_docs_load_swagger_from_tarifa_itself(client) -> None:
    assets = _check_page(client, "/api/v1/docs")
    assert any(url.endswith("swagger-ui-bundle.js") for url in assets.urls)
    assert any(url.endswith("swagger-ui-init.js") for url in assets.urls)
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_back_office_pages_run_only_same_origin_scripts(client, operator) -> None:
    from tarifa.customers.models import Account

    account = Account.objects.create(customer=operator, name="op-main")
    _check_page(client, reverse("admin:login"))
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@x.example", "Boss-pass-1234"))
    for url in [
        reverse("admin:index"),
        reverse("admin:customers_customer_changelist"),
        reverse("admin:customers_customer_add"),
        reverse("admin:customers_customer_change", args=[operator.pk]),
        reverse("admin:customers_account_change", args=[account.pk]),
        reverse("admin:customers_account_simulate_call", args=[account.pk]),
        reverse("admin:customers_customer_export"),
        reverse("admin:cdrs_cdr_changelist"),
        reverse("admin:password_change"),
    ]:
        assets = _check_page(client, url)
        assert any("alpine" in asset for asset in assets.urls), url  # the theme's scripts are there


def test_check_deploy_is_clean_in_the_documented_production_configuration(tmp_path) -> None:
    import os

    from tests.conftest import run_tarifa

    base = {**os.environ, "TARIFA_VAR_DIR": str(tmp_path / "var")}
    # The configuration of docs/deployment.md.
    production = {
        **base,
        "TARIFA_HTTPS": "on",
        "TARIFA_ALLOWED_HOSTS": "billing.example.com",
        "TARIFA_CSRF_TRUSTED_ORIGINS": "https://billing.example.com",
        "TARIFA_PROXY_SSL_HEADER": "X-Forwarded-Proto",
        "TARIFA_HSTS_PRELOAD": "on",
    }
    result = run_tarifa(production, "manage", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    # Without it, the same check names what is missing.
    result = run_tarifa(base, "manage", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr + result.stdout


def test_https_settings_come_from_the_environment(tmp_path) -> None:
    import json
    import os

    from tests.conftest import run_tarifa

    env = {
        **os.environ,
        "TARIFA_VAR_DIR": str(tmp_path / "var"),
        "TARIFA_HTTPS": "on",
        "TARIFA_HSTS_SECONDS": "3600",
        "TARIFA_PROXY_SSL_HEADER": "X-Forwarded-Proto",
        "TARIFA_CSRF_TRUSTED_ORIGINS": "https://a.example,https://b.example:8443",
        "TARIFA_SECURE_COOKIES": "on",
    }
    code = (
        "import json; from django.conf import settings as s; print(json.dumps([s.SESSION_COOKIE_SECURE, "
        "s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
        "s.SECURE_PROXY_SSL_HEADER, s.CSRF_TRUSTED_ORIGINS]))"
    )
    result = run_tarifa(env, "manage", "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        True,
        True,
        True,
        3600,
        True,
        ["HTTP_X_FORWARDED_PROTO", "https"],
        ["https://a.example", "https://b.example:8443"],
    ]
    env["TARIFA_CSRF_TRUSTED_ORIGINS"] = "billing.example.com"
    result = run_tarifa(env, "manage", "check")
    assert result.returncode == 2
    assert (
        "TARIFA_CSRF_TRUSTED_ORIGINS 'billing.example.com' is refused: each origin must be scheme://host[:port]"
        in result.stderr
    )


# --- readable listings (issue 11 item 20) -----------------------------------------------------------


@pytest.fixture
def boss(client):  # type: ignore[no-untyped-def]
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@x.example", "Boss-pass-1234"))
    return client


@pytest.fixture
def neighbours(operator):  # type: ignore[no-untyped-def]
    """Three customers whose IP devices share a prefix: .2, .20 and .25 (and one IPv6)."""
    from tarifa.customers.models import Account, Customer, IpDevice

    made = {}
    for n, address in enumerate(["198.51.100.2", "198.51.100.20", "198.51.100.25", "2001:db8::1"]):
        customer = Customer.objects.create(
            parent=operator,
            name=f"N{n}",
            company=f"Neighbour {n}",
            web_username=f"neighbour{n}",
            tariff=operator.tariff,
            email=f"n{n}@x.example",
            phone="+12015550123",
            country="US",
        )
        account = Account.objects.create(customer=customer, name=f"neighbour{n}-main")
        IpDevice.objects.create(account=account, address=address)
        made[address] = customer
    return made


def _label(obj) -> str:  # type: ignore[no-untyped-def]
    """Customers by user name, accounts by name, devices by address."""
    from tarifa.customers.models import Account, Customer

    if isinstance(obj, Customer):
        return obj.web_username
    return obj.name if isinstance(obj, Account) else str(obj)


@pytest.mark.parametrize(
    ("url_name", "query", "expected"),
    [
        ("admin:customers_ipdevice_changelist", {"q": "198.51.100.2"}, ["198.51.100.2"]),
        ("admin:customers_ipdevice_changelist", {"q": " 198.51.100.2 "}, ["198.51.100.2"]),
        ("admin:customers_ipdevice_changelist", {"q": "2001:DB8:0::1"}, ["2001:db8::1"]),
        (
            "admin:customers_ipdevice_changelist",
            {"q": "198.51.100"},
            ["198.51.100.2", "198.51.100.20", "198.51.100.25"],
        ),
        ("admin:customers_customer_changelist", {"q": "198.51.100.2"}, ["neighbour0"]),
        ("admin:customers_customer_changelist", {"ip_address": "198.51.100.2"}, ["neighbour0"]),
        ("admin:customers_account_changelist", {"q": "198.51.100.2"}, ["neighbour0-main"]),
    ],
)
def test_a_whole_ip_address_is_searched_exactly(boss, neighbours, url_name: str, query: dict, expected: list) -> None:
    response = boss.get(reverse(url_name), query)
    assert response.status_code == 200
    shown = sorted(_label(o) for o in response.context["cl"].queryset)
    assert shown == sorted(expected)


def test_call_rates_show_the_scope_by_name_and_the_second_in_utc(boss, neighbours) -> None:
    from tarifa.calls.models import CallRate

    customer = neighbours["198.51.100.2"]
    CallRate.objects.create(scope=f"c:{customer.pk}", second=1767225600, count=3)
    device = customer.accounts.get().ipdevices.get()
    CallRate.objects.create(scope=f"d:ip:{device.pk}", second=1767225601, count=1)
    CallRate.objects.create(scope="n:999999", second=1767225602, count=1)
    text = boss.get(reverse("admin:calls_callrate_changelist")).content.decode()
    assert f"Customer {customer}" in text
    assert "IP device 198.51.100.2" in text
    assert "Connection #999999 (deleted)" in text
    assert "2026-01-01 00:00:00 UTC" in text and "1767225600" not in text


def test_with_ssl_redirect_pages_go_to_https_but_the_api_is_not_redirected(settings) -> None:
    from django.test import Client

    settings.SECURE_SSL_REDIRECT = True
    client = Client()
    response = client.get(reverse("admin:login"))
    assert response.status_code == 301 and response["Location"].startswith("https://")
    assert client.get("/api/v1/health").status_code == 200
    assert client.post("/api/v1/calls/authorize", "{}", content_type="application/json").status_code != 301
