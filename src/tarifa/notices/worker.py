"""The notices' part of ``tarifa worker``: checks every ``every`` seconds, the outbox every sweep.
An error is reported in one line and the worker goes on (the next sweep tries again)."""

from __future__ import annotations

import time
from collections.abc import Callable


class NoticeJob:
    def __init__(self, every: float, echo: Callable[..., None]) -> None:  # float-ok: seconds
        self.every = every
        self.echo = echo
        self.checked_at: float | None = None  # float-ok: monotonic seconds

    def sweep(self, verbose: bool = False) -> None:
        from tarifa.notices.sender import deliver
        from tarifa.notices.service import check

        if self.checked_at is None or time.monotonic() - self.checked_at >= self.every:
            self.checked_at = time.monotonic()
            try:
                low, cards, invoices = check()
            except Exception as exc:  # noqa: BLE001 - reported; the next check tries again
                self.echo(f"error: the notice checks failed (tried again next check): {_reason(exc)}", err=True)
            else:
                if low or cards or invoices or verbose:
                    self.echo(f"queued {low} low-balance, {cards} card-expiry and {invoices} invoice notice(s)")
        try:
            sent = deliver()
        except Exception as exc:  # noqa: BLE001 - reported; the next sweep tries again
            self.echo(f"error: sending the notices failed (tried again next sweep): {_reason(exc)}", err=True)
        else:
            if sent.sent or sent.retrying or sent.failed or verbose:
                self.echo(f"sent {sent.sent} notice e-mail(s); {sent.retrying} waiting to retry, {sent.failed} failed")


def _reason(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())
