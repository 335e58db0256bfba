"""Re-encrypt every stored secret under the current SECRET_KEY, so old keys can leave
SECRET_KEY_FALLBACKS. Values are never printed."""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast

from tracker.fields import PREFIX, EncryptedTextField, decrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored gateway token under the current SECRET_KEY. Tokens that "
        "neither SECRET_KEY nor SECRET_KEY_FALLBACKS opens are counted and left as they are."
    )

    def handle(self, *args, **options) -> None:
        rotated = unopened = 0
        with transaction.atomic():
            for model in apps.get_models():
                for field in model._meta.concrete_fields:
                    if isinstance(field, EncryptedTextField):
                        r, u = self.rotate(model, field)
                        rotated, unopened = rotated + r, unopened + u
        self.stdout.write(f"Re-encrypted {rotated} stored token(s) under the current SECRET_KEY.")
        if unopened:
            self.stdout.write(
                self.style.WARNING(
                    f"{unopened} stored token(s) could not be opened with SECRET_KEY or "
                    "SECRET_KEY_FALLBACKS and were left as they are. Add the key they were "
                    "saved under to SECRET_KEY_FALLBACKS and run this again, or have their "
                    "users enter them again."
                )
            )

    @staticmethod
    def rotate(model, field) -> tuple[int, int]:
        manager = model._default_manager
        # The column as stored: Cast keeps the field from decrypting it on the way out.
        rows = (
            manager.select_for_update()
            .annotate(stored=Cast(field.attname, TextField()))
            .values_list("pk", "stored")
        )
        rotated = unopened = 0
        for pk, stored in rows:
            if not stored:
                continue
            # A value saved before encryption existed is plain text: encrypt it now.
            value = decrypt(stored) if stored.startswith(PREFIX) else stored
            if not value:  # nothing encrypted is ever empty: no key opened it
                unopened += 1
                continue
            manager.filter(pk=pk).update(**{field.attname: value})  # encrypts with SECRET_KEY
            rotated += 1
        return rotated, unopened
