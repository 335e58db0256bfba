"""The only code that speaks HTTP to a Midjourney-proxy gateway.

Every call goes through one `Client`; every failure comes out as one `UpstreamError` with a
short human message and a `permanent` flag (retrying will not help). Upstream JSON is parsed
here, at the boundary, into typed objects; nothing past this module sees a raw response.
See ../shared/upstream-api.md for the shapes and quirks handled below (E1-E28).
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import stamina
from django.conf import settings

from .netguard import GuardedTransport, blocked_cause

USER_AGENT = "mjdash/0.1 (+https://github.com/mjdash)"
# A list of 100 tasks is ~200 KB; anything past this is not an answer we want in memory.
MAX_JSON_BYTES = 4 * 1024 * 1024
MAX_JSON_DEPTH = 20  # deeper parts of a gateway's JSON are dropped at the boundary
MAX_RETRY_AFTER = 5.0  # seconds; a longer Retry-After is left to the next refresh interval
# How far along a status is, for merging duplicate rows (E15): keep the most advanced one.
STATUS_RANK = {"": 0, "NOT_START": 1, "SUBMITTED": 2, "MODAL": 3, "IN_PROGRESS": 3}
FINAL_RANK = 5
PERCENT = re.compile(r"([0-9]{1,3}(?:\.[0-9]{1,3})?)\s*%")
RAND_PARAM = re.compile(r"[?&]rand=\d+$")
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


class SeedRefused(UpstreamError):
    """new-api's code 4 ("关联任务状态错误", the task's state is wrong for a seed), in an HTTP
    200. Whether that means "not finished yet" is for the caller to say, from the task's own
    state: a finished task can be refused too."""

    def __init__(self, description: str) -> None:
        said = f" ({description})" if description else ""
        super().__init__(f"The gateway refused the seed for this task{said}.", permanent=True)


@dataclass(frozen=True)
class Button:
    custom_id: str
    emoji: str
    label: str

    def as_dict(self) -> dict[str, str]:
        return {"customId": self.custom_id, "emoji": self.emoji, "label": self.label}


@dataclass(frozen=True)
class UpstreamTask:
    id: str
    status: str = ""
    progress: str = ""
    action: str = ""
    prompt: str = ""
    prompt_en: str = ""
    description: str = ""
    state: str = ""
    fail_reason: str = ""
    image_url: str = ""
    image_urls: tuple[str, ...] = ()
    video_url: str = ""
    buttons: tuple[Button, ...] = ()
    properties: dict[str, Any] = field(default_factory=dict)
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> UpstreamTask:
        """Accept every known shape: Go zero values or nulls, absent keys, enum strings,
        imageUrls as strings or {url} objects. Reject only what cannot be a task."""
        if not isinstance(data, dict) or not _text(data.get("id")):
            raise UpstreamError("The gateway sent a task without an id.")
        properties = data.get("properties")
        return cls(
            id=_text(data.get("id")),
            status=_text(data.get("status")).upper()[:32],
            progress=_text(data.get("progress"))[:32],
            action=_text(data.get("action")).upper()[:32],
            prompt=_text(data.get("prompt")),
            prompt_en=_text(data.get("promptEn")),
            description=_text(data.get("description")),
            state=_text(data.get("state")),
            fail_reason=_text(data.get("failReason")),
            image_url=_without_rand(_url(data.get("imageUrl"))),
            image_urls=_urls(data.get("imageUrls")),
            video_url=_url(data.get("videoUrl")),
            buttons=_buttons(data.get("buttons")),
            properties=properties if isinstance(properties, dict) else {},
            submitted_at=_millis(data.get("submitTime")),
            started_at=_millis(data.get("startTime")),
            finished_at=_millis(data.get("finishTime")),
            raw=data,
        )

    @property
    def rank(self) -> tuple[int, float]:
        match = PERCENT.search(self.progress)
        percent = float(match.group(1)) if match else 0.0
        return STATUS_RANK.get(self.status, FINAL_RANK), percent


def _text(value: Any) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value)


def _url(value: Any) -> str:
    text = _text(value).strip()
    fits = len(text) <= 1000  # the column's size: a longer "URL" is noise, not a link
    return text if fits and text.startswith(("http://", "https://")) else ""


def _without_rand(url: str) -> str:
    """new-api appends ?rand=<nanos> to unfinished images on every fetch; it means nothing."""
    return RAND_PARAM.sub("", url)


def _urls(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    found = []
    for item in value:
        url = _url(item.get("url") if isinstance(item, dict) else item)
        if url:
            found.append(url)
    return tuple(found)


def _buttons(value: Any) -> tuple[Button, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(
        Button(_text(b.get("customId")), _text(b.get("emoji")), _text(b.get("label")))
        for b in value
        if isinstance(b, dict)
    )


def _millis(value: Any) -> datetime | None:
    try:
        millis = int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return None
    if millis <= 0:
        return None
    try:
        return datetime.fromtimestamp(millis / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def merge_duplicates(tasks: list[UpstreamTask]) -> list[UpstreamTask]:
    """One task per id, the most advanced state winning (new-api can list an id twice)."""
    best: dict[str, UpstreamTask] = {}
    for task in tasks:
        if task.id not in best or task.rank > best[task.id].rank:
            best[task.id] = task
    return list(best.values())


# What a file is, from its first bytes: the gateway's Content-Type is never trusted, so SVG
# and HTML labelled as images are refused, whatever the header says.
MAGIC = [
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),  # after RIFF....
    (b"ftyp", 4, "video/mp4"),
    (b"\x1a\x45\xdf\xa3", 0, "video/webm"),
]
SNIFF_BYTES = 16
OUT_CHUNK = 64 * 1024


def sniff(head: bytes) -> str:
    """The media type that the bytes themselves show, or "" when they are no picture or
    video mjdash serves."""
    for magic, offset, kind in MAGIC:
        if head[offset : offset + len(magic)] == magic:
            if kind == "image/webp" and not head.startswith(b"RIFF"):
                continue
            return kind
    return ""


class ImageStream:
    """An open upstream image: its type (from its magic bytes) and checked length, and its
    bytes as a sync iterator held to one overall deadline and a size cap. A stream that runs
    over either, or ends short of the length it promised, raises mid-way, so the response
    is aborted and the client sees a failure, never a truncated "success"."""

    def __init__(self, response: httpx.Response, deadline: float, max_bytes: int):
        self._response = response
        self._deadline = deadline
        self._max_bytes = max_bytes
        self._reads = response.iter_bytes()  # one item per network read: checked each time
        self.content_length = _declared_length(response, max_bytes)
        self._head = self._read_head()
        self.content_type = sniff(self._head)
        if not self.content_type:
            self.close()
            declared = response.headers.get("content-type", "").split(";")[0].strip()
            raise UpstreamError(
                f"The gateway sent {declared or 'something'} that is not a picture or a video.",
                status=200,
            )

    def _read_head(self) -> bytes:
        head = b""
        try:
            while len(head) < SNIFF_BYTES:
                head += self._next_read()
        except StopIteration:
            pass
        return head

    def _next_read(self) -> bytes:
        try:
            chunk = next(self._reads)
        except httpx.HTTPError as exc:
            self.close()
            raise _transport_error(exc) from exc
        if time.monotonic() > self._deadline:
            self.close()
            raise UpstreamError("The image took too long to arrive.")
        return chunk

    def _pieces(self) -> Iterator[bytes]:
        yield self._head
        while True:
            try:
                yield self._next_read()
            except StopIteration:
                return

    def chunks(self) -> Iterator[bytes]:
        total, buffer = 0, b""
        try:
            for piece in self._pieces():
                total += len(piece)
                if total > self._max_bytes:
                    raise UpstreamError("The image is larger than this site allows.")
                buffer += piece
                if len(buffer) >= OUT_CHUNK:
                    yield buffer
                    buffer = b""
            if self.content_length is not None and total != self.content_length:
                raise UpstreamError("The image arrived cut short.")
            if buffer:
                yield buffer
        finally:
            self.close()

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def close(self) -> None:
        self._response.close()


def _declared_length(response: httpx.Response, max_bytes: int) -> int | None:
    """The Content-Length, checked: over the cap is refused before the first byte."""
    value = response.headers.get("content-length", "")
    if not value.isascii() or not value.isdigit():
        return None
    if int(value) > max_bytes:
        response.close()
        raise UpstreamError("The image is larger than this site allows.", permanent=True)
    if response.headers.get("content-encoding", "identity") != "identity":
        return None  # the length of the encoded bytes, not of what we pass on
    return int(value)


class Client:
    """Speaks to one gateway with one token. Cheap to make; close() when done. Every
    connection it opens passes the address guard (netguard): only public addresses, unless
    `allow_private`."""

    def __init__(
        self,
        base_url: str,
        token: str,
        auth_style: str = "bearer",
        *,
        timeout: float | None = None,
        retries: int | None = None,
        allow_private: bool = False,
        transport: httpx.BaseTransport | None = None,
    ):
        self.timeout = float(timeout or settings.MJDASH_UPSTREAM_TIMEOUT)
        self.retries = settings.MJDASH_UPSTREAM_RETRIES if retries is None else retries
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if token:
            if auth_style == "mj-api-secret":
                headers["mj-api-secret"] = token
            elif auth_style == "raw":
                headers["Authorization"] = token
            else:
                headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 5.0)),
            follow_redirects=False,
            transport=transport or GuardedTransport(allow_private=allow_private),
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- the verbs -------------------------------------------------------------------------

    def fetch(self, task_id: str) -> UpstreamTask | None:
        """One task, or None when the gateway does not know it (400 task_no_found, or the
        empty 200 / 204 that novicezk and trueai send)."""
        try:
            data = self._call("GET", f"/mj/task/{_path(task_id)}/fetch")
        except TaskNotFound:
            return None
        return None if data is None else UpstreamTask.from_json(data)

    def list_by_condition(self, ids: list[str]) -> list[UpstreamTask]:
        """The tasks among `ids` that the gateway knows, matched by id, never by position."""
        if not ids:
            return []
        data = self._call("POST", "/mj/task/list-by-condition", json={"ids": list(ids)})
        if data is None:
            return []
        if not isinstance(data, list):
            raise UpstreamError("The gateway answered the task list with something else.")
        wanted = set(ids)
        tasks = [
            UpstreamTask.from_json(item)
            for item in data
            if isinstance(item, dict) and _text(item.get("id"))
        ]
        return merge_duplicates([t for t in tasks if t.id in wanted])

    def image_seed(self, task_id: str) -> str:
        """The seed, or UpstreamError. new-api wraps upstream failures in HTTP 200, so the
        `code` field decides, never the status alone (E22)."""
        try:
            data = self._call("GET", f"/mj/task/{_path(task_id)}/image-seed")
        except UpstreamError as exc:
            if exc.status != 404:
                raise
            raise UpstreamError(
                "This gateway has no seed for this task (HTTP 404). Some gateways, such as "
                "novicezk's open-source edition, do not offer seeds.",
                permanent=True,
                status=404,
            ) from exc
        if not isinstance(data, dict):
            raise UpstreamError("The gateway sent an unreadable seed answer.")
        seed = _text(data.get("result")).strip()
        if data.get("code") == 1 and seed:
            return seed
        description = _text(data.get("description")).strip()
        if data.get("code") == 4 or "状态" in description:
            raise SeedRefused(description)
        raise UpstreamError(
            f"The gateway could not get the seed{': ' + description if description else '.'}",
            permanent=data.get("code") in (3, 9),
        )

    def ping(self) -> None:
        """The cheapest honest call: an empty list-by-condition. Raises UpstreamError. Every
        failure to get an HTTP answer reads the same ("could not connect"), refused, reset or
        silent alike, so the button that calls this cannot be used to map open ports."""
        try:
            data = self._call("POST", "/mj/task/list-by-condition", json={"ids": []})
        except UpstreamError as exc:
            if exc.status is not None or exc.permanent:
                raise
            raise UpstreamError("Could not connect to the gateway.") from exc
        if data is not None and not isinstance(data, list):
            raise UpstreamError(
                "The address answered, but not like a Midjourney-proxy.", permanent=True
            )

    def open_image(
        self, task_id: str, max_bytes: int | None = None, fallback_url: str = ""
    ) -> ImageStream:
        """Open the gateway's own /mj/image/<id> for streaming. Gateways without that proxy
        (novicezk, trueai) say where the picture is in imageUrl: that is followed only when
        it is on this same gateway. Nothing else is ever fetched. The stream closes its
        response once read to the end, or when closed."""
        limit = max_bytes or settings.MJDASH_IMAGE_MAX_BYTES
        try:
            return self._open_stream(f"/mj/image/{_path(task_id)}", limit)
        except UpstreamError as exc:
            fallback = self._same_gateway_path(fallback_url)
            if not fallback or exc.status not in (200, 404):
                raise
            return self._open_stream(fallback, limit)

    def _open_stream(self, path: str, limit: int) -> ImageStream:
        deadline = time.monotonic() + settings.MJDASH_IMAGE_TIMEOUT  # for every byte
        request = self._http.build_request("GET", path)
        request.headers["Accept"] = "image/*,video/*"
        try:
            response = self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from exc
        if response.status_code != 200:
            try:
                body = _read_capped(response, deadline, 64 * 1024)
            finally:
                response.close()
            raise _image_error(response.status_code, body)
        return ImageStream(response, deadline, limit)

    def _same_gateway_path(self, url: str) -> str:
        """The path of `url` when it points at this gateway; "" for anywhere else. A
        localhost host counts as this gateway (a new-api without ServerAddress set, E18)."""
        try:
            target = httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            return ""
        base = self._http.base_url
        same = (target.scheme, target.host, target.port) == (base.scheme, base.host, base.port)
        if not (
            same or target.host in ("localhost", "127.0.0.1") and target.scheme in ("http", "https")
        ):
            return ""
        return target.raw_path.decode("ascii", "replace")

    # --- plumbing --------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, json: Any = None) -> Any:
        """One call with bounded, jittered retries for transient failures (a 429's
        Retry-After is honoured when it is short); permanent failures are never retried."""
        for attempt in stamina.retry_context(
            on=_retry_backoff,
            attempts=1 + self.retries,
            timeout=self.timeout,  # retries share the one overall budget
            wait_initial=0.2,
            wait_max=2.0,
            wait_jitter=0.3,
        ):
            with attempt:
                return self._call_once(method, path, json=json)
        raise AssertionError("unreachable: stamina re-raises the last failure")

    def _call_once(self, method: str, path: str, *, json: Any = None) -> Any:
        """Send, read the body within an overall deadline, and turn every failure into an
        UpstreamError. Returns parsed JSON, or None for an empty answer."""
        deadline = time.monotonic() + self.timeout
        try:
            with self._http.stream(method, path, json=json) as response:
                body = _read_capped(response, deadline, MAX_JSON_BYTES)
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from exc
        status = response.status_code
        if status == 204 or (status == 200 and not body.strip()):
            return None
        if status != 200:
            raise _status_error(status, body, response.headers)
        return _parse_json(body, response.headers.get("content-type", ""))


def _retry_backoff(exc: Exception) -> bool | float:
    """stamina's hook: retry transient UpstreamErrors; wait what a 429 asked for."""
    if not isinstance(exc, UpstreamError) or exc.permanent:
        return False
    if exc.retry_after is not None:
        return exc.retry_after if exc.retry_after <= MAX_RETRY_AFTER else False
    return True


