"""The HTTP client for one gateway and token: the verbs of the Midjourney-proxy API."""

from __future__ import annotations

import http.cookiejar
import re
import time
import zlib
from typing import Any

import httpx
import stamina
from django.conf import settings

from . import errors
from .errors import (
    Redirected,
    SeedRefused,
    TaskNotFound,
    UpstreamError,
    _image_error,
    _status_error,
    _transport_error,
)
from .guard import GuardedTransport, blocked_cause, deadline
from .stream import ImageStream
from .submit import MaybeSubmitted, Submitted, read_answer
from .task import UpstreamTask, merge_duplicates
from .values import _text, loads

USER_AGENT = "mjdash/0.1 (+https://github.com/mjdash)"
# A list of 100 tasks is ~200 KB; anything past this is not an answer we want in memory.
MAX_JSON_BYTES = 4 * 1024 * 1024
SUBMIT_ROUTES = ("imagine", "action", "modal", "describe", "blend")
SPEED_MODES = ("fast", "relax", "turbo")  # new-api's /mj-<mode>/mj/... path prefixes
# Failures that happen before a request can reach the server: a submit is surely not sent.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol, httpx.InvalidURL)
MAX_RETRY_AFTER = 5.0  # seconds; a longer Retry-After is left to the next refresh interval
# Pictures and videos are asked for as they are: a compressed one is refused (ImageStream).
FILE_HEADERS = {"Accept": "image/*,video/*", "Accept-Encoding": "identity"}
# The process's clients serve many users: no cookie a server sets is ever kept or sent on.
NO_COOKIES = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


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
        self.timeout = float(timeout or settings.MJDASH_GATEWAY_TIMEOUT)
        self.retries = settings.MJDASH_GATEWAY_RETRIES if retries is None else retries
        headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",  # what _read_capped decodes, bounded
        }
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
            cookies=NO_COOKIES,
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
            raise UpstreamError(errors.NOT_A_LIST.english())
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
                errors.NO_SEEDS.english(),
                permanent=True,
                status=404,
            ) from exc
        if not isinstance(data, dict):
            raise UpstreamError(errors.UNREADABLE_SEED.english())
        seed = _text(data.get("result")).strip()
        if data.get("code") == 1 and seed:
            return seed
        description = _text(data.get("description")).strip()
        if data.get("code") == 4 or "状态" in description:
            raise SeedRefused(description)
        raise UpstreamError(
            errors.NO_SEED.english(description),
            permanent=data.get("code") in (3, 9),
        )

    def submit(self, route: str, body: dict, mode: str = "") -> Submitted:
        """POST /mj/submit/<route> once, in the gateway's speed `mode` where it has one
        (new-api's /mj-fast/, /mj-relax/, /mj-turbo/ prefixes). Never retried: a submit spends
        the user's quota. A failure before the request could reach the gateway is a plain
        UpstreamError; one after it may have is MaybeSubmitted; a "no" is SubmitRefused."""
        if route not in SUBMIT_ROUTES or mode not in ("", *SPEED_MODES):
            raise UpstreamError(errors.BAD_URL.english(), permanent=True)
        path = f"/mj-{mode}/mj/submit/{route}" if mode else f"/mj/submit/{route}"
        timeout = float(settings.MJDASH_SUBMIT_TIMEOUT)
        until = time.monotonic() + timeout
        try:
            with (
                deadline(until),
                self._http.stream(
                    "POST", path, json=body, timeout=httpx.Timeout(timeout, connect=5.0)
                ) as response,
            ):
                raw = _read_capped(response, until, MAX_JSON_BYTES)
        except httpx.HTTPError as exc:
            if isinstance(exc, NOT_SENT) or blocked_cause(exc) is not None:
                raise _transport_error(exc) from exc  # it never reached the gateway
            raise MaybeSubmitted(_transport_error(exc).message) from exc
        except UpstreamError as exc:  # the answer came too slowly or too large to read
            raise MaybeSubmitted(exc.message) from exc
        status = response.status_code
        try:
            data = loads(raw)
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict) and "code" in data and status in (200, 400):
            return read_answer(data)  # new-api may send a refusal as a 400 E-mj envelope
        if status == 200 or status >= 500:  # it may have been taken before things broke
            raise MaybeSubmitted(_status_error(status, raw, response.headers).message)
        raise _status_error(status, raw, response.headers)

    def ping(self) -> None:
        """The cheapest honest call: an empty list-by-condition. Raises UpstreamError. Every
        failure to get an HTTP answer reads the same ("could not connect"), refused, reset or
        silent alike, so the button that calls this cannot be used to map open ports."""
        try:
            data = self._call("POST", "/mj/task/list-by-condition", json={"ids": []})
        except UpstreamError as exc:
            if exc.status is not None or exc.permanent:
                raise
            raise UpstreamError(errors.NO_CONNECTION.english()) from exc
        if data is not None and not isinstance(data, list):
            raise UpstreamError(errors.NOT_A_PROXY.english(), permanent=True)

    def open_image(self, task_id: str, max_bytes: int | None = None) -> ImageStream:
        """Open the gateway's own /mj/image/<id> (new-api's image proxy) for streaming."""
        return self.open_path(f"/mj/image/{_path(task_id)}", max_bytes)

    def open_path(self, path: str, max_bytes: int | None = None) -> ImageStream:
        """Open a file on this gateway for streaming. The stream closes its response once
        read to the end, or when closed. A redirect is not followed with our token: it
        raises Redirected, and the caller decides whether its target may be asked."""
        limit = max_bytes or settings.MJDASH_IMAGE_MAX_BYTES
        until = time.monotonic() + settings.MJDASH_IMAGE_TIMEOUT  # for every byte
        request = self._http.build_request("GET", path, headers=FILE_HEADERS)
        try:
            with deadline(until):
                response = self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from exc
        if response.is_redirect:
            response.close()
            raise Redirected(str(response.url.join(response.headers.get("location", ""))))
        return image_stream(response, until, limit)

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
        until = time.monotonic() + self.timeout
        try:
            with deadline(until), self._http.stream(method, path, json=json) as response:
                body = _read_capped(response, until, MAX_JSON_BYTES)
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
        raise UpstreamError(errors.BAD_TASK_ID.english(), permanent=True)
    return task_id


