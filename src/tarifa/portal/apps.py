from typing import Any

from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "tarifa.portal"
    verbose_name = "Customer portal"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        user_logged_out.connect(_end_view_as, dispatch_uid="tarifa.portal.end_view_as")


def _end_view_as(sender: Any, request: Any = None, **kwargs: Any) -> None:
    """Any log-out (the portal's or the back office's) ends a "log in as" session and records its end."""
    if request is not None:
        from tarifa.portal import viewas

        viewas.end(request)
