"""The circuit breaker per gateway, kept in the database so every process agrees.

After MJDASH_BREAKER_FAILURES transient failures in a row, no call is made to that gateway
for MJDASH_BREAKER_COOLOFF_SECONDS. After the cool-off the next caller makes one probe: success
closes the circuit, failure opens it for another cool-off. Permanent errors (a wrong token, a
wrong URL) do not trip it: they are reported as they are.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import formats, timezone

from .models import Gateway
from .stored_text import Stored

# Since when, what it last said, when the next try is: stored as rows' errors, in English.
UNREACHABLE = {
    (False, False): Stored.gettext("The gateway has been unreachable since %(since)s."),
    (True, False): Stored.gettext(
        "The gateway has been unreachable since %(since)s (last error: %(error)s)."
    ),
    (False, True): Stored.gettext(
        "The gateway has been unreachable since %(since)s; mjdash will try again at %(retry)s."
    ),
    (True, True): Stored.gettext(
        "The gateway has been unreachable since %(since)s (last error: %(error)s); mjdash "
        "will try again at %(retry)s."
    ),
}


def refusal(gateway: Gateway) -> str:
    """While the circuit is open, why no call is made (else ""): the caller raises it."""
    return unreachable_message(gateway) if gateway.circuit_open else ""


def unreachable_message(gateway: Gateway) -> str:
    """Since when the gateway has failed, what it last said, and when the next try is."""
    since = gateway.unreachable_since or gateway.last_error_at or timezone.now()
    error = gateway.last_error
    error = "" if error.startswith("The gateway has been") else error.rstrip(".")
    retry = _clock(gateway.circuit_open_until) if gateway.circuit_open else ""
    message = UNREACHABLE[bool(error), bool(retry)]
    return message.english(since=_clock(since), error=error, retry=retry)


def record_success(gateway: Gateway) -> None:
    Gateway.objects.filter(pk=gateway.pk).update(
        consecutive_failures=0,
        circuit_open_until=None,
        unreachable_since=None,
        last_refreshed_at=timezone.now(),
        last_error="",
        last_error_at=None,
    )


def record_failure(gateway: Gateway, message: str, *, permanent: bool) -> None:
    now = timezone.now()
    rows = Gateway.objects.filter(pk=gateway.pk)
    if permanent:
        rows.update(last_error=message[:500], last_error_at=now, consecutive_failures=0)
        return
    rows.update(
        consecutive_failures=F("consecutive_failures") + 1,
        unreachable_since=Coalesce(F("unreachable_since"), now),
        last_error=message[:500],
        last_error_at=now,
    )
    cooloff = timedelta(seconds=settings.MJDASH_BREAKER_COOLOFF_SECONDS)
    rows.filter(consecutive_failures__gte=settings.MJDASH_BREAKER_FAILURES).update(
        circuit_open_until=now + cooloff
    )


def _clock(moment) -> str:
    return formats.time_format(timezone.localtime(moment), "H:i")
