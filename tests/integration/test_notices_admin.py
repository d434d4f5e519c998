"""Back office of the notices: templates refused on save by line and placeholder (no template
injection), the test e-mail, the outbox read-only with "send again", and `tarifa notices run`."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from typer.testing import CliRunner

from tarifa.core.notices import OutboxStatus
from tarifa.customers.models import Customer
from tarifa.notices.models import NoticeSettings, NoticeTemplate, Outbox
from tests.factories import staff_user, text
from tests.smtp import Mailbox

URL = "/admin/notices/noticetemplate/"


@pytest.fixture
def boss(client: Any, db: Any) -> Any:
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "Boss-pass1"))
    return client


def _template_form(**overrides: str) -> dict[str, str]:
    data = {
        "kind": "invoice_issued",
        "language": "fr",
        "subject": "Facture {{ invoice_number }}",
        "body_text": "Bonjour {{ customer_name }}",
        "body_html": "",
    }
    data.update(overrides)
    return data


def test_defaults_are_shipped_as_editable_rows(boss: Any) -> None:
    assert set(NoticeTemplate.objects.values_list("kind", flat=True)) == {
        "low_balance",
        "card_expiry",
        "invoice_issued",
        "credit_note_issued",
        "payment_received",
    }
    page = text(boss.get(URL))
    assert "Invoice {{ invoice_number }}" in page


def test_a_good_template_is_saved(boss: Any) -> None:
    response = boss.post(URL + "add/", _template_form())
    assert response.status_code == 302
    assert NoticeTemplate.objects.filter(kind="invoice_issued", language="fr").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "body_text",
            "Hello\n{{ settings.SECRET_KEY }}",
            "Text body line 2: {{ settings.SECRET_KEY }} is refused: unknown placeholder",
        ),
        ("body_text", "{% load static %}", "Text body line 1: {% load static %} is refused: template tags"),
        ("body_html", '<p>\n{% include "/etc/passwd" %}', 'HTML body line 2: {% include "/etc/passwd" %} is refused'),
        ("body_text", "a\nb\n{% debug %}", "Text body line 3: {% debug %} is refused"),
        (
            "subject",
            "Invoice {{ invoice_number",
            "Subject line 1: {{ invoice_number is refused: a placeholder must close",
        ),
        (
            "body_text",
            "{{ amount }}",
            "Text body line 1: {{ amount }} is refused: unknown placeholder; the known ones are",
        ),
    ],
)
def test_bad_templates_are_refused_naming_line_and_placeholder(boss: Any, field: str, value: str, message: str) -> None:
    response = boss.post(URL + "add/", _template_form(**{field: value}))
    assert response.status_code == 200
    assert message in text(response)
    assert not NoticeTemplate.objects.filter(language="fr").exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{{ settings.SECRET_KEY }}", "Subject line 1: {{ settings.SECRET_KEY }} is refused: unknown placeholder"),
        ("{{ due_date }}", "Subject line 1: {{ due_date }} is refused: unknown placeholder"),  # an invoice's only
        ('{% include "/etc/passwd" %}', 'Subject line 1: {% include "/etc/passwd" %} is refused'),
    ],
)
def test_the_credit_note_template_is_editable_and_refuses_injection(boss: Any, value: str, message: str) -> None:
    form = _template_form(kind="credit_note_issued", subject="Avoir {{ credit_note_number }}: {{ amount }}")
    assert boss.post(URL + "add/", form).status_code == 302
    bad = _template_form(kind="credit_note_issued", language="de", subject=value)
    response = boss.post(URL + "add/", bad)
    assert response.status_code == 200 and message in text(response)
    assert not NoticeTemplate.objects.filter(language="de").exists()


def test_send_a_test_e_mail_of_a_template(boss: Any, smtp_server: Mailbox) -> None:
    template = NoticeTemplate.objects.get(kind="invoice_issued", language="")
    response = boss.post(URL, {"action": "send_test", "_selected_action": [template.pk]}, follow=True)
    assert "1 test e-mail(s) sent to boss@example.com" in text(response)
    [mail] = smtp_server.wait_for(1)
    assert mail["Subject"] == "[test] Invoice INV-2030-000123: 123.45 USD"
    assert mail["To"] == "boss@example.com"


@pytest.fixture
def failed_notice(operator: Customer) -> Outbox:
    return Outbox.objects.create(
        kind="low_balance",
        key="low_balance:customer:1:x",
        customer=operator,
        recipients="op@example.com",
        subject="Low balance",
        body_text="x",
        status=OutboxStatus.FAILED,
        attempts=8,
        last_error="SMTP down",
    )


def test_outbox_is_read_only_filterable_and_failed_ones_can_be_sent_again(
    boss: Any, failed_notice: Outbox, operator: Customer, smtp_server: Mailbox
) -> None:
    listing = text(boss.get("/admin/notices/outbox/?status=failed&kind=low_balance"))
    assert "op@example.com" in listing
    assert "op@example.com" not in text(boss.get("/admin/notices/outbox/?status=sent"))
    assert "op@example.com" in text(boss.get(f"/admin/notices/outbox/?customer={operator.pk}"))
    assert boss.get("/admin/notices/outbox/add/").status_code == 403
    page = boss.post(f"/admin/notices/outbox/{failed_notice.pk}/change/", {"subject": "changed"})
    assert page.status_code == 403
    response = boss.post(
        "/admin/notices/outbox/", {"action": "send_again", "_selected_action": [failed_notice.pk]}, follow=True
    )
    assert "1 e-mail(s) queued again" in text(response)
    failed_notice.refresh_from_db()
    assert (failed_notice.status, failed_notice.attempts) == (OutboxStatus.PENDING, 0)


def test_a_viewer_cannot_send_again(client: Any, failed_notice: Outbox) -> None:
    client.force_login(staff_user("viewer", "view_outbox"))
    assert client.get("/admin/notices/outbox/").status_code == 200
    client.post("/admin/notices/outbox/", {"action": "send_again", "_selected_action": [failed_notice.pk]})
    failed_notice.refresh_from_db()
    assert failed_notice.status == OutboxStatus.FAILED


def test_threshold_change_rearms_and_negative_thresholds_are_refused(boss: Any, operator: Customer) -> None:
    response = boss.post(
        "/admin/notices/noticesettings/add/",
        {"customer": operator.pk, "low_balance_threshold": "-1", "emails": "bad-address"},
    )
    page = text(response)
    assert "Low-balance threshold -1 is refused" in page
    assert "Notice e-mails 'bad-address' is refused" in page
    settings = NoticeSettings.objects.create(customer=operator, low_balance_threshold=Decimal(10))
    assert settings.rearmed_at is None
    settings.low_balance_threshold = Decimal(20)
    settings.save()
    assert settings.rearmed_at is not None


def test_cli_notices_run(operator: Customer, smtp_server: Mailbox) -> None:
    from tarifa import cli

    if not any(group.name == "notices" for group in cli.app.registered_groups):
        cli._register_commands()
    NoticeSettings.objects.create(customer=operator, low_balance_threshold=Decimal(5))
    result = CliRunner().invoke(cli.app, ["notices", "run"])
    assert result.exit_code == 0, result.output
    assert "queued 1 low-balance, 0 card-expiry and 0 invoice notice(s)" in result.output
    assert "sent 1 e-mail(s); 0 waiting to retry, 0 failed" in result.output
    smtp_server.wait_for(1)
    again = CliRunner().invoke(cli.app, ["notices", "run"])
    assert "queued 0 low-balance" in again.output
    assert Outbox.objects.filter(created_at__gte=timezone.now() - timedelta(minutes=5)).count() == 1
