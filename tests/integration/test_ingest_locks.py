"""Rows CDRs refer to without a database constraint cannot be deleted under a running batch."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.db.models import ProtectedError

from tarifa.cdrs.models import Cdr
from tarifa.cdrs.store import hold_references
from tarifa.customers.models import Account
from tests.factories import T0

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks between sessions: SQLite has one writer at a time"
)


@postgresql_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["instance", "queryset"])
def test_deleting_an_account_waits_for_the_batch_then_is_refused(world, how: str) -> None:
    """Without the lock the delete's PROTECT check would run before the batch commits, find no
    call and leave the batch's CDRs pointing at a deleted account."""
    account = Account.objects.create(customer=world["customer"], name="fresh", dialing_mode="e164")
    locked, done = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def batch() -> None:
        try:
            with transaction.atomic():
                hold_references([account.pk], [world["customer"].pk], [])
                Cdr.objects.create(
                    switch="sw",
                    call_id="first-call",
                    callee="442079460958",
                    start_time=T0,
                    account_id=account.pk,
                    customer_id=world["customer"].pk,
                )
                locked.set()
                time.sleep(0.5)  # the delete below starts meanwhile
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)
        finally:
            done.set()
            connections.close_all()

    worker = threading.Thread(target=batch)
    worker.start()
    assert locked.wait(10)
    with pytest.raises(ProtectedError):
        if how == "instance":
            Account.objects.get(pk=account.pk).delete()
        else:
            Account.objects.filter(pk=account.pk).delete()
    worker.join(10)
    assert done.is_set() and not failures
    assert Account.objects.filter(pk=account.pk).exists()
    assert Cdr.objects.get(call_id="first-call").account_id == account.pk
