"""Pure protocol: the only code that speaks HTTP to a Midjourney-proxy gateway, with no
policy of its own (who may ask what is decided in tracker/gateway.py).

- `task`: the task shape and its parsing; `values`: gateway JSON made safe at the boundary;
- `errors`: the one `UpstreamError(message, permanent)` and how each failure maps onto it;
- `client`: the HTTP client and its verbs; `stream`: an image streamed by its bytes;
- `files`: files on image hosts (CDNs), fetched with no token;
- `guard`: the outbound-address guard every connection passes;
- `webhook`: a POST to a user's own webhook receiver, under the same guard;
- `submit`: what a submit's answer codes mean (Submitted, SubmitRefused, MaybeSubmitted).

The gateways' quirks that this code relies on are listed in docs/gateway-quirks.md (E1-E28).
"""

from __future__ import annotations

from .client import Client, path_on_gateway, same_url
from .errors import Redirected, SeedRefused, TaskNotFound, UpstreamError
from .files import FileFetcher, not_allowed, origin_of
from .guard import is_public, resolve
from .stream import ImageStream
from .submit import MaybeSubmitted, SubmitRefused, Submitted
from .task import Button, UpstreamTask
from .webhook import WebhookSender

__all__ = [
    "Button", "Client", "FileFetcher", "ImageStream", "MaybeSubmitted", "Redirected",
    "SeedRefused", "SubmitRefused", "Submitted",
    "TaskNotFound", "UpstreamError", "UpstreamTask", "WebhookSender", "origin_of", "is_public",
    "not_allowed", "path_on_gateway", "resolve", "same_url",
]  # fmt: skip
