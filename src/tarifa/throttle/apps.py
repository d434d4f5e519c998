from django.apps import AppConfig


class ThrottleConfig(AppConfig):
    name = "tarifa.throttle"
    verbose_name = "Log-in throttling"
    default_auto_field = "django.db.models.BigAutoField"
