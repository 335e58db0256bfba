"""The one exception a gateway call raises, and how each failure maps onto it.

Every failure becomes `UpstreamError(message, permanent)`: a message fit to show a person,
and whether the same call will fail again until someone changes something. The codes and
envelopes it reads are listed in docs/gateway-quirks.md.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from .guard import blocked_cause
from .values import _text, loads

REQUEST_ID = re.compile(r"\s*\(request id: [^)]*\)\s*$")


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
        super().__init__("The gateway does not know this task ID.", permanent=True)


class Redirected(UpstreamError):
    """The gateway answered a file request with a redirect to `location`."""

    def __init__(self, location: str) -> None:
        super().__init__("The gateway sent the image elsewhere.", permanent=True, status=302)
        self.location = location


class SeedRefused(UpstreamError):
    """new-api's code 4 ("关联任务状态错误", the task's state is wrong for a seed), in an HTTP
    200. Whether that means "not finished yet" is for the caller to say, from the task's own
    state: a finished task can be refused too."""

    def __init__(self, description: str) -> None:
        said = f" ({description})" if description else ""
        super().__init__(f"The gateway refused the seed for this task{said}.", permanent=True)


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
    detail = f" ({message})" if message else ""
    if status == 400 and message.startswith("task_no_found"):
        return TaskNotFound()
    if status == 401:
        return UpstreamError(
            f"The gateway rejected the API token{detail}.", permanent=True, status=status
        )
    if status == 403:
        return UpstreamError(f"The gateway refused access{detail}.", permanent=True, status=status)
    if status == 404:
        return UpstreamError(
            "This address has no Midjourney-proxy API (404). Check the upstream URL.",
            permanent=True,
            status=status,
        )
    if status == 429:
        return UpstreamError(
            "The gateway is rate limiting us; trying again shortly.",
            status=status,
            retry_after=_retry_after(headers.get("retry-after", "")),
        )
    if status >= 500:
        return UpstreamError(f"The gateway is having trouble (HTTP {status}).", status=status)
    if status == 400 and code == 5:
        return UpstreamError(
            f"The gateway could not reach its own upstream{detail}.", status=status
        )
    if 300 <= status < 400:
        return UpstreamError(
            f"The gateway redirected us (HTTP {status}); check the upstream URL.",
            permanent=True,
            status=status,
        )
    return UpstreamError(
        f"The gateway said no (HTTP {status}){detail}.", permanent=True, status=status
    )


def _retry_after(value: str) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _image_error(status: int, body: bytes) -> UpstreamError:
    message, _ = _envelope_message(body)
    if status == 400 and "not_found" in message:
        return UpstreamError("The gateway does not know this task.", permanent=True, status=400)
    if status == 403 and "unsupported protocol" in message:
        return UpstreamError("The gateway has no image for this task yet.", status=403)
    if status == 403 and message.startswith("request blocked"):
        return UpstreamError(
            f"The gateway refused to fetch this image ({message}).", permanent=True, status=403
        )
    if status in (403, 404, 410):
        return UpstreamError(
            "The image is no longer available upstream (the link expired).",
            permanent=True,
            status=status,
        )
    return _status_error(status, body, httpx.Headers())


def _transport_error(exc: httpx.HTTPError) -> UpstreamError:
    """A refused address is permanent (asking again reaches the same address)."""
    return UpstreamError(_transport_message(exc), permanent=blocked_cause(exc) is not None)


def _transport_message(exc: httpx.HTTPError) -> str:
    """Plain words for a transport failure. Connection failures all read alike, refused,
    timed out or unresolvable, so the Test connection button cannot map open ports."""
    blocked = blocked_cause(exc)
    if blocked is not None:
        return (
            "The gateway's address is not a public address; this site only connects to "
            "public gateways."
        )
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return "The gateway is unreachable (could not connect)."
    if isinstance(exc, httpx.TimeoutException):
        return "The gateway did not answer in time."
    if isinstance(exc, httpx.RemoteProtocolError):
        return "The gateway dropped the connection mid-answer."
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return "The gateway reset the connection."
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return "The upstream URL is not a valid http(s) address."
    return "The gateway could not be reached."
