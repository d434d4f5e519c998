from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "tarifa.audit"
    label = "audit"
    verbose_name = "Audit log"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tarifa.audit import models
        from tarifa.changes import changed

        changed.connect(models.record, dispatch_uid="tarifa.audit.record")
