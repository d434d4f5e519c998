from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "tarifa.calls"
    verbose_name = "Calls in progress"

    def ready(self) -> None:
        from tarifa.calls.cache import connect_signals

        connect_signals()
