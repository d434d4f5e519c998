"""What the DID app tells the layers above it without importing them."""

from django.dispatch import Signal

#: sent inside ``release_did``'s transaction while the number still has its account, plan and
#: activation date; keywords ``did`` and ``on`` (the release date, the first day not charged).
#: The services layer posts the prorated last period (docs/recurring-charges.md).
did_releasing = Signal()
