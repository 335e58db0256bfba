"""A POST to a user's own webhook receiver, under the rules every outbound request keeps: the
guard checks the address after DNS resolution, at connect time; no redirect is followed; one
deadline covers connecting, sending and reading; and at most MAX_ANSWER bytes of the answer
are read (and then dropped: only the status counts).

Messages are stored (a channel's last error), so they are English `Stored` templates that the
settings page translates when it shows them.
"""

from __future__ import annotations

import time

import httpx

from ..stored_text import Stored
from .client import NO_COOKIES, USER_AGENT
from .errors import UpstreamError
from .files import origin_of
from .guard import GuardedTransport, blocked_cause, deadline

MAX_ANSWER = 64 * 1024
NOT_HTTP = Stored.gettext("The webhook URL is not a valid http(s) address.")
NOT_PUBLIC = Stored.gettext(
    "The webhook's address is not a public address; this site only sends to public addresses."
)
UNREACHABLE = Stored.gettext("The webhook receiver could not be reached.")
TOO_SLOW = Stored.gettext("The webhook receiver did not answer in time.")
DROPPED = Stored.gettext("The webhook receiver dropped the connection.")
REDIRECTED = Stored.gettext(
    "The webhook receiver redirected (HTTP %(status)s); mjdash follows no redirects, so enter "
    "the final address."
)
REFUSED = Stored.gettext("The webhook receiver refused the message (HTTP %(status)s).")
TROUBLE = Stored.gettext("The webhook receiver had trouble (HTTP %(status)s).")


class WebhookSender:
    """One process-wide client for webhook receivers. It carries no credentials and keeps no
    cookies; what it sends is only what the caller hands it."""

    def __init__(self, *, allow_private: bool, transport: httpx.BaseTransport | None = None):
        self._http = httpx.Client(
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
            cookies=NO_COOKIES,
            transport=transport or GuardedTransport(allow_private=allow_private),
        )

    def close(self) -> None:
        self._http.close()

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        """POST `body`; the receiver's status when it is a 2xx. Raises UpstreamError
        otherwise: permanent for an address that is refused, a redirect or a 4xx (sending the
        same again fails the same way), transient for the rest (a 5xx, 408, 429, time-outs,
        connection failures)."""
        if not origin_of(url):
            raise UpstreamError(NOT_HTTP.english(), permanent=True)
        until = time.monotonic() + timeout
        request = self._http.build_request(
            "POST", url, content=body, headers=headers, timeout=httpx.Timeout(timeout)
        )
        try:
            with deadline(until):
                response = self._http.send(request, stream=True)
                try:
                    _drain(response, until)
                finally:
                    response.close()
        except httpx.HTTPError as exc:
            raise _transport_error(exc, until) from exc
        return _checked(response.status_code)


def _drain(response: httpx.Response, until: float) -> None:
    """Read at most MAX_ANSWER bytes of the answer, by the deadline; drop the rest unread."""
    total = 0
    for chunk in response.iter_raw():
        total += len(chunk)
        if total >= MAX_ANSWER or time.monotonic() > until:
            return


def _checked(status: int) -> int:
    if 200 <= status < 300:
        return status
    if 300 <= status < 400:
        raise UpstreamError(REDIRECTED.english(status=status), permanent=True, status=status)
    if 400 <= status < 500 and status not in (408, 425, 429):
        raise UpstreamError(REFUSED.english(status=status), permanent=True, status=status)
    raise UpstreamError(TROUBLE.english(status=status), status=status)


def _transport_error(exc: httpx.HTTPError, until: float) -> UpstreamError:
    if blocked_cause(exc) is not None:
        return UpstreamError(NOT_PUBLIC.english(), permanent=True)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return UpstreamError(NOT_HTTP.english(), permanent=True)
    if isinstance(exc, httpx.TimeoutException) or time.monotonic() >= until:
        return UpstreamError(TOO_SLOW.english())
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return UpstreamError(DROPPED.english())
    return UpstreamError(UNREACHABLE.english())
