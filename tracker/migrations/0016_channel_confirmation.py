from django.db import migrations, models
from django.db.models import F


def channels_made_before_are_confirmed(apps, schema_editor):
    """Webhooks need no confirmation; an address saved before confirmation existed keeps
    working."""
    apps.get_model("tracker", "Channel").objects.update(confirmed_at=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0015_submissions"),
    ]

    operations = [
        migrations.AddField(
            model_name="channel",
            name="confirmed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(channels_made_before_are_confirmed, migrations.RunPython.noop),
    ]
