"""The sandbox gateway: a stdlib HTTP server that answers like new-api's /mj routes.

Faithful to the gateway quirks in docs/gateway-quirks.md: new-api's three error envelopes
with Go's sorted map keys and trailing-space descriptions, task objects in struct key order
with Go zero values, the unauthenticated chunked image proxy, and the SPA page for every path
it does not know.

Routes under /_sandbox/ are ours, not new-api's: tests and the demo use them to create tasks,
read call counters and fetch the fake video.
"""

from __future__ import annotations

import io
import json
import re
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import shapes
from .faults import Faults
from .pictures import TINY_MP4, ImageCache
from .tasks import SUBMIT_DESCRIPTIONS, SimTask, TaskStore, new_task_id

MODES = ("new-api", "novicezk", "trueai", "spa")

SPA_PAGE = (
    b'<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>New API</title>'
    b'</head><body><div id="root"></div></body></html>'
)
SUBMIT_ACTIONS = {
    "imagine": "IMAGINE",
    "describe": "DESCRIBE",
    "blend": "BLEND",
    "video": "VIDEO",
    "shorten": "SHORTEN",
}
CHUNK = 64 * 1024


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
    mode: str = "new-api"  # how every user's gateway behaves, unless `modes` says otherwise
    modes: dict[str, str] = field(default_factory=dict)  # gateway user -> mode
    store: TaskStore = field(default_factory=TaskStore)
    faults: Faults = field(default_factory=Faults)
    calls: Counter = field(default_factory=Counter)
    _calls_lock: threading.Lock = field(default_factory=threading.Lock)

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
        for route_method, pattern, handler in ROUTES:
            match = re.fullmatch(pattern, path)
            if not match or route_method != method:
                continue
            if not path.startswith("/mj/"):
                handler(self, *match.groups())  # our own hooks: never faulty, never counted
                return
            self.sandbox.count(handler.__name__)
            if self.mode == "spa":
                break  # stock one-api: every /mj path is the web app
            self.fault = self.sandbox.faults.take(handler.__name__)
            if self.fault and self._apply_fault(method, handler, match.groups()):
                return
            handler(self, *match.groups())
            return
        else:
            self.sandbox.count("spa")
        self._not_routed(method, path)

    def _not_routed(self, method: str, path: str) -> None:
        if method == "POST":
            self._read_body()
        if self.mode in ("novicezk", "trueai") or path.startswith(("/v1", "/api", "/assets")):
            self._json(404, {"status": 404, "error": "Not Found", "path": path})
        else:
            self._send(200, SPA_PAGE, "text/html; charset=utf-8")

    def _apply_fault(self, method: str, handler: Any, args: tuple) -> bool:
        """Answer with the fault instead of the endpoint; False for faults that only shape
        the endpoint's own answer (the endpoint reads self.fault)."""
        fault, params = self.fault, self.fault.params
        if method == "POST":
            self._read_body()
        if fault.kind == "latency":
            time.sleep(float(params.get("seconds", 1)))
            return False
        if fault.kind in ("duplicates", "shuffle", "expired", "oversized"):
            return False
        if fault.kind in ("drip", "truncated"):
            self._replay_badly(handler, args, fault.kind, float(params.get("seconds", 0.5)))
        elif fault.kind == "status":
            status = int(params.get("status", 500))
            body = str(params.get("body", "Internal Server Error")).encode()
            self._send(status, body, params.get("content_type", "text/plain; charset=utf-8"))
        elif fault.kind == "rate_limit":
            self.send_response(429)
            self.send_header("Retry-After", str(params.get("retry_after", 1)))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif fault.kind == "overload":
            body = {
                "error": {
                    "code": "system_cpu_overloaded",
                    "message": "system cpu overloaded (cpu: 97.2%, threshold: 90%)",
                    "type": "new_api_error",
                }
            }
            self._json(503, body, sort_keys=True)
        elif fault.kind == "garbage":
            self._send(200, b'[{"id":"17121580\x00, "status": SUCC', "application/json")
        elif fault.kind == "html":
            self._send(200, b"<!doctype html><title>Just a moment...</title>", "text/html")
        elif fault.kind == "redirect":
            self.send_response(302)
            self.send_header("Location", str(params.get("location", "http://169.254.169.254/")))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif fault.kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
        return True

    def _replay_badly(self, handler: Any, args: tuple, kind: str, seconds: float) -> None:
        """Make the normal answer, then send it one byte per `seconds` (drip, bounded to 200
        bytes of patience), or only its first half before closing (truncated)."""
        real_wfile, buffer = self.wfile, io.BytesIO()
        self.wfile = buffer
        try:
            handler(self, *args)
        finally:
            self.wfile = real_wfile
        raw = buffer.getvalue()
        self.close_connection = True
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
            return shapes.novicezk(task, now, self.sandbox.server_address)
        if self.mode == "trueai":
            return shapes.trueai(task, now, self.sandbox.server_address)
        return task.snapshot(now, self.sandbox.server_address)

    def fetch(self, task_id: str) -> None:
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
        kind = self.fault.kind if self.fault else ""
        if kind == "expired":
            status = int(self.fault.params.get("status", 404))
            self._json(status, {"error": "This content is no longer available."})
        elif kind == "oversized":
            size = int(float(self.fault.params.get("mb", 60)) * 1024 * 1024)
            block = b"\x89PNG\r\n\x1a\n" + bytes(CHUNK - 8)
            self._stream(200, "image/png", (block for _ in range(size // CHUNK)))
        else:
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

    def attachment(self, task_id: str, name: str) -> None:
        """The files a direct gateway's imageUrl points at (novicezk's Discord CDN, trueai's
        re-hosted images), served from this host."""
        task = self.sandbox.store.get(task_id)
        if task is None:
            self._send(404, b"", None)
            return
        self._serve_picture(task)

    def submit(self, kind: str) -> None:
        caller = self._authed_json()
        if caller is None:
            return
        owner, body = caller
        body = {} if body is None else body
        action = SUBMIT_ACTIONS.get(kind)
        if action is None or not isinstance(body, dict):
            self._mj_error("invalid_request")
            return
        prompt = str(body.get("prompt") or "")
        task = self.sandbox.add_task(owner, action=action, prompt=prompt)
        self._json(
            200,
            {"code": 1, "description": SUBMIT_DESCRIPTIONS[0], "result": task.id, "properties": {}},
        )

    # --- sandbox-only routes ---------------------------------------------------------------

    def health(self) -> None:
        self._json(200, {"ok": True, "tasks": len(self.sandbox.store)})

    def stats(self) -> None:
        self._json(200, dict(self.sandbox.calls))

    def reset_stats(self) -> None:
        self._read_body()
        self.sandbox.calls.clear()
        self._json(200, {})

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
        "step_seconds", "age_seconds", "id", "image_urls_shape"} -> the task as fetch shows it."""
        try:
            body = json.loads(self._read_body() or b"{}")
            owner = self.sandbox.tokens[str(body.pop("token")).removeprefix("sk-")]
            task = self.sandbox.add_task(owner, **body)
        except (ValueError, KeyError, TypeError) as exc:
            self._json(400, {"error": f"bad sandbox task: {exc!r}"})
            return
        self._json(201, task.snapshot(time.time(), self.sandbox.server_address))

    def video(self, task_id: str) -> None:
        if self.sandbox.store.get(task_id) is None:
            self._json(404, {"error": "not found"})
            return
        self._send(200, TINY_MP4, "video/mp4")


def _strip_bearer(value: str) -> str:
    value = value.strip()
    for prefix in ("Bearer ", "bearer "):
        value = value.removeprefix(prefix)
    return value.strip()


def _file_chunks(path: Path):
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


ID = r"([^/]+)"
ROUTES = [
    ("GET", rf"/mj/task/{ID}/fetch", Handler.fetch),
    ("POST", r"/mj/task/list-by-condition", Handler.list_by_condition),
    ("GET", rf"/mj/task/{ID}/image-seed", Handler.image_seed),
    ("GET", rf"/mj/image/{ID}", Handler.image),
    ("POST", r"/mj/submit/([a-z-]+)", Handler.submit),
    ("GET", r"/_sandbox/health", Handler.health),
    ("GET", r"/_sandbox/stats", Handler.stats),
    ("POST", r"/_sandbox/stats/reset", Handler.reset_stats),
    ("POST", r"/_sandbox/tasks", Handler.create_task),
    ("GET", rf"/_sandbox/video/{ID}\.mp4", Handler.video),
    ("POST", r"/_sandbox/faults", Handler.add_fault),
    ("POST", r"/_sandbox/faults/clear", Handler.clear_faults),
    ("GET", rf"/attachments/{ID}/([^/]+)", Handler.attachment),
]


def make_server(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    handler = type("SandboxHandler", (Handler,), {"sandbox": sandbox})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    if not sandbox.server_address:
        sandbox.server_address = f"http://{host}:{server.server_address[1]}"
    return server
