from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def site(request: HttpRequest) -> dict:
    return {
        "allow_signup": settings.MJDASH_ALLOW_SIGNUP,
        "poll_seconds": settings.MJDASH_POLL_SECONDS,  # every polling region's rhythm
    }
