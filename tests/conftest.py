"""Shared test setup: a real sandbox gateway over HTTP, and alice (owner) and bob (stranger)."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from sandbox import launch
from tracker.models import Gateway, Profile

ROOT = Path(__file__).resolve().parent.parent
ALICE_TOKEN = "sk-alice0000000000000000000000000000000000000000"
BOB_TOKEN = "sk-bob000000000000000000000000000000000000000000"
# Gateway users of the same sandbox that behave like the other gateways.
NOVICEZK_TOKEN = "sk-novicezk00000000000000000000000000000000000"
TRUEAI_TOKEN = "sk-trueai0000000000000000000000000000000000000"
SPA_TOKEN = "sk-oneapi0000000000000000000000000000000000000"
PASSWORD = "correct-horse-battery"


@dataclass
class Sandbox:
    """The running sandbox gateway, and the test hooks it offers under /_sandbox/."""

    url: str
    process: subprocess.Popen

    def create_task(self, token: str = ALICE_TOKEN, **fields) -> dict:
        fields.setdefault("step_seconds", 0)
        response = httpx.post(f"{self.url}/_sandbox/tasks", json={"token": token, **fields})
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, int]:
        return httpx.get(f"{self.url}/_sandbox/stats").json()

    def reset_stats(self) -> None:
        httpx.post(f"{self.url}/_sandbox/stats/reset").raise_for_status()

    def asked(self) -> list[dict]:
        """Every status call since the last reset: {"at", "caller", "ids"}, oldest first."""
        return httpx.get(f"{self.url}/_sandbox/asked").json()

    def fault(self, endpoint: str, kind: str, **params) -> None:
        """Make `endpoint` misbehave as `kind` until clear_faults() (or `times` requests)."""
        spec = {"endpoint": endpoint, "kind": kind, **params}
        httpx.post(f"{self.url}/_sandbox/faults", json=spec).raise_for_status()

    def clear_faults(self) -> None:
        httpx.post(f"{self.url}/_sandbox/faults/clear").raise_for_status()

    def fetch(self, task_id: str, token: str = ALICE_TOKEN) -> httpx.Response:
        return httpx.get(
            f"{self.url}/mj/task/{task_id}/fetch", headers={"Authorization": f"Bearer {token}"}
        )


def start_sandbox(tmp: Path, *extra: str) -> Sandbox:
    process, url = launch.start(
        "--step-seconds", "0.3",
        "--token", f"{ALICE_TOKEN}=alice", "--token", f"{BOB_TOKEN}=bob",
        "--token", f"{NOVICEZK_TOKEN}=nz@novicezk", "--token", f"{TRUEAI_TOKEN}=ta@trueai",
        "--token", f"{SPA_TOKEN}=oneapi@spa",
        "--image-dir", str(tmp), *extra,
    )  # fmt: skip
    return Sandbox(url=url, process=process)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory) -> Sandbox:
    box = start_sandbox(tmp_path_factory.mktemp("sandbox-images"))
    yield box
    launch.stop(box.process)


DATABASE_FIXTURES = {"db", "transactional_db", "django_db_setup", "live_server", "sandbox"}


@pytest.fixture(autouse=True)
def upstream_settings(request, settings):
    """Every test that touches the database or the gateway talks to the sandbox as alice's
    gateway user, refreshing on every poll, and leaves the sandbox without faults. Pure
    tests (the ID parser, the address guard) never wait for the sandbox to start."""
    marked = request.node.get_closest_marker("django_db") is not None
    if not (marked or DATABASE_FIXTURES & set(request.fixturenames)):
        yield settings
        return
    sandbox = request.getfixturevalue("sandbox")
    settings.MJDASH_GATEWAY_URL = sandbox.url
    settings.MJDASH_GATEWAY_TOKEN = ALICE_TOKEN
    settings.MJDASH_GATEWAY_AUTH = "bearer"
    settings.MJDASH_REFRESH_SECONDS = 0
    settings.MJDASH_IMAGE_HOSTS = [sandbox.url.replace("127.0.0.1", "localhost").split("//")[1]]
    settings.STORAGES = {  # each test its own archive folder
        **settings.STORAGES,
        "archive": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(request.getfixturevalue("tmp_path") / "archive")},
        },
    }
    cache.clear()  # cooldowns and thumbnails from an earlier test do not carry over
    yield settings
    sandbox.clear_faults()


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def bob(db, sandbox):
    """A stranger with his own gateway token."""
    user = get_user_model().objects.create_user("bob", password=PASSWORD)
    use_gateway(user, sandbox.url, BOB_TOKEN)
    return user


@pytest.fixture
def carol(db):
    """A second account on the site default: she shares the site's gateway token with alice."""
    return get_user_model().objects.create_user("carol", password=PASSWORD)


@pytest.fixture
def carol_client(carol):
    from django.test import Client

    client = Client()
    client.force_login(carol)
    return client


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(bob):
    from django.test import Client

    client = Client()
    client.force_login(bob)
    return client


def use_gateway(user, base_url: str, token: str, auth_style: str = "bearer") -> None:
    """Point `user` at a gateway, as the Settings page would."""
    connection = Gateway.for_values(base_url, token, auth_style)
    Profile.objects.update_or_create(user=user, defaults={"gateway": connection})


