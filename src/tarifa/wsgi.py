import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tarifa.settings")
django_application = get_wsgi_application()

# A serving process loads its URLs, and with them the back office's pages (settings:
# SimpleAdminConfig; tarifa.urls registers them), before its first request rather than during it.
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018  (the import of tarifa.urls is the point)

from tarifa import config  # noqa: E402
from tarifa.api import switch_endpoints  # noqa: E402  (needs the settings loaded above)

# POST /api/v1/calls/authorize and /api/v1/calls/{call_id}/end are answered without the middleware
# stack (api/switch_endpoints.py); every other request goes to Django.
application = switch_endpoints.wsgi(django_application)

# The same with Tarifa's escaped access log (``tarifa serve`` with TARIFA_BODY_TIMEOUT=0; tarifa.front).
from tarifa.front import logged as _with_log  # noqa: E402

logged = _with_log(application)


def _warm_up() -> None:
    """Load the call-authorisation caches (snapshot and rate tables) before the first request,
    so no call waits for a cold cache: ``tarifa serve`` asks for it in each worker."""
    import logging

    from django.db import connections

    from tarifa.calls import cache

    try:
        cache.warm_up()
    except Exception:  # an empty or not yet migrated database must not stop the server
        logging.getLogger("tarifa").exception("cache warm-up failed; caches will load on first use")
    finally:
        connections.close_all()


if config.warm_up():
    _warm_up()
