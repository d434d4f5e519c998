"""The threads of a file import: a reader ahead of the writers, several writers on PostgreSQL.

Why threads: parsing a canonical CSV is polars work that releases the GIL, and a batch's time
is mostly the database's, so reading the next chunks while batches are written, and writing two
batches at once on PostgreSQL (each in its own connection and database transaction; the unique
key and the balance locks keep them exact), uses the machine. No rule lives here: the work each
thread does is handed in (``post``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from tarifa import config

T = TypeVar("T")


def writers() -> int:
    """Batches written at once by a file import on PostgreSQL (TARIFA_INGEST_WRITERS, default 2)."""
    return config.ingest_writers()


def read_ahead(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """The items of ``items``, produced by a second thread up to ``depth`` ahead of the consumer.

    Parsing (polars, which releases the GIL) then overlaps with the database writes. An
    exception in the producer is raised here; leaving early stops the producer.
    """
    pending: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def hand_over(entry: tuple[bool, object]) -> bool:
        """Queue ``entry`` unless the consumer has left; False when it has."""
        while not stop.is_set():
            try:
                pending.put(entry, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over((True, item)):
                    return
            hand_over((True, done))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            hand_over((False, exc))

    worker = threading.Thread(target=produce, name="cdr-reader", daemon=True)
    worker.start()
    try:
        while True:
            ok, item = pending.get()
            if not ok:
                raise item  # type: ignore[misc]
            if item is done:
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()


def write_in_parallel(
    items: Iterable[T], post: Callable[[T], None], count: int, done: Callable[[T], None] | None = None
) -> None:
    """``post`` every item in one of ``count`` writer threads; ``done(item)`` after each (from
    the writer's thread). The first failure stops the hand-out and is raised here once the
    writers have finished their current item."""
    from django.db import connections

    work: queue.Queue[tuple[T] | None] = queue.Queue(maxsize=count)
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            while (entry := work.get()) is not None:
                if failures:
                    continue
                try:
                    post(entry[0])
                except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                    failures.append(exc)
                    continue
                if done is not None:
                    done(entry[0])
        finally:
            connections.close_all()  # this thread's connections

    threads = [threading.Thread(target=writer, name=f"cdr-writer-{n}", daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    try:
        for item in items:
            if failures:
                break
            work.put((item,))
    finally:
        for _ in threads:
            work.put(None)
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]


__all__ = ["read_ahead", "write_in_parallel", "writers"]
