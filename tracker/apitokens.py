"""Personal access tokens for the JSON API: made, checked, stamped, rate-limited, revoked.

Only a token's SHA-256 is stored. A token is 32 random bytes, so looking its digest up is as
safe as a constant-time comparison: knowing how long a lookup took tells nothing useful about
a secret nobody can guess."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from . import ratelimit
from .models import AccessToken

PREFIX = "mjd_"
SHOWN = len(PREFIX) + 8  # how much of a token the settings page shows to tell it apart
STAMP_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often
WINDOW = 60  # seconds: the rate limit's fixed window
MAX_ACTIVE = 10  # working tokens per user


class TooMany(Exception):
    """The user has MAX_ACTIVE working tokens: the rate is per token, so their number is
    capped too."""


def create(user, name: str) -> tuple[AccessToken, str]:
    """A new token for `user`: (its row, the token itself, which is never stored)."""
    if active(user).count() >= MAX_ACTIVE:
        raise TooMany
    token = PREFIX + secrets.token_urlsafe(32)
    name = name.strip()[: AccessToken._meta.get_field("name").max_length] or "API token"
    row = AccessToken.objects.create(
        user=user, name=name, digest=_digest(token), prefix=token[:SHOWN]
    )
    return row, token


def active(user):
    """The user's tokens that still work, newest first."""
    return AccessToken.objects.filter(user=user, revoked_at=None)


def revoke(user, token_id: str) -> AccessToken | None:
    """Revoke one of the user's own working tokens; None when there is no such token."""
    row = active(user).filter(pk=token_id).first() if token_id.isdecimal() else None
    if row is not None:
        row.revoked_at = timezone.now()
        row.save(update_fields=["revoked_at"])
    return row


def authenticate(request: HttpRequest) -> AccessToken | None:
    """The working token in the request's `Authorization: Bearer` header, with its user
    loaded; None for a missing, unknown or revoked one, or a deactivated account."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip().startswith(PREFIX):
        return None
    row = (
        AccessToken.objects.select_related("user")
        .filter(digest=_digest(token.strip()), revoked_at=None, user__is_active=True)
        .first()
    )
    if row is not None:
        _stamp(row)
    return row


def retry_after(row: AccessToken) -> int:
    """0 when this call is within the token's rate, else the seconds until the next window.
    A fixed one-minute window in the cache (shared by every process when it is Redis)."""
    calls, wait = ratelimit.hit(f"api:{row.pk}", WINDOW)
    return 0 if calls <= settings.MJDASH_API_RATE_PER_MINUTE else wait


def _stamp(row: AccessToken) -> None:
    """Note the use, in one conditional UPDATE, unless it was noted in the last minute."""
    now = timezone.now()
    recent = Q(last_used_at__gt=now - STAMP_EVERY)
    if AccessToken.objects.filter(pk=row.pk).exclude(recent).update(last_used_at=now):
        row.last_used_at = now


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
