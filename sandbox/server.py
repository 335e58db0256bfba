"""The sandbox gateway: a stdlib HTTP server that answers like new-api's /mj routes.

Faithful to the gateway quirks in docs/gateway-quirks.md: new-api's three error envelopes
with Go's sorted map keys and trailing-space descriptions, task objects in struct key order
with Go zero values, the unauthenticated chunked image proxy, and the SPA page for every path
it does not know.

The same server is also the CDN that Midjourney's and Discord's files sit on, reached under
another host name (`cdn_address`, by default `localhost` for the loopback address the gateway
listens on): /attachments/ holds the grids, their pictures and thumbnails, /video/ the clips.
Direct gateways (novicezk, trueai) and every imageUrls entry link there.

Routes under /_sandbox/ are ours, not new-api's: tests and the demo use them to create tasks,
read call counters and switch faults on. They are never counted or faulty, except the legacy
/_sandbox/video/<id>.mp4, which is a file like the CDN's.
"""

from __future__ import annotations

import base64
import io
import json
import re
import socket
import struct
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import shapes, videos
from .faults import Faults
from .pictures import ImageCache, bomb_png
from .tasks import SUBMIT_DESCRIPTIONS, SimTask, TaskStore, new_task_id

MODES = ("new-api", "novicezk", "trueai", "spa")

SPA_PAGE = (
    b'<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>New API</title>'
    b'</head><body><div id="root"></div></body></html>'
)
# Which customId makes which task (new-api's CoverPlusActionToNormalAction), first match wins.
BUTTON_ACTIONS = (
    ("::upsample::", "UPSCALE", False),
    ("::high_variation::", "HIGH_VARIATION", False),
    ("::low_variation::", "LOW_VARIATION", False),
    ("::variation::", "VARIATION", False),
    ("::reroll::", "REROLL", False),
    ("MJ::CustomZoom::", "CUSTOM_ZOOM", True),
    ("MJ::Inpaint::", "INPAINT", True),
    ("MJ::Outpaint::", "ZOOM", False),
    ("::pan_", "PAN", False),
)
BANNED_WORDS = ("forbidden-word",)  # a prompt with one is refused with code 24
SUBMIT_ACTIONS = {
    "imagine": "IMAGINE",
    "describe": "DESCRIBE",
    "blend": "BLEND",
    "video": "VIDEO",
    "shorten": "SHORTEN",
}
CHUNK = 64 * 1024
ASKED_KEPT = 100_000  # status calls remembered for /_sandbox/asked
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXPIRED_TEXT = "This content is no longer available."
# An SVG document that runs script wherever it is rendered as a page, sent as image/png.
HOSTILE_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" '
    b'onload="alert(document.domain)"><script>fetch("/steal?c="+document.cookie)</script>'
    b'<rect width="64" height="64" fill="red"/></svg>'
)


