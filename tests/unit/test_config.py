"""TARIFA_* variables: each refused value names the variable, the value and the rule."""

from __future__ import annotations

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
        ("BODY_TIMEOUT", "10s", config.body_timeout, "TARIFA_BODY_TIMEOUT '10s' is refused: must be a whole number from 0 to 3600"),
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
    [("127.0.0.1:8080", "http://127.0.0.1:8080"), ("0.0.0.0:9000", "http://127.0.0.1:9000"),
     ("[::1]:8081", "http://[::1]:8081"), ("billing.lan:80", "http://billing.lan:80")],
)
def test_the_printed_address_follows_the_listen_address(monkeypatch, listen: str, url: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TARIFA_LISTEN", listen)
    assert config.base_url() == url