def _path(task_id: str) -> str:
    """Task ids go into URL paths; refuse anything that could change the path."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", task_id):
        raise UpstreamError("That is not a valid task ID.", permanent=True)
    return task_id


def _read_capped(response: httpx.Response, deadline: float, limit: int) -> bytes:
    """httpx times out per read, so a server dripping a byte a second never trips it; hold
    the whole answer to one deadline here instead."""
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise UpstreamError("The gateway's answer was far too large.", permanent=True)
    parts, total = [], 0
    try:
        for chunk in response.iter_bytes():
            parts.append(chunk)
            total += len(chunk)
            if total > limit:
                raise UpstreamError("The gateway's answer was far too large.", permanent=True)
            if time.monotonic() > deadline:
                raise UpstreamError("The gateway is answering too slowly.")
    except httpx.HTTPError as exc:
        raise _transport_error(exc) from exc
    return b"".join(parts)


def _parse_json(body: bytes, content_type: str) -> Any:
    try:
        return clean(json.loads(body))
    except RecursionError:
        raise UpstreamError(
            "The gateway sent an unreadable answer (nested too deeply).", permanent=True
        ) from None
    except ValueError:
        if "html" in content_type or body.lstrip()[:1] == b"<":
            raise UpstreamError(
                "The upstream answered with a web page, not the Midjourney API. "
                "Check the upstream URL.",
                permanent=True,
            ) from None
        raise UpstreamError("The gateway sent an unreadable answer.") from None


def clean(value: Any, depth: int = 0) -> Any:
    """Gateway JSON made safe to store: NUL characters and lone surrogates removed from every
    string and key (PostgreSQL refuses them), infinities dropped, and anything nested deeper than
    MAX_JSON_DEPTH dropped, so one odd task can neither break a save nor a page."""
    if isinstance(value, str):  # lone surrogates cannot be stored or rendered either
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return None  # 1e999 parses as inf, which no JSON column will store
    if depth >= MAX_JSON_DEPTH and isinstance(value, (dict, list)):
        return None
    if isinstance(value, dict):
        return {clean(k): clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v, depth + 1) for v in value]
    return value


def _envelope_message(body: bytes) -> tuple[str, Any]:
    """The text and code inside new-api's error envelopes: E-auth, E-mj or E-img."""
    try:
        data = clean(json.loads(body))
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


