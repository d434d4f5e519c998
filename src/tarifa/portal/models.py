"""The portal's own rows: a customer's online sign-up, pending until its e-mail link is followed."""

from __future__ import annotations

from django.db import models


class Signup(models.Model):
    """One online sign-up (docs/portal.md, "Online sign-up").

    The customer, its portal user and its first account are stored at once, inactive; the DIDs it
    chose are *reserved* (``dids``) so nobody else takes them meanwhile. Following the e-mail link
    before ``expires_at`` activates the customer and its user and assigns the numbers
    (``verified_at``); past ``expires_at`` the numbers go back to the inventory (``expired_at``) and
    the link is refused."""

    customer = models.OneToOneField("customers.Customer", on_delete=models.PROTECT, related_name="signup")
    account = models.ForeignKey("customers.Account", on_delete=models.PROTECT, related_name="+")
    plan = models.ForeignKey("billing.ServicePlan", on_delete=models.PROTECT, related_name="+")
    did_plan = models.ForeignKey("dids.DidPlan", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    dids = models.ManyToManyField("dids.Did", blank=True, related_name="+", verbose_name="DIDs chosen")
    address = models.CharField("from address", max_length=150, blank=True)
    created_at = models.DateTimeField("signed up at", auto_now_add=True)
    expires_at = models.DateTimeField("link valid until", db_index=True)
    verified_at = models.DateTimeField("e-mail verified at", null=True, blank=True)
    expired_at = models.DateTimeField("expired at", null=True, blank=True)

    class Meta:
        verbose_name = "online sign-up"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"sign-up of {self.customer}"

    @property
    def state(self) -> str:
        if self.verified_at is not None:
            return "verified"
        return "expired" if self.expired_at is not None else "pending"
