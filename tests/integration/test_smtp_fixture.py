"""The test SMTP server receives what Django's mail sends, over a real SMTP connection."""

from __future__ import annotations

from django.core.mail import EmailMessage

from tests.smtp import Mailbox


def test_mail_reaches_the_loopback_smtp_server(smtp_server: Mailbox) -> None:
    message = EmailMessage("Low balance", "Your balance is 1.00 USD", "billing@example.net", ["alice@example.com"])
    message.attach("invoice.csv", "number,total\nINV-1,10.00\n", "text/csv")
    assert message.send() == 1
    [mail] = smtp_server.wait_for(1)
    assert mail["Subject"] == "Low balance"
    assert smtp_server.envelopes == [("billing@example.net", ["alice@example.com"])]
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "invoice.csv"
    assert attachment.get_content().replace("\r\n", "\n") == "number,total\nINV-1,10.00\n"