def go_json(value: Any, *, sort_keys: bool = False) -> bytes:
    """Encode like Go's encoding/json: compact, UTF-8, and <, >, & escaped inside strings."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    return text.encode()


@dataclass
class Sandbox:
    """Everything the handler needs: the users' tokens, the tasks, the clock and counters."""

    tokens: dict[str, str]  # token without "sk-" -> gateway user name
    step_seconds: float
    image_dir: Path
    server_address: str = ""
    cdn_address: str = ""  # where Midjourney's and Discord's CDN files are (this server)
    mode: str = "new-api"  # how every user's gateway behaves, unless `modes` says otherwise
    modes: dict[str, str] = field(default_factory=dict)  # gateway user -> mode
    store: TaskStore = field(default_factory=TaskStore)
    faults: Faults = field(default_factory=Faults)
    calls: Counter = field(default_factory=Counter)
    _calls_lock: threading.Lock = field(default_factory=threading.Lock)
    # Which task IDs each status call asked about, and when (the newest ASKED_KEPT calls):
    # tests and the load test prove with it that no task is asked twice in one interval.
    asked: deque = field(default_factory=lambda: deque(maxlen=ASKED_KEPT))

    def __post_init__(self) -> None:
        self.images = ImageCache(self.image_dir)

    def mode_of(self, user: str | None) -> str:
        return self.modes.get(user or "", self.mode)

    def add_user(self, token: str, user: str, mode: str | None = None) -> None:
        if mode is not None and mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {MODES}")
        self.tokens[token.removeprefix("sk-")] = user
        if mode:
            self.modes[user] = mode

    def count(self, name: str, n: int = 1) -> None:
        with self._calls_lock:
            self.calls[name] += n

    def note_asked(self, caller: str | None, ids: list[str], port: int) -> None:
        """`port`: the client's own port, which tells the processes that ask apart."""
        with self._calls_lock:
            entry = {"at": time.time(), "caller": caller or "", "ids": ids, "port": port}
            self.asked.append(entry)

    def add_task(self, owner: str, **fields: Any) -> SimTask:
        fields.setdefault("step_seconds", self.step_seconds)
        age = float(fields.pop("age_seconds", 0))
        fields.setdefault("submitted_at", time.time() - age)
        fields.setdefault("id", new_task_id(fields["submitted_at"]))
        return self.store.add(SimTask(owner=owner, **fields))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mjdash-sandbox"
    disable_nagle_algorithm = True  # Go's net/http sets TCP_NODELAY on every connection
    sandbox: Sandbox  # set on the subclass the server builds

    # --- plumbing --------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def _request_id(self) -> str:
        return time.strftime("%Y%m%d%H%M%S") + uuid.uuid4().hex[:16]

    def _send(self, status: int, body: bytes, content_type: str | None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self._common_headers()
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _common_headers(self) -> None:
        self.send_header("X-Oneapi-Request-Id", self._request_id())
        self.send_header("X-New-Api-Version", "v0.9.0-sandbox")
        self.send_header("Access-Control-Allow-Origin", "*")

    def _json(self, status: int, value: Any, *, sort_keys: bool = False) -> None:
        self._send(status, go_json(value, sort_keys=sort_keys), "application/json")

    def _stream(self, status: int, content_type: str, chunks: Any) -> None:
        """Chunked transfer with no Content-Length, as new-api's io.Copy proxy sends."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self._common_headers()
        self.end_headers()
        for chunk in chunks:
            if chunk:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def _auth_error(self, status: int, message: str) -> None:
        body = {
            "error": {
                "code": "",
                "message": f"{message} (request id: {self._request_id()})",
                "type": "new_api_error",
            }
        }
        self._json(status, body, sort_keys=True)

    def _mj_error(self, description: str, code: int = 4, *, plain: bool = False) -> None:
        body = go_json(
            {"code": code, "description": f"{description} ", "type": "upstream_error"},
            sort_keys=True,
        )
        content_type = "text/plain; charset=utf-8" if plain else "application/json"
        self._send(429 if code == 30 else 400, body, content_type)

    def _read_body(self) -> bytes:
        """The request body, read once per request (a fault may read it before the endpoint)."""
        if self._body is None:
            length = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(length) if length else b""
        return self._body

    def _caller(self) -> str | None:
        """Which gateway user the headers name, however they are written (for the mode)."""
        for header in ("Authorization", "mj-api-secret"):
            key = _strip_bearer(self.headers.get(header, "")).removeprefix("sk-")
            user = self.sandbox.tokens.get(key.partition("-")[0])
            if user:
                return user
        return None

    def _owner(self) -> str | None:
        """The caller's gateway user, checked the way this mode's gateway checks it; None once
        the refusal has been sent."""
        if self.mode == "novicezk":
            # mj-api-secret must equal the secret; a mismatch is a 401 with an empty body.
            user = self.sandbox.tokens.get(
                self.headers.get("mj-api-secret", "").removeprefix("sk-")
            )
            if user is None:
                self._send(401, b"", None)
            return user
        if self.mode == "trueai":
            # The raw Authorization value is the token: no Bearer stripping.
            raw = self.headers.get("Authorization") or self.headers.get("Mj-Api-Secret", "")
            user = self.sandbox.tokens.get(raw.strip().removeprefix("sk-"))
            if user is None:
                self._send(401, b"Authorization header missing.", None)
            return user
        return self._new_api_owner()

    def _new_api_owner(self) -> str | None:
        """new-api's TokenAuth: Authorization (Bearer optional), else mj-api-secret; sk- optional;
        a dash suffix pins a channel, which regular users may not do."""
        key = _strip_bearer(self.headers.get("Authorization", ""))
        if key in ("", "midjourney-proxy"):
            key = _strip_bearer(self.headers.get("mj-api-secret", ""))
        if not key:
            self._auth_error(401, "未提供令牌")
            return None
        key = key.removeprefix("sk-")
        base, _, suffix = key.partition("-")
        owner = self.sandbox.tokens.get(base)
        if owner is None:
            self._auth_error(401, "无效的令牌")
            return None
        if suffix:
            self._auth_error(403, "普通用户不支持指定渠道")
            return None
        return owner

    # --- routing ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        path = re.sub(r"^/[^/]+(?=/mj/)", "", path)  # /mj-fast/mj/... -> /mj/...
        self.mode = self.sandbox.mode_of(self._caller())
        self.fault = None
        self._body: bytes | None = None
        hook = _match(HOOKS, method, path)
        if hook is not None:
            hook[0](self, **hook[1])  # our own hooks: never faulty, never counted
            return
        route = _match(ROUTES, method, path)
        if route is None:
            self.sandbox.count("spa")
            self._not_routed(method, path)
            return
        handler, args = route
        self.endpoint = handler.__name__
        self.sandbox.count(self.endpoint)
        if self.mode == "spa" and path.startswith("/mj/"):
            self._not_routed(method, path)  # stock one-api: every /mj path is the web app
            return
        self.fault = self.sandbox.faults.take(self.endpoint)
        if self.fault and self._apply_fault(method, handler, args):
            return
        handler(self, **args)

    def _not_routed(self, method: str, path: str) -> None:
        if method == "POST":
            self._read_body()
        if self.mode in ("novicezk", "trueai") or path.startswith(("/v1", "/api", "/assets")):
            self._json(404, {"status": 404, "error": "Not Found", "path": path})
        else:
            self._send(200, SPA_PAGE, "text/html; charset=utf-8")

    def _apply_fault(self, method: str, handler: Any, args: dict[str, str]) -> bool:
        """Answer with the fault instead of the endpoint; False for faults that only delay
        the endpoint or shape its own answer (the endpoint reads self.fault)."""
        kind, params = self.fault.kind, self.fault.params
        if method == "POST":
            self._read_body()
        if kind == "latency":
            time.sleep(float(params.get("seconds", 1)))
            return False
        if kind in ("duplicates", "shuffle"):
            return False
        if kind == "code" and int(params.get("code", 23)) in (21, 22):
            return False  # accepted under another code: the endpoint answers (_submit_answer)
        if kind in ("drip", "truncated", "accepted_hang"):
            self._replay_badly(handler, args, kind, float(params.get("seconds", 0.5)))
        else:
            FAULT_ANSWERS[kind](self, params)
        return True

    def _replay_badly(self, handler: Any, args: dict[str, str], kind: str, seconds: float) -> None:
        """Make the normal answer, then send it one byte per `seconds` (drip, bounded to 200
        bytes of patience), or only its first half before closing (truncated)."""
        real_wfile, buffer = self.wfile, io.BytesIO()
        self.wfile = buffer
        try:
            handler(self, **args)
        finally:
            self.wfile = real_wfile
        raw = buffer.getvalue()
        self.close_connection = True
        if kind == "accepted_hang":  # done (a submit is accepted), but the answer comes late
            time.sleep(seconds)
            self.wfile.write(raw)
            return
        if kind == "truncated":
            head, _, body = raw.partition(b"\r\n\r\n")
            self.wfile.write(head + b"\r\n\r\n" + body[: len(body) // 2])
            return
        head, _, body = raw.partition(b"\r\n\r\n")
        self.wfile.write(head + b"\r\n\r\n")
        for i in range(min(len(body), 200)):
            self.wfile.write(body[i : i + 1])
            self.wfile.flush()
            time.sleep(seconds)

    # --- fault answers: each replaces the endpoint's answer -------------------------------

    def _fault_code(self, params: dict) -> None:
        """HTTP 200 with the protocol's refusal: queue full (23), banned prompt (24), ..."""
        code = int(params.get("code", 23))
        description = str(params.get("description") or CODE_DESCRIPTIONS.get(code, "失败"))
        self._submit_answer(code, description, properties=params.get("properties"))

    def _fault_status(self, params: dict) -> None:
        status = int(params.get("status", 500))
        body = str(params.get("body", "Internal Server Error")).encode()
        self._send(status, body, params.get("content_type", "text/plain; charset=utf-8"))

    def _fault_rate_limit(self, params: dict) -> None:
        self.send_response(429)
        self.send_header("Retry-After", str(params.get("retry_after", 1)))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _fault_overload(self, params: dict) -> None:
        body = {
            "error": {
                "code": "system_cpu_overloaded",
                "message": "system cpu overloaded (cpu: 97.2%, threshold: 90%)",
                "type": "new_api_error",
            }
        }
        self._json(503, body, sort_keys=True)

    def _fault_garbage(self, params: dict) -> None:
        self._send(200, b'[{"id":"17121580\x00, "status": SUCC', "application/json")

    def _fault_html(self, params: dict) -> None:
        self._send(200, b"<!doctype html><title>Just a moment...</title>", "text/html")

    def _fault_redirect(self, params: dict) -> None:
        self.send_response(302)
        self.send_header("Location", str(params.get("location", "http://169.254.169.254/")))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _fault_reset(self, params: dict) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _fault_expired(self, params: dict) -> None:
        """An expired file: new-api's proxy passes upstream's status and text on as JSON (E20);
        Discord's CDN says it in plain text."""
        status = int(params.get("status", 404))
        if self.endpoint == "image":
            self._json(status, {"error": EXPIRED_TEXT})
        else:
            self._send(status, EXPIRED_TEXT.encode(), "text/plain; charset=utf-8")

    def _fault_oversized(self, params: dict) -> None:
        """{mb} megabytes of the endpoint's media type, chunked with no Content-Length: only
        a running count can stop it."""
        content_type, head = self._file_type()
        blocks = max(1, _megabytes(params) // CHUNK)
        first = head.ljust(CHUNK, b"\x00")
        self._stream(200, content_type, (first if i == 0 else bytes(CHUNK) for i in range(blocks)))

    def _fault_oversized_header(self, params: dict) -> None:
        """A Content-Length of {mb} megabytes, then a few real-looking bytes and a hang-up: the
        header alone must be enough to refuse it."""
        content_type, head = self._file_type()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(_megabytes(params)))
        self._common_headers()
        self.end_headers()
        self.wfile.write(head.ljust(64, b"\x00"))
        self.close_connection = True

    def _fault_svg(self, params: dict) -> None:
        """A scripted SVG document labelled with the endpoint's media type: image/png (video/mp4
        on video), so only a check of the bytes themselves catches it."""
        self._send(200, HOSTILE_SVG, self._file_type()[0])

    def _fault_bomb(self, params: dict) -> None:
        """A ~100 KB PNG that declares 10000x10000 pixels."""
        self._send(200, bomb_png(), "image/png")

    def _file_type(self) -> tuple[str, bytes]:
        """The media type this endpoint serves, and the first bytes such a file starts with."""
        if self.endpoint == "video":
            return "video/mp4", videos.MP4_FTYP
        return "image/png", PNG_SIGNATURE

    # --- /mj routes ------------------------------------------------------------------------

    def _owned_task(self, task_id: str) -> SimTask | None:
        """The caller's task, or None once the auth or not-found answer has been sent, in
        this mode's manner: new-api 400 task_no_found, novicezk an empty 200, trueai 204."""
        owner = self._owner()
        if owner is None:
            return None
        if self.mode == "trueai":  # trueai does not scope tasks by user
            task = self.sandbox.store.get(task_id)
        else:
            task = self.sandbox.store.owned(owner, task_id)
        if task is None:
            if self.mode == "novicezk":
                self._send(200, b"", None)
            elif self.mode == "trueai":
                self._send(204, b"", None)
            else:
                self._mj_error("task_no_found")
        return task

    def _shape(self, task: SimTask, now: float) -> dict:
        if self.mode == "novicezk":
            return shapes.novicezk(task, now, self.sandbox.cdn_address)
        if self.mode == "trueai":
            return shapes.trueai(task, now, self.sandbox.cdn_address)
        return task.snapshot(now, self.sandbox.server_address, self.sandbox.cdn_address)

    def fetch(self, task_id: str) -> None:
        self.sandbox.note_asked(self._caller(), [task_id], self.client_address[1])
        task = self._owned_task(task_id)
        if task is None:
            return
        self._json(200, self._shape(task, time.time()))

    def _authed_json(self, *, plain: bool = False) -> tuple[str, Any] | None:
        """The caller and the request's JSON body (None when empty), or None once the
        refusal has been sent: the auth error, or new-api's do_request_failed."""
        raw = self._read_body()
        owner = self._owner()
        if owner is None:
            return None
        try:
            return owner, json.loads(raw or b"null")
        except ValueError:
            self._mj_error("do_request_failed", plain=plain)
            return None

    def list_by_condition(self) -> None:
        caller = self._authed_json(plain=True)  # gin has flushed a 400 before the body
        if caller is None:
            return
        owner, body = caller
        ids = body.get("ids") if isinstance(body, dict) else None
        ids = [str(i).strip() for i in ids] if isinstance(ids, list) else []
        self.sandbox.count("list_ids", len(ids))
        self.sandbox.note_asked(owner, ids, self.client_address[1])
        now = time.time()
        if self.mode == "trueai":
            tasks = [t for i in dict.fromkeys(ids) if (t := self.sandbox.store.get(i))]
        else:
            tasks = self.sandbox.store.owned_many(owner, ids)
        rows = [self._shape(t, now) for t in tasks]
        kind = self.fault.kind if self.fault else ""
        if kind == "duplicates" or self.mode == "novicezk":
            rows.reverse()  # novicezk iterates a HashSet: any order
        if kind == "duplicates":
            # new-api keeps a second row for a resubmitted id; it lags behind (E15)
            older = [dict(r, status="IN_PROGRESS", progress="46%", imageUrl="") for r in rows]
            rows = [row for pair in zip(older, rows, strict=True) for row in pair]
        elif kind == "shuffle":
            rows.reverse()
        self._json(200, rows)

    def image_seed(self, task_id: str) -> None:
        if self.mode == "novicezk":  # not in the open-source edition: Spring's default 404
            self._owner() and self._json(404, {"status": 404, "error": "Not Found"})
            return
        if self.mode == "trueai":
            self._trueai_seed(task_id)
            return
        task = self._owned_task(task_id)
        if task is None:
            return
        # new-api re-serialises upstream's answer with HTTP 200 and a sniffed text/plain type,
        # whatever upstream's status was (docs/gateway-quirks.md, E22).
        if task.status(time.time()) == "SUCCESS":
            body = {"code": 1, "description": "成功", "properties": {}, "result": task.seed}
        else:
            body = {"code": 4, "description": "关联任务状态错误", "properties": {}, "result": ""}
        self._send(200, go_json(body), "text/plain; charset=utf-8")

    def _trueai_seed(self, task_id: str) -> None:
        if self._owner() is None:
            return
        task = self.sandbox.store.get(task_id)
        if task is None:
            status, code, description, seed = 404, 3, "关联任务不存在或已失效", None
        elif task.status(time.time()) != "SUCCESS":
            status, code, description, seed = 400, 4, "关联任务状态错误", None
        else:
            status, code, description, seed = 200, 1, "成功", task.seed
        body = {"code": code, "description": description, "result": seed, "properties": {}}
        self._json(status, body)

    def image(self, task_id: str) -> None:
        if self.mode in ("novicezk", "trueai"):  # no image proxy: images sit at imageUrl
            self._send(404, b"", None)
            return
        task = self.sandbox.store.get(task_id)
        if task is None:
            self._json(400, {"error": "midjourney_task_not_found"})
            return
        self._serve_picture(task)

    def _serve_picture(self, task: SimTask) -> None:
        now = time.time()
        if task.has_final_image(now):
            path = self.sandbox.images.final_png(task.id, single=task.action == "UPSCALE")
            self._stream(200, "image/png", _file_chunks(path))
        elif task.has_preview(now):
            progress = int(task.progress(now).rstrip("%") or 0)
            body = self.sandbox.images.preview_jpeg(task.id, progress)
            self._stream(
                200, "image/jpeg", [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
            )
        else:
            self._json(
                403, {"error": "request blocked: unsupported protocol:  (only http/https allowed)"}
            )

    # --- the CDN: Midjourney's and Discord's files ------------------------------------------

    def attachment(self, task_id: str, name: str) -> None:
        """A task's pictures as the CDN holds them: grid_0.png is the whole grid (or the
        running job's preview, which novicezk links), 0_<i>.png the i-th picture on its own,
        0_<i>_640_N.webp its small thumbnail. Sent with Content-Length, as CDNs do."""
        task = self.sandbox.store.get(task_id)
        if task is None:
            self._send(404, b"", None)
        elif name == "grid_0.png":
            self._serve_grid_attachment(task)
        else:
            self._serve_picture_attachment(task, name)

    def _serve_grid_attachment(self, task: SimTask) -> None:
        now = time.time()
        if task.has_final_image(now):
            path = self.sandbox.images.final_png(task.id, single=task.action == "UPSCALE")
            self._send(200, path.read_bytes(), "image/png")
        elif task.has_preview(now):
            progress = int(task.progress(now).rstrip("%") or 0)
            self._send(200, self.sandbox.images.preview_jpeg(task.id, progress), "image/jpeg")
        else:
            self._send(404, b"", None)

    def _serve_picture_attachment(self, task: SimTask, name: str) -> None:
        match = re.fullmatch(r"0_([0-3])(\.png|_640_N\.webp)", name)
        if match is None or not task.has_final_image(time.time()):
            self._send(404, b"", None)
            return
        index, single = int(match[1]), task.action == "UPSCALE"
        if match[2] == ".png":
            path = self.sandbox.images.quadrant_png(task.id, index, single=single)
            self._send(200, path.read_bytes(), "image/png")
        else:
            path = self.sandbox.images.thumbnail_webp(task.id, index, single=single)
            self._send(200, path.read_bytes(), "image/webp")

    def video(self, task_id: str, ext: str, index: str = "0") -> None:
        """A VIDEO task's clip: a real 1.5 s H.264 MP4 or VP9 WebM, marked with the task id
        and clip index so that no two files are byte-equal. Sent whole, with Content-Length
        (no Range: mjdash serves its own copies)."""
        if self.sandbox.store.get(task_id) is None:
            self._send(404, b"", None)
            return
        body = videos.video_bytes(task_id, int(index), ext)
        self._send(200, body, videos.CONTENT_TYPES[ext])

    # --- /mj/submit ------------------------------------------------------------------------

    def submit(self, kind: str) -> None:
        """/mj/submit/imagine and friends: a new task, or the protocol's refusal codes."""
        found = self._submit_body()
        if found is None:
            return
        owner, body = found
        action = SUBMIT_ACTIONS.get(kind)
        if action is None:
            self._mj_error("invalid_request")
            return
        prompt = str(body.get("prompt") or "")
        images = body.get("base64Array") or []
        if not isinstance(images, list) or not all(map(_is_data_url, images)):
            self._submit_answer(4, "base64格式错误")
            return
        banned = next((word for word in BANNED_WORDS if word in prompt.lower()), "")
        if banned:
            properties = {"promptEn": prompt, "bannedWord": banned}
            self._submit_answer(24, "可能包含敏感词", properties=properties)
            return
        task = self.sandbox.add_task(owner, action=action, prompt=prompt)
        self._submit_answer(1, SUBMIT_DESCRIPTIONS[0], task.id)

    def submit_action(self) -> None:
        """A button of a finished task: {"taskId", "customId"} -> the new task it starts, in
        MODAL (code 21, 窗口等待) when the button needs more input."""
        found = self._submit_body()
        if found is None:
            return
        owner, body = found
        parent = self.sandbox.store.owned(owner, str(body.get("taskId") or ""))
        custom_id = str(body.get("customId") or "")
        if parent is None:
            self._submit_answer(3, "关联任务不存在或已失效")
            return
        now = time.time()
        offered = [b["customId"] for b in parent.buttons(parent.status(now))]
        if parent.status(now) != "SUCCESS" or custom_id not in offered:
            self._submit_answer(4, "关联任务状态错误" if custom_id in offered else "customId无效")
            return
        action, needs_input = action_of(custom_id)
        task = self.sandbox.add_task(
            owner,
            action=action,
            prompt=parent.prompt,
            parent_id=parent.id,
            made_with=custom_id,
            awaiting_input=needs_input,
        )
        if needs_input:
            self._submit_answer(21, "窗口等待", task.id)
        else:
            self._submit_answer(1, SUBMIT_DESCRIPTIONS[0], task.id)

    def submit_modal(self) -> None:
        """The input a MODAL task waits for: {"taskId", "prompt", "maskBase64"}; the task then
        runs from now."""
        found = self._submit_body()
        if found is None:
            return
        owner, body = found
        task = self.sandbox.store.owned(owner, str(body.get("taskId") or ""))
        if task is None:
            self._submit_answer(3, "关联任务不存在或已失效")
            return
        if not task.awaiting_input:
            self._submit_answer(4, "关联任务状态错误")
            return
        prompt = str(body.get("prompt") or "")
        if prompt:
            task.prompt = prompt
        task.awaiting_input, task.submitted_at = False, time.time()
        self._submit_answer(1, SUBMIT_DESCRIPTIONS[0], task.id)

    def _submit_body(self) -> tuple[str, dict] | None:
        caller = self._authed_json()
        if caller is None:
            return None
        owner, body = caller
        if body is not None and not isinstance(body, dict):
            self._mj_error("invalid_request")
            return None
        return owner, body or {}

    def _submit_answer(self, code: int, description: str, result=None, properties=None) -> None:
        """The protocol's answer; new-api rewrites 21 and 22 to 1 in the body (its relay). A
        "code" fault of 21 or 22 answers an accepted submit with that code instead of 1."""
        if code == 1 and self.fault and self.fault.kind == "code":
            code = int(self.fault.params["code"])
            description = self.fault.params.get("description") or CODE_DESCRIPTIONS[code]
        if self.mode == "new-api" and code in (21, 22):
            code = 1
        answer = {"code": code, "description": description, "result": result}
        self._json(200, {**answer, "properties": properties or {}})

    # --- sandbox-only routes ---------------------------------------------------------------

    def health(self) -> None:
        self._json(200, {"ok": True, "tasks": len(self.sandbox.store)})

    def stats(self) -> None:
        self._json(200, dict(self.sandbox.calls))

    def reset_stats(self) -> None:
        self._read_body()
        with self.sandbox._calls_lock:
            self.sandbox.calls.clear()
            self.sandbox.asked.clear()
        self._json(200, {})

    def asked(self) -> None:
        """[{"at": unix time, "caller": gateway user, "ids": [...], "port": the client's},
        ...], oldest first: every list-by-condition and fetch since the last reset (the
        newest ASKED_KEPT)."""
        with self.sandbox._calls_lock:
            self._json(200, list(self.sandbox.asked))

    def add_fault(self) -> None:
        """{"endpoint": "list_by_condition", "kind": "status", "status": 502, "times": 2}"""
        try:
            fault = self.sandbox.faults.add(json.loads(self._read_body() or b"{}"))
        except (ValueError, KeyError, TypeError) as exc:
            self._json(400, {"error": f"bad fault: {exc}"})
            return
        self._json(201, {"endpoint": fault.endpoint, "kind": fault.kind, "times": fault.times})

    def clear_faults(self) -> None:
        self._read_body()
        self.sandbox.faults.clear()
        self._json(200, {})

    def create_task(self) -> None:
        """Test hook: {"token": "...", "action", "prompt", "outcome", "fail_reason",
        "step_seconds", "age_seconds", "id", "image_urls_shape", "parent_id", "made_with"}
        -> the task as fetch shows it."""
        try:
            body = json.loads(self._read_body() or b"{}")
            owner = self.sandbox.tokens[str(body.pop("token")).removeprefix("sk-")]
            task = self.sandbox.add_task(owner, **body)
        except (ValueError, KeyError, TypeError) as exc:
            self._json(400, {"error": f"bad sandbox task: {exc!r}"})
            return
        now = time.time()
        self._json(201, task.snapshot(now, self.sandbox.server_address, self.sandbox.cdn_address))


def action_of(custom_id: str) -> tuple[str, bool]:
    """What a button starts (new-api's action label) and whether it waits for input first."""
    for needle, action, needs_input in BUTTON_ACTIONS:
        if needle in custom_id:
            return action, needs_input
    return "CUSTOM", False


def _is_data_url(value: Any) -> bool:
    head, comma, data = value.partition(",") if isinstance(value, str) else ("", "", "")
    if not (head.startswith("data:image/") and head.endswith(";base64") and comma and data):
        return False
    try:
        base64.b64decode(data, validate=True)
    except ValueError:
        return False
    return True


def _strip_bearer(value: str) -> str:
    value = value.strip()
    for prefix in ("Bearer ", "bearer "):
        value = value.removeprefix(prefix)
    return value.strip()


def _file_chunks(path: Path):
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def _megabytes(params: dict) -> int:
    """The fault's {mb} parameter (default 60) in bytes."""
    return int(float(params.get("mb", 60)) * 1024 * 1024)


def _match(routes: list, method: str, path: str) -> tuple[Any, dict[str, str]] | None:
    """The handler of the first route for this method and path, and its named groups."""
    for route_method, pattern, handler in routes:
        match = re.fullmatch(pattern, path)
        if match and route_method == method:
            return handler, match.groupdict()
    return None


# Every fault kind that replaces the endpoint's answer (see faults.KINDS), and its answer.
CODE_DESCRIPTIONS = {
    9: "提交失败",
    21: "任务已存在",
    22: "排队中，前面还有1个任务",
    23: "队列已满，请稍后尝试",
    24: "可能包含敏感词",
}
FAULT_ANSWERS = {
    "code": Handler._fault_code,
    "status": Handler._fault_status,
    "rate_limit": Handler._fault_rate_limit,
    "overload": Handler._fault_overload,
    "garbage": Handler._fault_garbage,
    "html": Handler._fault_html,
    "redirect": Handler._fault_redirect,
    "reset": Handler._fault_reset,
    "expired": Handler._fault_expired,
    "oversized": Handler._fault_oversized,
    "oversized_header": Handler._fault_oversized_header,
    "svg": Handler._fault_svg,
    "bomb": Handler._fault_bomb,
}

ID = r"(?P<task_id>[^/]+)"
VIDEO_EXT = r"(?P<ext>mp4|webm)"
SPEED = r"(?:/mj-(?:fast|relax|turbo))?"  # new-api's speed-mode prefixes
# Ours: never counted, never faulty.
HOOKS = [
    ("GET", r"/_sandbox/health", Handler.health),
    ("GET", r"/_sandbox/stats", Handler.stats),
    ("GET", r"/_sandbox/asked", Handler.asked),
    ("POST", r"/_sandbox/stats/reset", Handler.reset_stats),
    ("POST", r"/_sandbox/tasks", Handler.create_task),
    ("POST", r"/_sandbox/faults", Handler.add_fault),
    ("POST", r"/_sandbox/faults/clear", Handler.clear_faults),
]
# The gateway's and the CDN's: counted in /_sandbox/stats and faulty by handler name.
ROUTES = [
    ("GET", rf"/mj/task/{ID}/fetch", Handler.fetch),
    ("POST", r"/mj/task/list-by-condition", Handler.list_by_condition),
    ("GET", rf"/mj/task/{ID}/image-seed", Handler.image_seed),
    ("GET", rf"/mj/image/{ID}", Handler.image),
    ("POST", rf"{SPEED}/mj/submit/action", Handler.submit_action),
    ("POST", rf"{SPEED}/mj/submit/modal", Handler.submit_modal),
    ("POST", rf"{SPEED}/mj/submit/(?P<kind>[a-z-]+)", Handler.submit),
    ("GET", rf"/attachments/{ID}/(?P<name>[^/]+)", Handler.attachment),
    ("GET", rf"/video/{ID}/0_(?P<index>[0-3])\.{VIDEO_EXT}", Handler.video),
    ("GET", rf"/_sandbox/video/{ID}\.{VIDEO_EXT}", Handler.video),
]


def make_server(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    handler = type("SandboxHandler", (Handler,), {"sandbox": sandbox})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    port = server.server_address[1]
    if not sandbox.server_address:
        sandbox.server_address = f"http://{host}:{port}"
    if not sandbox.cdn_address:
        # The same server under another name for loopback: to a client, another host.
        sandbox.cdn_address = f"http://localhost:{port}"
    return server
