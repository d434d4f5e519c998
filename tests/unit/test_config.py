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
