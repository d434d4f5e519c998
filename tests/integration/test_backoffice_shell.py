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
