from django.apps import AppConfig


class NoticesConfig(AppConfig):
    name = "tarifa.notices"
    verbose_name = "Notices"

    def ready(self) -> None:
        from tarifa.notices.events import connect_signals

        connect_signals()
