"""Our own column types.

EncryptedTextField: a text column whose values are encrypted at rest (Fernet).

The key is derived from SECRET_KEY, and SECRET_KEY_FALLBACKS still decrypt, so keys can be
rotated the usual Django way. A value that no key opens (SECRET_KEY changed with no fallback)
reads as "" and is logged without its content: the user enters the secret again.
"""

from __future__ import annotations

import base64
import hashlib
import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

log = logging.getLogger(__name__)
PREFIX = "fernet:"


def _fernet() -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([Fernet(_derive(key)) for key in keys])


def _derive(secret_key: str) -> bytes:
    digest = hashlib.sha256(b"mjdash encrypted field\n" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def encrypt(value: str) -> str:
    return PREFIX + _fernet().encrypt(value.encode()).decode()


def decrypt(value: str) -> str:
    if not value.startswith(PREFIX):
        return value  # written before encryption existed; re-encrypted on the next save
    try:
        return _fernet().decrypt(value[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        log.warning("an encrypted value could not be opened with SECRET_KEY or its fallbacks")
        return ""


class EncryptedTextField(models.TextField):
    """Reads and writes plain str in Python; stores `fernet:<token>`. Values cannot be
    looked up by content (each encryption is different): query by another column."""

    def from_db_value(self, value, expression, gateway):
        return value if value in (None, "") else decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return value if value in (None, "") else encrypt(value)


class StoredGeneratedField(models.GeneratedField):
    """A GeneratedField that the database stores (db_persist=True), without Django's check of
    the database's support for generated columns. That check asks a PostgreSQL server for its
    version, so `manage.py check --deploy` would need a live database; stored generated
    columns work on every database Django 6 supports (SQLite 3.31+, PostgreSQL 14+)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("db_persist", True)
        super().__init__(**kwargs)

    def _check_supported(self, databases):
        return []
