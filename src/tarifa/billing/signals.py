"""What billing tells the layers above it without importing them."""

from django.dispatch import Signal

#: sent after money came in for a customer (a payment or credit); ``customer_id`` keyword. The
#: services layer releases the accounts that the unpaid block held and the money now covers.
money_added = Signal()
