"""Failed log-ins, one row each: the only state of the throttle, shared by every process."""

from __future__ import annotations

from django.db import models


class LoginFailure(models.Model):
    """One failed log-in, recorded under its user name and, separately, under its client address.

    Rows, not counters: concurrent failures from several processes are plain inserts (no lost
    update), and the rule in ``core.lockout`` reads their times. Rows older than the window are
    deleted as new ones come in, so the table stays small.
    """

    class Scope(models.TextChoices):
        USER = "user", "user name"
        ADDRESS = "address", "client address"
        SIGNUP = "signup", "portal sign-up from a client address"

    scope = models.CharField(max_length=8, choices=Scope.choices)
    key = models.CharField(max_length=150)
    at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "failed log-in"
        indexes = [models.Index(fields=["scope", "key", "at"], name="throttle_scope_key_at")]

    def __str__(self) -> str:
        return f"{self.get_scope_display()} {self.key} at {self.at:%Y-%m-%d %H:%M:%S} UTC"
