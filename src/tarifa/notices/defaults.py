"""The templates Tarifa ships; the operator's own (``NoticeTemplate`` rows) replace them."""

from __future__ import annotations

from dataclasses import dataclass

from tarifa.core.notices import NoticeKind


@dataclass(frozen=True)
class Default:
    subject: str
    body_text: str
    body_html: str = ""


DEFAULTS: dict[NoticeKind, Default] = {
    NoticeKind.LOW_BALANCE: Default(
        subject="Low balance: {{ available_funds }} {{ currency }} available",
        body_text=(
            "Hello {{ customer_name }},\n\n"
            "The available funds of {{ account_name }} are {{ available_funds }} {{ currency }}, below your\n"
            "threshold of {{ threshold }} {{ currency }}. Please add funds to keep your calls going.\n\n"
            "You will receive this reminder once a day until funds are added.\n"
        ),
        body_html=(
            "<p>Hello {{ customer_name }},</p>\n"
            "<p>The available funds of {{ account_name }} are <b>{{ available_funds }} {{ currency }}</b>,\n"
            "below your threshold of {{ threshold }} {{ currency }}. Please add funds to keep your calls going.</p>\n"
        ),
    ),
    NoticeKind.CARD_EXPIRY: Default(
        subject="Your card {{ card }} expires on {{ expires_on }}",
        body_text=(
            "Hello {{ customer_name }},\n\n"
            "The card {{ card }} saved for your account {{ account_code }} expires on {{ expires_on }}\n"
            "(in {{ days_left }} days). Please add a new card so that payments and top-ups go on.\n"
        ),
    ),
    NoticeKind.INVOICE_ISSUED: Default(
        subject="Invoice {{ invoice_number }}: {{ total }} {{ currency }}",
        body_text=(
            "Hello {{ customer_name }},\n\n"
            "Your invoice {{ invoice_number }} for {{ period_start }} to {{ period_end }} is attached.\n"
            "Total: {{ total }} {{ currency }}, due on {{ due_date }}.\n"
        ),
        body_html=(
            "<p>Hello {{ customer_name }},</p>\n"
            "<p>Your invoice <b>{{ invoice_number }}</b> for {{ period_start }} to {{ period_end }} is attached.\n"
            "Total: {{ total }} {{ currency }}, due on {{ due_date }}.</p>\n"
        ),
    ),
    NoticeKind.CREDIT_NOTE_ISSUED: Default(
        subject="Credit note {{ credit_note_number }}: {{ amount }} {{ currency }}",
        body_text=(
            "Hello {{ customer_name }},\n\n"
            "Your credit note {{ credit_note_number }} on invoice {{ invoice_number }} is attached.\n"
            "It reduces what you owe by {{ amount }} {{ currency }} ({{ net }} net + {{ tax }} tax).\n"
        ),
        body_html=(
            "<p>Hello {{ customer_name }},</p>\n"
            "<p>Your credit note <b>{{ credit_note_number }}</b> on invoice {{ invoice_number }} is attached.\n"
            "It reduces what you owe by {{ amount }} {{ currency }} ({{ net }} net + {{ tax }} tax).</p>\n"
        ),
    ),
    NoticeKind.PAYMENT_RECEIVED: Default(
        subject="Payment received: {{ amount }} {{ currency }}",
        body_text=(
            "Hello {{ customer_name }},\n\n"
            "We received your payment of {{ amount }} {{ currency }} on {{ paid_on }}\n"
            "(reference {{ reference }}). Your balance is now {{ balance }} {{ currency }}.\n\n"
            "Thank you.\n"
        ),
    ),
}
