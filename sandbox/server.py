"""The sandbox gateway: a stdlib HTTP server that answers like new-api's /mj routes.

Faithful to ../shared/upstream-api.md: new-api's three error envelopes with Go's sorted map keys
and trailing-space descriptions, task objects in struct key order with Go zero values, the
unauthenticated chunked image proxy, and the SPA page for every path it does not know.

Routes under /_sandbox/ are ours, not new-api's: tests and the demo use them to create tasks,
read call counters and fetch the fake video.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .images import TINY_MP4, ImageCache
from .tasks import SUBMIT_DESCRIPTIONS, SimTask, TaskStore, new_task_id

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
    store: TaskStore = field(default_factory=TaskStore)
    calls: Counter = field(default_factory=Counter)
    _calls_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.images = ImageCache(self.image_dir)

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
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _owner(self) -> str | None:
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
        for route_method, pattern, handler in ROUTES:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                if path.startswith("/mj/"):  # count gateway calls, not our own test hooks
                    self.sandbox.count(handler.__name__)
                handler(self, *match.groups())
                return
        self.sandbox.count("spa")
        if method == "POST":
            self._read_body()
        if path.startswith(("/v1", "/api", "/assets")):
            self._json(404, {"error": {"message": f"Invalid URL ({method} {path})"}})
        else:
            self._send(200, SPA_PAGE, "text/html; charset=utf-8")

    # --- /mj routes ------------------------------------------------------------------------

    def _owned_task(self, task_id: str) -> SimTask | None:
        """The caller's task, or None once the auth or task_no_found error has been sent."""
        owner = self._owner()
        if owner is None:
            return None
        task = self.sandbox.store.owned(owner, task_id)
        if task is None:
            self._mj_error("task_no_found")
        return task

    def fetch(self, task_id: str) -> None:
        task = self._owned_task(task_id)
        if task is None:
            return
        self._json(200, task.snapshot(time.time(), self.sandbox.server_address))

    def list_by_condition(self) -> None:
        raw = self._read_body()
        owner = self._owner()
        if owner is None:
            return
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            self._mj_error("do_request_failed", plain=True)
            return
        ids = body.get("ids") if isinstance(body, dict) else None
        ids = [str(i) for i in ids] if isinstance(ids, list) else []
        self.sandbox.count("list_ids", len(ids))
        now = time.time()
        tasks = self.sandbox.store.owned_many(owner, ids)
        self._json(200, [t.snapshot(now, self.sandbox.server_address) for t in tasks])

    def image_seed(self, task_id: str) -> None:
        task = self._owned_task(task_id)
        if task is None:
            return
        # new-api re-serialises upstream's answer with HTTP 200 and a sniffed text/plain type,
        # whatever upstream's status was (upstream-api.md 1.1, E22).
        if task.status(time.time()) == "SUCCESS":
            body = {"code": 1, "description": "成功", "properties": {}, "result": task.seed}
        else:
            body = {"code": 4, "description": "关联任务状态错误", "properties": {}, "result": ""}
        self._send(200, go_json(body), "text/plain; charset=utf-8")

    def image(self, task_id: str) -> None:
        task = self.sandbox.store.get(task_id)
        if task is None:
            self._json(400, {"error": "midjourney_task_not_found"})
            return
        now = time.time()
        if task.has_final_image(now):
            path = self.sandbox.images.final_png(task.id, single=task.action == "UPSCALE")
            self._stream(200, "image/png", _file_chunks(path))
        elif task.has_preview(now):
            snapshot = task.snapshot(now, "")
            progress = int(snapshot["progress"].rstrip("%") or 0)
            body = self.sandbox.images.preview_jpeg(task.id, progress)
            self._stream(
                200, "image/jpeg", [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
            )
        else:
            self._json(
                403, {"error": "request blocked: unsupported protocol:  (only http/https allowed)"}
            )

    def submit(self, kind: str) -> None:
        raw = self._read_body()
        owner = self._owner()
        if owner is None:
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._mj_error("do_request_failed")
            return
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
        self._json(200, {"ok": True, "tasks": len(self.sandbox.store._tasks)})

    def stats(self) -> None:
        self._json(200, dict(self.sandbox.calls))

    def reset_stats(self) -> None:
        self._read_body()
        self.sandbox.calls.clear()
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
]


def make_server(sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    handler = type("SandboxHandler", (Handler,), {"sandbox": sandbox})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    if not sandbox.server_address:
        sandbox.server_address = f"http://{host}:{server.server_address[1]}"
    return server
