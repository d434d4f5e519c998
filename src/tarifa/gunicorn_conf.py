"""gunicorn settings for ``tarifa serve``: each worker loads its call-authorisation caches
(snapshot and rate tables) before it accepts requests, so no call waits for a cold cache."""

from __future__ import annotations

import logging
from typing import Any


def post_worker_init(worker: Any) -> None:
    from django.db import connections

    from tarifa.calls import cache

    try:
        cache.warm_up()
    except Exception:  # an empty or not yet migrated database must not stop the server
        logging.getLogger("tarifa").exception("cache warm-up failed; caches will load on first use")
    finally:
        connections.close_all()
