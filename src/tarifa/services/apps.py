from django.apps import AppConfig


class ServicesConfig(AppConfig):
    name = "tarifa.services"
    verbose_name = "Services"

    def ready(self) -> None:
        from tarifa.services.recurring import connect_signals

        connect_signals()
