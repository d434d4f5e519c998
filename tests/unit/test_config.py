"""TARIFA_* variables: each refused value names the variable, the value and the rule."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tarifa import config


@pytest.mark.parametrize(
    ("name", "value", "read", "message"),
    [
        ("LISTEN", "127.0.0.1:http", config.listen, "TARIFA_LISTEN '127.0.0.1:http' is refused: must be host:port"),
        ("LISTEN", "127.0.0.1:70000", config.listen, "with a port from 1 to 65535"),
        ("WORKERS", "two", config.workers, "TARIFA_WORKERS 'two' is refused: must be a whole number from 1 to 256"),
        ("THREADS", "0", config.threads, "TARIFA_THREADS '0' is refused"),
        ("DEBUG", "perhaps", config.debug, "TARIFA_DEBUG 'perhaps' is refused: must be on or off"),
        ("SMTP_PORT", "x", config.smtp, "TARIFA_SMTP_PORT 'x' is refused"),
        ("HTTPS", "maybe", config.https, "TARIFA_HTTPS 'maybe' is refused"),
        ("HSTS_SECONDS", "-1", config.https, "TARIFA_HSTS_SECONDS '-1' is refused"),
        ("PROXY_SSL_HEADER", "X Forwarded", config.https, "must be a header name such as X-Forwarded-Proto"),
        ("CSRF_TRUSTED_ORIGINS", "https://a.example/path", config.https, "each origin must be scheme://host[:port]"),
        ("LOGIN_FAILURES_PER_USER", "0", config.login_throttle, "TARIFA_LOGIN_FAILURES_PER_USER '0' is refused"),
        ("TRUSTED_PROXIES", "-2", config.trusted_proxies, "TARIFA_TRUSTED_PROXIES '-2' is refused"),
        ("MAX_CALL_SECONDS", "forever", config.max_call_seconds, "TARIFA_MAX_CALL_SECONDS 'forever' is refused"),
        ("CACHE_CHECK_SECONDS", "soon", config.cache_check_seconds, "TARIFA_CACHE_CHECK_SECONDS 'soon' is refused"),
        ("INGEST_WRITERS", "17", config.ingest_writers, "TARIFA_INGEST_WRITERS '17' is refused"),
        ("WARM_UP", "soon", config.warm_up, "TARIFA_WARM_UP 'soon' is refused: must be on or off"),
        (
            "BODY_TIMEOUT",
            "10s",
            config.body_timeout,
            "TARIFA_BODY_TIMEOUT '10s' is refused: must be a whole number from 0 to 3600",
        ),
        ("BODY_TIMEOUT", "3601", config.body_timeout, "TARIFA_BODY_TIMEOUT '3601' is refused"),
    ],
)
def test_a_bad_value_is_refused_by_name(monkeypatch, name: str, value: str, read, message: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(f"TARIFA_{name}", value)
    with pytest.raises(config.ConfigError) as refused:
        read()
    assert message in str(refused.value)


def test_https_on_turns_on_the_safe_defaults(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TARIFA_HTTPS", "on")
    https = config.https()
    assert https.secure_cookies and https.ssl_redirect and https.hsts_include_subdomains
    assert https.hsts_seconds == 31536000 and not https.hsts_preload and https.proxy_ssl_header is None
    monkeypatch.setenv("TARIFA_SSL_REDIRECT", "off")
    assert not config.https().ssl_redirect


def test_https_is_off_by_default(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for name in ("HTTPS", "SECURE_COOKIES", "SSL_REDIRECT", "HSTS_SECONDS"):
        monkeypatch.delenv(f"TARIFA_{name}", raising=False)
    https = config.https()
    assert not https.secure_cookies and not https.ssl_redirect and https.hsts_seconds == 0


@pytest.mark.parametrize(
    ("listen", "url"),
    [
        ("127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("0.0.0.0:9000", "http://127.0.0.1:9000"),
        ("[::1]:8081", "http://[::1]:8081"),
        ("billing.lan:80", "http://billing.lan:80"),
    ],
)
def test_the_printed_address_follows_the_listen_address(monkeypatch, listen: str, url: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TARIFA_LISTEN", listen)
    assert config.base_url() == url


def _environment_reads(tree: ast.AST) -> list[int]:
    """Lines that read the process environment (os.environ[...], .get, .pop, ``in``, os.getenv);
    writes for child processes (``os.environ[k] = v``, ``setdefault``) are not reads."""

    def is_os(node: ast.AST) -> bool:
        return isinstance(node, ast.Name) and node.id == "os"

    def is_environ(node: ast.AST) -> bool:  # os.environ (a bare ``environ`` is a WSGI request's)
        return isinstance(node, ast.Attribute) and node.attr == "environ" and is_os(node.value)

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            if (func.attr in ("getenv", "getenvb") and is_os(func.value)) or (
                func.attr in ("get", "pop", "copy", "items") and is_environ(func.value)
            ):
                lines.append(node.lineno)
        elif (isinstance(node, ast.Subscript) and is_environ(node.value) and isinstance(node.ctx, ast.Load)) or (
            isinstance(node, ast.Compare) and any(is_environ(c) for c in node.comparators)
        ):
            lines.append(node.lineno)
    return lines


def test_only_config_reads_the_environment() -> None:
    """All configuration goes through tarifa.config, where each variable is validated and named."""
    src = Path(config.__file__).parent
    found = {
        str(path.relative_to(src)): lines
        for path in sorted(src.rglob("*.py"))
        if path.name != "config.py" and (lines := _environment_reads(ast.parse(path.read_text(), str(path))))
    }
    assert found == {}


def test_admin_password_and_warm_up_come_from_config(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("TARIFA_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("TARIFA_WARM_UP", raising=False)
    assert config.admin_password() is None and config.warm_up() is False
    monkeypatch.setenv("TARIFA_ADMIN_PASSWORD", "Given-pass-1234")
    monkeypatch.setenv(config.WARM_UP_VARIABLE, "1")
    assert config.admin_password() == "Given-pass-1234" and config.warm_up() is True


# --- every variable checked at the start of a command (new-user finding 10) ---------------------------

#: variables taken as given (no rule to break); TARIFA_ADMIN_PASSWORD meets the password rules in
#: ``tarifa createadmin``, the one command that uses it
_FREE_TEXT = {
    "SECRET_KEY",
    "SMTP_HOST",
    "SMTP_USER",
    "SMTP_PASSWORD",
    "DID_PROVIDER_TOKEN",
    "ADMIN_PASSWORD",
    "GATEWAY_KEY",
}

#: one value Tarifa cannot use for each variable it reads, and the rule the refusal must state
_BAD = [
    ("VAR_DIR", "<a file>", "must be a directory"),
    ("DATABASE_URL", "mysql://u@db/tarifa", "must be sqlite:///path/to/file.sqlite3 or postgres://"),
    ("DATABASE_URL", "postgres://u@db:99999/tarifa", "a port from 1 to 65535"),
    ("DATABASE_URL", "postgres://u@db/", "the database name is missing"),
    ("LISTEN", "127.0.0.1:http", "must be host:port"),
    ("SMTP_PORT", "smtp", "must be a whole number from 1 to 65535"),
    ("SMTP_TLS", "sometimes", "must be on or off"),
    ("SMTP_SSL", "sometimes", "must be on or off"),
    ("MAIL_FROM", "billing", "must be an e-mail address"),
    ("ALLOWED_HOSTS", "https://billing.example.com", "without scheme, port or path"),
    ("DEBUG", "perhaps", "must be on or off"),
    ("WORKERS", "0", "must be a whole number from 1 to 256"),
    ("THREADS", "many", "must be a whole number from 1 to 256"),
    ("WAITING_THREADS", "1", "must be a whole number from 2 to 256"),
    ("BODY_MAX_BYTES", "1k", "must be a whole number from 65536"),
    ("BODY_TIMEOUT", "10s", "must be a whole number from 0 to 3600"),
    ("ACCESS_LOG", "verbose", "must be on or off"),
    ("LOGIN_FAILURES_PER_USER", "0", "must be a whole number from 1 to 1000"),
    ("LOGIN_FAILURES_PER_ADDRESS", "x", "must be a whole number from 1 to 10000"),
    ("LOGIN_WINDOW", "15m", "must be a whole number from 1 to 604800"),
    ("LOGIN_LOCKOUT", "-5", "must be a whole number from 1 to 604800"),
    ("SIGNUP", "maybe", "must be on or off"),
    ("SIGNUP_VERIFY_HOURS", "2d", "must be a whole number from 1 to 720"),
    ("SIGNUP_PER_ADDRESS", "0", "must be a whole number from 1 to 1000"),
    ("TRUSTED_PROXIES", "all", "must be a whole number from 0 to 10"),
    ("HTTPS", "maybe", "must be on or off"),
    ("PROXY_SSL_HEADER", "X Forwarded", "must be a header name"),
    ("CSRF_TRUSTED_ORIGINS", "billing.example.com", "each origin must be scheme://host[:port]"),
    ("HSTS_SECONDS", "1y", "must be a whole number from 0 to 63072000"),
    ("SECURE_COOKIES", "2", "must be on or off"),
    ("SSL_REDIRECT", "always", "must be on or off"),
    ("HSTS_INCLUDE_SUBDOMAINS", "all", "must be on or off"),
    ("HSTS_PRELOAD", "later", "must be on or off"),
    ("MAX_CALL_SECONDS", "0", "must be a whole number from 1 to 86400"),
    ("CACHE_CHECK_SECONDS", "soon", "must be a number of seconds from 0 to 3600"),
    ("INGEST_WRITERS", "0", "must be a whole number from 1 to 16"),
    ("DID_QUARANTINE_DAYS", "abc", "must be a whole number from 0 to 3650"),
    ("DID_PROVIDER_URL", "numbers.example", "must be an http:// or https:// URL"),
    ("DID_PROVIDER_TIMEOUT", "0", "must be a whole number from 1 to 120"),
    ("WARM_UP", "soon", "must be on or off"),
    ("GATEWAY_URL", "pay.example", "must be an http:// or https:// URL"),
    ("GATEWAY_WEBHOOK_SECRET", "short", "must be at least 16 characters"),
    ("TAX_ENGINE", "billsoft", "must be builtin or package.module:Class"),
    ("NOTICE_CARD_EXPIRY_DAYS", "30,soon", "must be day counts from 1 to 365"),
]


#: secrets whose refusal names the variable and the rule, never the value
_HIDDEN = {"GATEWAY_WEBHOOK_SECRET"}


def test_the_gateway_needs_its_key_and_secret_and_never_shows_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _clean_environment(monkeypatch, tmp_path)
    assert config.gateway() is None
    monkeypatch.setenv("TARIFA_GATEWAY_URL", "https://pay.example/v1/")
    with pytest.raises(config.ConfigError, match="TARIFA_GATEWAY_KEY '' is refused: is required"):
        config.gateway()
    monkeypatch.setenv("TARIFA_GATEWAY_KEY", "sk_live_abcdef")
    monkeypatch.setenv("TARIFA_GATEWAY_WEBHOOK_SECRET", "whsec_0123456789abcdef")
    settings = config.gateway()
    assert settings is not None and settings.url == "https://pay.example/v1"
    assert "sk_live" not in repr(settings) and "whsec" not in repr(settings)


def _variables_read_by_config() -> set[str]:
    """Every TARIFA_* name tarifa.config reads (``_env*("NAME", ...)``), from its source."""
    import re

    return set(re.findall(r'_env(?:_\w+)?\(\s*"([A-Z_]+)"', Path(config.__file__).read_text()))


def test_every_variable_is_covered_by_check_all_or_is_free_text() -> None:
    """A variable added to config later must join the table above (and check_all), or be free text."""
    assert _variables_read_by_config() == {name for name, _v, _r in _BAD} | _FREE_TEXT


def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("TARIFA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TARIFA_VAR_DIR", str(tmp_path / "var"))


@pytest.mark.parametrize(("name", "value", "rule"), _BAD, ids=[f"{n}={v}" for n, v, _r in _BAD])
def test_check_all_refuses_each_bad_value_by_name_value_and_rule(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str, rule: str
) -> None:
    _clean_environment(monkeypatch, tmp_path)
    config.check_all()  # the defaults pass
    if value == "<a file>":
        value = str(tmp_path / "a-file")
        Path(value).write_text("")
    monkeypatch.setenv(f"TARIFA_{name}", value)
    with pytest.raises(config.ConfigError) as refused:
        config.check_all()
    message = str(refused.value)
    shown = "<hidden>" if name in _HIDDEN else value
    assert f"TARIFA_{name} {shown!r} is refused: " in message and rule in message
    assert value not in message or name not in _HIDDEN  # a secret is never shown, even a refused one
    assert not (tmp_path / "var").exists()  # checking creates nothing


def test_check_all_names_every_bad_value_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("TARIFA_DID_QUARANTINE_DAYS", "abc")
    monkeypatch.setenv("TARIFA_LOGIN_WINDOW", "15m")
    with pytest.raises(config.ConfigError) as refused:
        config.check_all()
    assert str(refused.value).splitlines() == [
        "TARIFA_LOGIN_WINDOW '15m' is refused: must be a whole number from 1 to 604800",
        "TARIFA_DID_QUARANTINE_DAYS 'abc' is refused: must be a whole number from 0 to 3650",
    ]


def test_smtp_tls_and_ssl_together_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("TARIFA_SMTP_TLS", "on")
    monkeypatch.setenv("TARIFA_SMTP_SSL", "on")
    with pytest.raises(config.ConfigError, match="TARIFA_SMTP_SSL 'on' is refused: must be off when TARIFA_SMTP_TLS"):
        config.check_all()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mysql://tarifa:s3cret@db/tarifa", "mysql://tarifa:***@db/tarifa"),
        ("postgres://tarifa:s3c#ret@db/tarifa", "postgres://tarifa:***@db/tarifa"),  # '#' not encoded
        ("postgres://tarifa:s3c@ret@db:99999/tarifa", "postgres://tarifa:***@db:99999/tarifa"),
        ("postgres://tarifa:s3cret@[db/tarifa", "postgres://tarifa:***@[db/tarifa"),  # not even a URL
    ],
)
def test_a_refused_database_url_does_not_show_its_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, shown: str
) -> None:
    _clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("TARIFA_DATABASE_URL", url)
    with pytest.raises(config.ConfigError) as refused:
        config.check_all()
    assert "s3c" not in str(refused.value) and f"TARIFA_DATABASE_URL {shown!r} is refused" in str(refused.value)


@pytest.mark.parametrize(
    "good",
    [
        "sqlite:///var/tarifa.sqlite3",
        "postgres://tarifa:p%23ss@db.internal:5432/tarifa",
        "postgresql://postgres@127.0.0.1:55432/tarifa",
        "postgres:///tarifa",
    ],
)
def test_usual_database_urls_pass(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, good: str) -> None:
    _clean_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("TARIFA_DATABASE_URL", good)
    config.check_all()
    assert config.database_url() == good
