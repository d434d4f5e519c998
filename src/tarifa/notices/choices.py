"""Notice kinds and outbox statuses: the core's enums (``tarifa.core.notices``) with their labels."""

from tarifa.core.notices import NoticeKind, OutboxStatus
from tarifa.vocabulary import Labels

__all__ = ["NOTICE_KIND_LABELS", "OUTBOX_STATUS_LABELS", "NoticeKind", "OutboxStatus"]

NOTICE_KIND_LABELS = Labels(
    NoticeKind,
    {
        NoticeKind.LOW_BALANCE: "Low balance",
        NoticeKind.CARD_EXPIRY: "Card expiry",
        NoticeKind.INVOICE_ISSUED: "Invoice issued",
        NoticeKind.CREDIT_NOTE_ISSUED: "Credit note issued",
        NoticeKind.PAYMENT_RECEIVED: "Payment received",
    },
)

OUTBOX_STATUS_LABELS = Labels(
    OutboxStatus,
    {
        OutboxStatus.PENDING: "Pending",
        OutboxStatus.SENDING: "Sending",
        OutboxStatus.RETRYING: "Waiting to retry",
        OutboxStatus.SENT: "Sent",
        OutboxStatus.FAILED: "Failed",
    },
)
