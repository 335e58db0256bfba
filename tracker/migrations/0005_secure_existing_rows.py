"""Close the holes in rows written before the fix.

1. A gateway row that pairs the site's token with any other URL (the settings form used to
   carry the token over to a new URL) loses the token, and credentials written into a URL
   (user:password@host) are removed: no secret stays in plain text or goes where it was not
   saved for. A row that then equals another row is merged into it.
2. Every row holding the site's token is marked shared (whatever its auth style).
3. On a shared gateway, each task belongs to the first account that tracked it and that the
   gateway answered for. Other accounts' rows for that ID keep the row but lose the data
   they were never entitled to, and read "not found" from then on.
"""

import hashlib
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.db import migrations

UPSTREAM_FIELDS = {
    "status": "", "progress": "", "action": "", "prompt": "", "prompt_en": "",
    "description": "", "state": "", "fail_reason": "", "image_url": "", "image_urls": [],
    "video_url": "", "buttons": [], "properties": {}, "submitted_at": None,
    "started_at": None, "finished_at": None, "raw": {}, "missing_upstream": True,
}  # fmt: skip


def fingerprint(base_url, token, auth_style):
    raw = f"{base_url.rstrip('/')}\n{auth_style}\n{token}".encode()
    return hashlib.sha256(raw).hexdigest()


def without_credentials(url):
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def rewrite(apps, row, base_url, token):
    Connection = apps.get_model("tracker", "UpstreamConnection")
    new_print = fingerprint(base_url, token, row.auth_style)
    twin = Connection.objects.filter(fingerprint=new_print).exclude(pk=row.pk).first()
    if twin is None:
        row.base_url, row.token, row.fingerprint = base_url, token, new_print
        row.save(update_fields=["base_url", "token", "fingerprint"])
        return
    for name in ("Profile", "TrackedTask", "TaskOwner"):
        apps.get_model("tracker", name).objects.filter(connection=row).update(connection=twin)
    row.delete()


def place(url):
    """(scheme, credentials, host, port, path): what makes two gateway URLs one place."""
    parts = urlsplit(url.strip().rstrip("/"))
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    credentials = parts.netloc.rpartition("@")[0]
    return parts.scheme, credentials, (parts.hostname or ""), port, parts.path


def same_url(a, b):
    try:
        return place(a) == place(b)
    except ValueError:
        return False


def secure(apps, schema_editor):
    Connection = apps.get_model("tracker", "UpstreamConnection")
    site_url, site_token = settings.MJDASH_GATEWAY_URL, settings.MJDASH_GATEWAY_TOKEN
    for row in list(Connection.objects.all()):
        base_url = without_credentials(row.base_url)
        token = row.token
        if site_token and token == site_token and not same_url(base_url, site_url):
            token = ""
        if (base_url, token) != (row.base_url, row.token):
            rewrite(apps, row, base_url, token)
    # Every row that holds the site's token is the shared gateway, whatever its auth style.
    shared = [r.pk for r in Connection.objects.all() if site_token and r.token == site_token]
    Connection.objects.filter(pk__in=shared).update(shared=True)
    assign_owners(apps)


def assign_owners(apps):
    TrackedTask = apps.get_model("tracker", "TrackedTask")
    TaskOwner = apps.get_model("tracker", "TaskOwner")
    owners = dict(
        TaskOwner.objects.filter(connection__shared=True).values_list("task_id", "user_id")
    )
    rows = TrackedTask.objects.filter(connection__shared=True).order_by("added_at", "id")
    for row in rows:
        seen = bool(row.raw)
        if row.task_id not in owners and seen:
            TaskOwner.objects.create(
                connection_id=row.connection_id, task_id=row.task_id, user_id=row.user_id,
                claimed_at=row.added_at,
            )  # fmt: skip
            owners[row.task_id] = row.user_id
        elif seen and owners.get(row.task_id) != row.user_id:
            for name, value in UPSTREAM_FIELDS.items():
                setattr(row, name, value)
            row.save(update_fields=list(UPSTREAM_FIELDS))


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0004_shared_gateway_ownership"),
    ]

    operations = [migrations.RunPython(secure, migrations.RunPython.noop)]
