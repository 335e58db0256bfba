"""One word, continued: the row's flags speak of the gateway, as the pages do."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("tracker", "0007_one_word_gateway")]

    operations = [
        migrations.RenameField("trackedtask", "missing_upstream", "missing_at_gateway"),
        migrations.RenameField("trackedtask", "seen_upstream", "seen_at_gateway"),
    ]
