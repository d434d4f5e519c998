"""What billing tells the layers above it without importing them."""

from django.dispatch import Signal

#: sent after money came in for a customer (a payment or credit); ``customer_id`` keyword. The
#: services layer releases the accounts that the unpaid block held and the money now covers.
money_added = Signal()

#: sent after an invoice (or credit note) was issued and committed; ``invoice`` keyword (an
#: ``Invoice``). Notices e-mail it with its PDF.
invoice_issued = Signal()

#: sent after a payment was recorded and committed (by hand, through a gateway or by automatic
#: top-up); ``transaction`` keyword (a ``Transaction`` of kind payment). Notices send a receipt.
payment_received = Signal()