def image_stream(response: httpx.Response, deadline: float, limit: int) -> ImageStream:
    """A 200 as a checked stream; anything else as the UpstreamError it means."""
    if response.status_code != 200:
        try:
            body = _read_capped(response, deadline, 64 * 1024)
        finally:
            response.close()
        raise _image_error(response.status_code, body)
    return ImageStream(response, deadline, limit)


def _read_capped(response: httpx.Response, until: float, limit: int) -> bytes:
    """The whole answer, held to one deadline (httpx times out per read, so a server dripping
    a byte a second never trips it) and to `limit` bytes after decoding: at most one gzip or
    deflate layer is undone here, a block at a time, so a tiny compressed answer can never
    grow past the cap in memory (a gzip bomb; httpx would inflate any stack of encodings)."""
    declared = response.headers.get("content-length", "")
    too_large = UpstreamError(errors.TOO_LARGE.english(), permanent=True)
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large
    decoder = _decoder(response.headers.get("content-encoding", ""))
    # Plain bytes: iter_bytes is the raw bytes then (and works on an answer already read).
    reads = response.iter_raw() if decoder else response.iter_bytes()
    parts, total = [], 0
    try:
        with deadline(until):
            for raw in reads:
                chunk = decoder.decompress(raw, limit + 1 - total) if decoder else raw
                total += len(chunk)
                if total > limit or (decoder and decoder.unconsumed_tail):
                    raise too_large
                parts.append(chunk)
                if time.monotonic() > until:
                    raise UpstreamError(errors.SLOW_ANSWER.english())
    except httpx.HTTPError as exc:
        if time.monotonic() >= until:
            raise UpstreamError(errors.SLOW_ANSWER.english()) from exc
        raise _transport_error(exc) from exc
    return b"".join(parts)


def _decoder(encoding: str):
    """A bounded decoder for one layer of gzip or deflate; None for plain bytes. Anything
    else (brotli, zstd, layers of encodings) is refused: mjdash asked for gzip at most."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise UpstreamError(errors.ENCODING.english(encoding=encoding[:40]), permanent=True)


def _parse_json(body: bytes, content_type: str) -> Any:
    try:
        return loads(body)
    except RecursionError:
        raise UpstreamError(errors.TOO_DEEP.english(), permanent=True) from None
    except ValueError:
        if "html" in content_type or body.lstrip()[:1] == b"<":
            raise UpstreamError(errors.WEB_PAGE.english(), permanent=True) from None
        raise UpstreamError(errors.UNREADABLE.english()) from None


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


def path_on_gateway(base_url: str, url: str) -> str:
    """The path of `url` when it points at the gateway at `base_url`; "" for anywhere else.
    A localhost /mj/ URL counts as the gateway (a new-api without ServerAddress set, E18)."""
    try:
        target, base = httpx.URL(url), httpx.URL(base_url)
    except (httpx.InvalidURL, TypeError):
        return ""
    path = target.raw_path.decode("ascii", "replace")
    if (target.scheme, target.host, target.port) == (base.scheme, base.host, base.port):
        return path
    e18 = target.host in ("localhost", "127.0.0.1") and path.startswith("/mj/")
    return path if e18 and target.scheme in ("http", "https") else ""
