"""The one exception a gateway call raises, and how each failure maps onto it.

Every failure becomes `UpstreamError(message, permanent)`: a message fit to show a person,
and whether the same call will fail again until someone changes something. The codes and
envelopes it reads are listed in docs/gateway-quirks.md.

A message may be stored (a row's last error), so it is made in English from a `Stored`
template and translated when shown (tracker/stored_text.py); `%(said)s` holds the gateway's
own words, shown as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from ..stored_text import Stored
from .guard import blocked_cause
from .values import _text, loads

REQUEST_ID = re.compile(r"\s*\(request id: [^)]*\)\s*$")


@dataclass(frozen=True)
class Saying:
    """A message that quotes a value when there is one, and reads without it when there is
    none. The value is the gateway's own words (`said`) unless `name` says otherwise: a media
    type, an encoding or a host is shown as it is, but not quoted as the gateway's."""

    given: Stored
    plain: Stored
    name: str = "said"

    def english(self, value: str = "", **values) -> str:
        if not value:
            return self.plain.english(**values)
        return self.given.english(**{self.name: value}, **values)


# What the gateway's answers mean, in English (stored as is; pages translate them).
NOT_FOUND = Stored.gettext("The gateway does not know this task ID.")
SENT_ELSEWHERE = Stored.gettext("The gateway sent the image elsewhere.")
SEED_REFUSED = Saying(
    Stored.gettext("The gateway refused the seed for this task (%(said)s)."),
    Stored.gettext("The gateway refused the seed for this task."),
)
TOKEN_REJECTED = Saying(
    Stored.gettext("The gateway rejected the API token (%(said)s)."),
    Stored.gettext("The gateway rejected the API token."),
)
ACCESS_REFUSED = Saying(
    Stored.gettext("The gateway refused access (%(said)s)."),
    Stored.gettext("The gateway refused access."),
)
NO_API = Stored.gettext("This address has no Midjourney-proxy API (404). Check the upstream URL.")
RATE_LIMITED = Stored.gettext("The gateway is rate limiting us; trying again shortly.")
TROUBLE = Stored.gettext("The gateway is having trouble (HTTP %(status)s).")
NO_UPSTREAM = Saying(
    Stored.gettext("The gateway could not reach its own upstream (%(said)s)."),
    Stored.gettext("The gateway could not reach its own upstream."),
)
REDIRECTED = Stored.gettext("The gateway redirected us (HTTP %(status)s); check the upstream URL.")
SAID_NO = Saying(
    Stored.gettext("The gateway said no (HTTP %(status)s) (%(said)s)."),
    Stored.gettext("The gateway said no (HTTP %(status)s)."),
)
UNKNOWN_TASK = Stored.gettext("The gateway does not know this task.")
NO_IMAGE_YET = Stored.gettext("The gateway has no image for this task yet.")
FETCH_REFUSED = Stored.gettext("The gateway refused to fetch this image (%(said)s).")
EXPIRED = Stored.gettext("The image is no longer available upstream (the link expired).")
NOT_PUBLIC = Stored.gettext(
    "The gateway's address is not a public address; this site only connects to public gateways."
)
UNREACHABLE = Stored.gettext("The gateway is unreachable (could not connect).")
TOO_SLOW = Stored.gettext("The gateway did not answer in time.")
DROPPED = Stored.gettext("The gateway dropped the connection mid-answer.")
RESET = Stored.gettext("The gateway reset the connection.")
BAD_URL = Stored.gettext("The upstream URL is not a valid http(s) address.")
NOT_REACHED = Stored.gettext("The gateway could not be reached.")
# The client's own checks of what came back (client.py, stream.py, files.py, task.py).
NOT_A_LIST = Stored.gettext("The gateway answered the task list with something else.")
NO_SEEDS = Stored.gettext(
    "This gateway has no seed for this task (HTTP 404). Some gateways, such as novicezk's "
    "open-source edition, do not offer seeds."
)
UNREADABLE_SEED = Stored.gettext("The gateway sent an unreadable seed answer.")
NO_SEED = Saying(
    Stored.gettext("The gateway could not get the seed: %(said)s"),
    Stored.gettext("The gateway could not get the seed."),
)
NO_CONNECTION = Stored.gettext("Could not connect to the gateway.")
NOT_A_PROXY = Stored.gettext("The address answered, but not like a Midjourney-proxy.")
BAD_TASK_ID = Stored.gettext("That is not a valid task ID.")
TOO_LARGE = Stored.gettext("The gateway's answer was far too large.")
SLOW_ANSWER = Stored.gettext("The gateway is answering too slowly.")
ENCODING = Stored.gettext(
    "The gateway sent its answer in an encoding mjdash does not read (%(encoding)s)."
)
TOO_DEEP = Stored.gettext("The gateway sent an unreadable answer (nested too deeply).")
WEB_PAGE = Stored.gettext(
    "The upstream answered with a web page, not the Midjourney API. Check the upstream URL."
)
UNREADABLE = Stored.gettext("The gateway sent an unreadable answer.")
NO_TASK_ID = Stored.gettext("The gateway sent a task without an id.")
NOT_MEDIA = Saying(
    Stored.gettext("The gateway sent %(kind)s that is not a picture or a video."),
    Stored.gettext("The gateway sent something that is not a picture or a video."),
    "kind",
)
IMAGE_SLOW = Stored.gettext("The image took too long to arrive.")
IMAGE_TOO_LARGE = Stored.gettext("The image is larger than this site allows.")
IMAGE_CUT_SHORT = Stored.gettext("The image arrived cut short.")
IMAGE_COMPRESSED = Stored.gettext(
    "The image came compressed (Content-Encoding), which mjdash does not accept."
)
HOST_NOT_ALLOWED = Saying(
    Stored.gettext(
        "The image is on %(host)s, which is not an allowed image host (MJDASH_IMAGE_HOSTS)."
    ),
    Stored.gettext(
        "The image is on an unknown host, which is not an allowed image host (MJDASH_IMAGE_HOSTS)."
    ),
    "host",
)
TOO_MANY_REDIRECTS = Stored.gettext("The image host redirected too many times.")


