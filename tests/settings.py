"""The project's settings, with what tests need and nothing else changed."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-not-for-production")
os.environ.setdefault("MJDASH_DATA_DIR", tempfile.mkdtemp(prefix="mjdash-tests-"))

from mjdash.settings import *  # noqa: E402,F403

MJDASH_ALLOW_PRIVATE_GATEWAYS = True  # the sandbox gateway lives on 127.0.0.1
# The sandbox's stand-in for Midjourney's and Discord's CDNs is the same server under the one
# other name that resolves to loopback here, "localhost:<its port>" (tests/conftest.py).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests

# Static files straight from the source folders; no collectstatic manifest needed in tests.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STATIC_ROOT = tempfile.mkdtemp(prefix="mjdash-static-")

# A file, not :memory:, so the browser tests' live server threads each get their own
# connection (a shared in-memory connection breaks under concurrent requests).
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(os.environ["MJDASH_DATA_DIR"], "test.sqlite3")
    }