_shared: dict[tuple, Client] = {}
_shared_lock = threading.Lock()
MAX_SHARED = 64


def same_url(a: str, b: str) -> bool:
    """Two gateway URLs name the very same place: scheme, credentials, host, port (the
    default one filled in) and path. A different port is a different server."""
    try:
        x, y = httpx.URL(a.strip().rstrip("/")), httpx.URL(b.strip().rstrip("/"))
    except (httpx.InvalidURL, TypeError):
        return False
    ports = {"http": 80, "https": 443}
    return (x.scheme, x.userinfo, x.host, x.port or ports.get(x.scheme), x.path) == (
        y.scheme,
        y.userinfo,
        y.host,
        y.port or ports.get(y.scheme),
        y.path,
    )


def is_site_gateway(base_url: str) -> bool:
    return same_url(base_url, settings.MJDASH_UPSTREAM_URL)


def client_for(connection: Any) -> Client:
    """The process's client for a stored UpstreamConnection. One per gateway + token, kept
    open, so polls reuse its kept-alive connections instead of dialling (and building a TLS
    context) every time. httpx clients are thread-safe.

    Here, where every client is built, the site's token is tied to the site's own URL:
    whatever a form, the admin or the database says, no other URL ever receives it. The
    site's own gateway may sit on a private network; a user's may not, unless allowed."""
    site = is_site_gateway(connection.base_url)
    site_token = connection.token and connection.token == settings.MJDASH_UPSTREAM_TOKEN
    if site_token and not (site and connection.shared):  # shared: its tasks have owners
        raise UpstreamError(
            "mjdash sends the site's token only to the site's own gateway. Enter your own "
            "token for this gateway in Settings.",
            permanent=True,
        )
    allow_private = site or settings.MJDASH_ALLOW_PRIVATE_UPSTREAMS
    key = (
        connection.base_url,
        connection.token,
        connection.auth_style,
        allow_private,
        settings.MJDASH_UPSTREAM_TIMEOUT,
        settings.MJDASH_UPSTREAM_RETRIES,
    )
    with _shared_lock:
        client = _shared.get(key)
        if client is None:
            if len(_shared) >= MAX_SHARED:  # settings pages can mint many; start over,
                _shared.clear()  # without closing clients another request may be using
            client = Client(
                connection.base_url,
                connection.token,
                connection.auth_style,
                allow_private=allow_private,
            )
            _shared[key] = client
        return client
