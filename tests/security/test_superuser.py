"""``tarifa manage createsuperuser --noinput`` with DJANGO_SUPERUSER_PASSWORD: the password rules of
every other door (seed 003's rule, similarity to the user name, common passwords) hold here too."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("a", "must be 8 to 1024 characters long; This password is too common"),
        ("password", "capital letter"),
        ("Password1", "special character"),
        ("Mallory-1!", "too similar"),
    ],
)
def test_a_weak_password_is_refused_and_nobody_created(
    monkeypatch: pytest.MonkeyPatch, password: str, rule: str
) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", password)
    with pytest.raises(CommandError) as refused:
        call_command("createsuperuser", "--noinput", username="mallory-1", email="mallory@example.com")
    assert str(refused.value).startswith("DJANGO_SUPERUSER_PASSWORD is refused: ")
    assert rule in str(refused.value), refused.value
    assert not get_user_model().objects.filter(username="mallory-1").exists()


def test_a_strong_password_creates_the_superuser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a long Passphrase 4 the ops team!")
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "ops")
    call_command("createsuperuser", "--noinput", email="ops@example.com")
    user = get_user_model().objects.get(username="ops")
    assert user.is_superuser and user.check_password("a long Passphrase 4 the ops team!")
