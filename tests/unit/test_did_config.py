"""TARIFA_DID_* variables: the quarantine and the provider, refused by name, value and rule."""

from __future__ import annotations

import re

import pytest

from tarifa import config


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "DID_QUARANTINE_DAYS",
            "ninety",
            "TARIFA_DID_QUARANTINE_DAYS 'ninety' is refused: must be a whole number from 0 to 3650",
        ),
        ("DID_QUARANTINE_DAYS", "-1", "TARIFA_DID_QUARANTINE_DAYS '-1' is refused"),
        ("DID_QUARANTINE_DAYS", "3651", "TARIFA_DID_QUARANTINE_DAYS '3651' is refused"),
    ],
)
def test_a_bad_quarantine_is_refused(monkeypatch, name: str, value: str, message: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(f"TARIFA_{name}", value)
    with pytest.raises(config.ConfigError, match=message):
        config.did_quarantine_days()


def test_quarantine_days_default_and_value(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("TARIFA_DID_QUARANTINE_DAYS", raising=False)
    assert config.did_quarantine_days() == 90
    monkeypatch.setenv("TARIFA_DID_QUARANTINE_DAYS", "0")
    assert config.did_quarantine_days() == 0


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("ftp://numbers.example", "must be an http:// or https:// URL"),
        ("https://", "must be an http:// or https:// URL"),
        ("https://numbers.example/api?key=1", "no query"),
        ("http://numbers.example:99999/api", "has a port that is not 1-65535"),
    ],
)
def test_a_bad_provider_url_is_refused(monkeypatch, url: str, rule: str) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TARIFA_DID_PROVIDER_URL", url)
    with pytest.raises(config.ConfigError, match=re.escape(f"TARIFA_DID_PROVIDER_URL '{url}' is refused")) as caught:
        config.did_provider()
    assert rule in str(caught.value)


def test_the_provider(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("TARIFA_DID_PROVIDER_URL", raising=False)
    assert config.did_provider() is None
    monkeypatch.setenv("TARIFA_DID_PROVIDER_URL", "https://numbers.example/api/")
    monkeypatch.setenv("TARIFA_DID_PROVIDER_TOKEN", "t0k")
    monkeypatch.setenv("TARIFA_DID_PROVIDER_TIMEOUT", "3")
    assert config.did_provider() == config.DidProvider("https://numbers.example/api", "t0k", 3)
    monkeypatch.setenv("TARIFA_DID_PROVIDER_TIMEOUT", "0")
    with pytest.raises(config.ConfigError, match="TARIFA_DID_PROVIDER_TIMEOUT '0' is refused"):
        config.did_provider()
