"""Callback signatures (core.webhooks): HMAC over timestamp and body, a tolerance against replays."""

from __future__ import annotations

import pytest

from tarifa.core.webhooks import SignatureRefused, check_signature, sign

SECRET = "whsec_0123456789abcdef"
BODY = b'{"id":"evt_1"}'
NOW = 1_800_000_000


def test_a_good_signature_gives_its_timestamp() -> None:
    assert check_signature(SECRET, sign(SECRET, NOW - 10, BODY), BODY, NOW) == NOW - 10


@pytest.mark.parametrize(
    ("header", "body", "secret", "reason"),
    [
        (None, BODY, SECRET, "header is missing"),
        ("v1=abc", BODY, SECRET, "must be t=<unix seconds>"),
        (sign("another-secret-0123", NOW, BODY), BODY, SECRET, "does not match"),
        (sign(SECRET, NOW, BODY), b'{"id":"evt_2"}', SECRET, "does not match"),
        (sign(SECRET, NOW - 301, BODY), BODY, SECRET, "more than 300 s"),
        (sign(SECRET, NOW, BODY), BODY, "", "no webhook secret is configured"),
        ("t=1;touch /tmp/pwned,v1=$(id)", BODY, SECRET, "must be t=<unix seconds>"),
        ("t=\u00e9,v1=x", BODY, SECRET, "malformed"),
    ],
)
def test_refused_signatures_say_why(header: str | None, body: bytes, secret: str, reason: str) -> None:
    with pytest.raises(SignatureRefused, match=reason):
        check_signature(secret, header, body, NOW)
