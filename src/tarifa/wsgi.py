import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tarifa.settings")
django_application = get_wsgi_application()

from tarifa.api import lean  # noqa: E402  (needs the settings loaded above)

# POST /api/v1/calls/authorize and /api/v1/calls/{call_id}/end are answered without the middleware
# stack (api/lean.py); every other request goes to Django.
application = lean.wsgi(django_application)
