"""Notices: low-balance and card-expiry e-mails, invoice and payment e-mails, their templates and
the outbox they are delivered from (docs/notices.md)."""
