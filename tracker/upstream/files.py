"""Files on image hosts (Midjourney's and Discord's CDNs, where novicezk and trueai gateways
leave their pictures): fetched with no token at all, through the same address guard as the
gateway, and under the same rules as the gateway's own images: typed by their bytes, capped
by header and by count, on one deadline. A redirect is followed only to another allowed host.
"""

from __future__ import annotations

import time

import httpx
from django.conf import settings

from .client import FILE_HEADERS, NO_COOKIES, USER_AGENT, image_stream
from .errors import HOST_NOT_ALLOWED, TOO_MANY_REDIRECTS, UpstreamError, _transport_error
from .guard import GuardedTransport, deadline
from .stream import ImageStream

MAX_REDIRECTS = 3


def origin_of(url: str) -> str:
    """Where an http(s) URL points, as MJDASH_IMAGE_HOSTS names it: the lower-case host for
    the scheme's own port ("cdn.midjourney.com"), host:port for any other ("localhost:8765");
    "" for anything else. An allowed host is allowed on its standard ports only."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return ""
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return ""
    host = parsed.host.lower()
    return host if parsed.port is None else f"{host}:{parsed.port}"


def not_allowed(host: str) -> UpstreamError:
    return UpstreamError(HOST_NOT_ALLOWED.english(host), permanent=True)


class FileFetcher:
    """One process-wide client for image hosts. It carries no credentials, so nothing the
    gateway trusts us with can leak to a CDN or to wherever a CDN redirects."""

    def __init__(self, *, allow_private: bool, transport: httpx.BaseTransport | None = None):
        timeout = float(settings.MJDASH_GATEWAY_TIMEOUT)
        self._http = httpx.Client(
            headers={"User-Agent": USER_AGENT, **FILE_HEADERS},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=False,
            cookies=NO_COOKIES,
            transport=transport or GuardedTransport(allow_private=allow_private),
        )

    def close(self) -> None:
        self._http.close()

    def open(self, url: str, allowed_hosts: set[str], max_bytes: int) -> ImageStream:
        """Open `url` for streaming. Raises UpstreamError for a host that is not allowed
        (before any connection), a redirect that leaves them, or anything ImageStream
        refuses."""
        until = time.monotonic() + settings.MJDASH_IMAGE_TIMEOUT
        for _ in range(MAX_REDIRECTS + 1):
            origin = origin_of(url)
            if origin not in allowed_hosts:
                raise not_allowed(origin)
            try:
                with deadline(until):
                    response = self._http.send(self._http.build_request("GET", url), stream=True)
            except httpx.HTTPError as exc:
                raise _transport_error(exc) from exc
            if response.is_redirect:
                url = str(response.url.join(response.headers.get("location", "")))
                response.close()
                continue
            return image_stream(response, until, max_bytes)
        raise UpstreamError(TOO_MANY_REDIRECTS.english(), permanent=True)
