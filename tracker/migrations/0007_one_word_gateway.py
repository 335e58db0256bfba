"""One word for one thing: the gateway (it was the model UpstreamConnection, and the fields
that point at it were called `connection`, a name that also collides with django.db's). The
index and the constraint that name the field are dropped first and made again after, since
SQLite rebuilds the table on a rename."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0006_status_choices_and_seen_upstream"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="taskowner", name="one_owner_per_task"),
        migrations.RemoveIndex(model_name="trackedtask", name="tracker_tra_connect_8cdeda_idx"),
        migrations.RenameModel("UpstreamConnection", "Gateway"),
        migrations.RenameField("trackedtask", "connection", "gateway"),
        migrations.RenameField("profile", "connection", "gateway"),
        migrations.RenameField("taskowner", "connection", "gateway"),
        migrations.AddIndex(
            model_name="trackedtask",
            index=models.Index(fields=["gateway", "status"], name="tracker_tra_gateway_fcd6a3_idx"),
        ),
        migrations.AddConstraint(
            model_name="taskowner",
            constraint=models.UniqueConstraint(
                fields=("gateway", "task_id"), name="one_owner_per_task"
            ),
        ),
    ]