def wait_until(predicate, timeout: float = 10.0, every: float = 0.1):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"gave up after {timeout}s waiting for {predicate}")


def run_worker() -> None:
    """The task-queue worker, in this process: every job that is due, then it stops. On the
    database queue as `python manage.py db_worker --batch` runs it; on RQ as `rqworker
    --burst --with-scheduler` does, without the fork (a forked child would not see this
    test's open transaction)."""
    if django_settings.MJDASH_TASK_QUEUE != "rq":
        call_command("db_worker", batch=True, interval=0, no_startup_delay=True, verbosity=0)
        return
    import django_rq
    from rq.worker import SimpleWorker

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker = django_rq.get_worker("default", worker_class=SimpleWorker)
        worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
    finally:  # RQ installs its own; pytest's come back
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def database_url() -> str:
    """The URL of the database this test runs on, for a `manage.py` process beside it."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    login = ":".join(quote(part, safe="") for part in (db["USER"], db["PASSWORD"]) if part)
    return f"postgresql://{login}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def make_deferred_jobs_due() -> None:
    """Every job queued to run later (an archive's backoff) may run now, on either queue."""
    if django_settings.MJDASH_TASK_QUEUE != "rq":
        from django_tasks_db.models import DBTaskResult

        DBTaskResult.objects.update(run_after=timezone.now())
        return
    registry = _rq_registries()[0]
    for job_id in registry.get_job_ids():
        registry.connection.zadd(registry.key, {job_id: 0})  # due at the epoch: due now


def queued_jobs(task_name: str) -> int:
    """How many jobs of the task `task_name` were queued, on either queue: waiting, deferred,
    running or done."""
    if django_settings.MJDASH_TASK_QUEUE != "rq":
        from django_tasks_db.models import DBTaskResult

        return DBTaskResult.objects.filter(task_path__endswith=f".{task_name}").count()
    import django_rq
    from rq.job import Job

    queue = django_rq.get_queue("default")
    ids = {*queue.get_job_ids()}.union(*(r.get_job_ids() for r in _rq_registries()))
    jobs = Job.fetch_many(sorted(ids), connection=queue.connection)
    return sum(1 for job in jobs if job and job.func_name.endswith(f".{task_name}"))


def drop_queued_jobs() -> None:
    """Every job waiting or deferred is lost, as when a worker dies with them (on RQ: a Redis
    that lost its data)."""
    if django_settings.MJDASH_TASK_QUEUE != "rq":
        from django_tasks_db.models import DBTaskResult

        DBTaskResult.objects.all().delete()
        return
    import django_rq

    django_rq.get_queue("default").empty()
    scheduled = _rq_registries()[0]
    for job_id in scheduled.get_job_ids():
        scheduled.remove(job_id, delete_job=True)


def _rq_registries() -> list:
    """The RQ queue's registries: scheduled first, then started, finished and failed."""
    import django_rq
    from rq.registry import (
        FailedJobRegistry,
        FinishedJobRegistry,
        ScheduledJobRegistry,
        StartedJobRegistry,
    )

    queue = django_rq.get_queue("default")
    kinds = (ScheduledJobRegistry, StartedJobRegistry, FinishedJobRegistry, FailedJobRegistry)
    return [kind(queue=queue) for kind in kinds]


def track_new_task(client, sandbox: Sandbox, **fields) -> str:
    """Make a task at the gateway and paste its id on the dashboard, as a user would."""
    task_id = sandbox.create_task(**fields)["id"]
    client.post("/", {"ids": task_id})
    return task_id


@dataclass
class Answer:
    """What the stub gateway sends for one path: a status, headers, and a body that is
    bytes or an iterable of byte chunks (sent with a pause between them)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | Iterable[bytes] = b"[]"
    pause: float = 0.0


class StubGateway:
    """A hostile or broken gateway on 127.0.0.1 over real HTTP, for the exact fault cases the
    sandbox has no switch for. It records every request it receives, headers included, so a
    test can prove what mjdash sent (or that it sent nothing at all)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: dict[str, Answer] = {}
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                stub.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers),
                     "body": body}
                )  # fmt: skip
                answer = next(
                    (a for prefix, a in stub.answers.items() if self.path.startswith(prefix)),
                    Answer(),
                )
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                chunks = [answer.body] if isinstance(answer.body, bytes) else answer.body
                if isinstance(answer.body, bytes) and "Content-Length" not in answer.headers:
                    self.send_header("Content-Length", str(len(answer.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for chunk in chunks:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        time.sleep(answer.pause)
                except OSError:
                    pass  # mjdash hung up, as it should on a bad answer
                self.close_connection = True

            do_GET = do_POST = do_PUT = do_HEAD = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path_prefix: str, answer: Answer) -> None:
        self.answers[path_prefix] = answer

    def sent(self, secret: str) -> bool:
        """Did any request carry `secret`, in any header or in its body?"""
        for request in self.requests:
            blob = repr(request["headers"]).encode() + request["body"]
            if secret.encode() in blob:
                return True
        return False

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    gateway = StubGateway()
    yield gateway
    gateway.close()
