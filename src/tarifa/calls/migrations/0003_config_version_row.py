from django.db import migrations


def create_row(apps, schema_editor):  # type: ignore[no-untyped-def]
    ConfigVersion = apps.get_model("calls", "ConfigVersion")
    ConfigVersion.objects.get_or_create(pk=1, defaults={"version": 0})


class Migration(migrations.Migration):
    dependencies = [("calls", "0002_initial")]
    operations = [migrations.RunPython(create_row, migrations.RunPython.noop)]