class UpstreamError(Exception):
    """A call to the gateway failed. `message` is fit to show a person; `permanent` means the
    same call will fail again until someone changes something (token, URL, task)."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.status = status
        self.retry_after = retry_after


class TaskNotFound(UpstreamError):
    """The gateway does not know this id (or it belongs to another gateway user)."""

    def __init__(self) -> None:
        super().__init__(NOT_FOUND.english(), permanent=True)


class Redirected(UpstreamError):
    """The gateway answered a file request with a redirect to `location`."""

    def __init__(self, location: str) -> None:
        super().__init__(SENT_ELSEWHERE.english(), permanent=True, status=302)
        self.location = location


class SeedRefused(UpstreamError):
    """new-api's code 4 ("关联任务状态错误", the task's state is wrong for a seed), in an HTTP
    200. Whether that means "not finished yet" is for the caller to say, from the task's own
    state: a finished task can be refused too."""

    def __init__(self, description: str) -> None:
        super().__init__(SEED_REFUSED.english(description), permanent=True)


def _envelope_message(body: bytes) -> tuple[str, Any]:
    """The text and code inside new-api's error envelopes: E-auth, E-mj or E-img."""
    try:
        data = loads(body)
    except RecursionError:
        return "", None
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:200], None
    if not isinstance(data, dict):
        return "", None
    error = data.get("error")
    if isinstance(error, dict):
        return REQUEST_ID.sub("", _text(error.get("message"))).strip(), error.get("code")
    if isinstance(error, str):
        return error.strip(), None
    return _text(data.get("description")).strip(), data.get("code")


def _status_error(status: int, body: bytes, headers: httpx.Headers) -> UpstreamError:
    message, code = _envelope_message(body)
    if status == 400 and message.startswith("task_no_found"):
        return TaskNotFound()
    if status == 401:
        return UpstreamError(TOKEN_REJECTED.english(message), permanent=True, status=status)
    if status == 403:
        return UpstreamError(ACCESS_REFUSED.english(message), permanent=True, status=status)
    if status == 404:
        return UpstreamError(NO_API.english(), permanent=True, status=status)
    if status == 429:
        return UpstreamError(
            RATE_LIMITED.english(),
            status=status,
            retry_after=_retry_after(headers.get("retry-after", "")),
        )
    if status >= 500:
        return UpstreamError(TROUBLE.english(status=status), status=status)
    if status == 400 and code == 5:
        return UpstreamError(NO_UPSTREAM.english(message), status=status)
    if 300 <= status < 400:
        return UpstreamError(REDIRECTED.english(status=status), permanent=True, status=status)
    return UpstreamError(SAID_NO.english(message, status=status), permanent=True, status=status)


def _retry_after(value: str) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _image_error(status: int, body: bytes) -> UpstreamError:
    message, _ = _envelope_message(body)
    if status == 400 and "not_found" in message:
        return UpstreamError(UNKNOWN_TASK.english(), permanent=True, status=400)
    if status == 403 and "unsupported protocol" in message:
        return UpstreamError(NO_IMAGE_YET.english(), status=403)
    if status == 403 and message.startswith("request blocked"):
        return UpstreamError(FETCH_REFUSED.english(said=message), permanent=True, status=403)
    if status in (403, 404, 410):
        return UpstreamError(EXPIRED.english(), permanent=True, status=status)
    return _status_error(status, body, httpx.Headers())


def _transport_error(exc: httpx.HTTPError) -> UpstreamError:
    """A refused address is permanent (asking again reaches the same address)."""
    return UpstreamError(_transport_message(exc), permanent=blocked_cause(exc) is not None)


def _transport_message(exc: httpx.HTTPError) -> str:
    """Plain words for a transport failure. Connection failures all read alike, refused,
    timed out or unresolvable, so the Test connection button cannot map open ports."""
    blocked = blocked_cause(exc)
    if blocked is not None:
        return NOT_PUBLIC.english()
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return UNREACHABLE.english()
    if isinstance(exc, httpx.TimeoutException):
        return TOO_SLOW.english()
    if isinstance(exc, httpx.RemoteProtocolError):
        return DROPPED.english()
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return RESET.english()
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return BAD_URL.english()
    return NOT_REACHED.english()
