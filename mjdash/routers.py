"""Database routing for the RQ queue."""

from __future__ import annotations


class NoTablesForDjangoRQ:
    """django-rq's one model (its admin page's entry) has no table. Keeping its app out of
    migrations also keeps it out of `dumpdata` and the test database's serialization, which
    would otherwise read the table that does not exist."""

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return False if app_label == "django_rq" else None
