"""Coalescing holds across processes: two mjdash servers, several tabs each, one upstream call
per refresh interval. Runs on SQLite (a shared file), and on the scale-out path (PostgreSQL,
with and without Redis) where those servers are reachable."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest

from tests.conftest import ALICE_TOKEN, ROOT, wait_until

INTERVAL = 2
POLL_FOR = 5.0
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/15"


def reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.sqlite3'}"
        return
    if not reachable("127.0.0.1", 5432):
        pytest.skip("no PostgreSQL on 127.0.0.1:5432 (the scale-out path needs one)")
    import psycopg

    name = f"mjdash_scale_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url(request):
    if not request.param:
        return ""
    if not reachable("127.0.0.1", 6379):
        pytest.skip("no Redis on 127.0.0.1:6379 (the scale-out path needs one)")
    import redis

    redis.Redis.from_url(REDIS).flushdb()
    return REDIS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def logged_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10)
    client.get("/accounts/login/")
    client.post(
        "/accounts/login/",
        data={"username": "demo", "password": "demo-password",
              "csrfmiddlewaretoken": client.cookies["csrftoken"]},
    )  # fmt: skip
    assert client.get("/").status_code == 200
    return client


@pytest.mark.parametrize(
    "database_url, redis_url",
    [("sqlite", ""), ("postgres", ""), ("postgres", "redis")],
    indirect=True,
    ids=["sqlite", "postgres", "postgres+redis"],
)
def test_two_server_processes_make_one_upstream_call_per_interval(
    sandbox, tmp_path, database_url, redis_url
):
    env = {
        **os.environ,
        "DEBUG": "True",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MJDASH_TASK_QUEUE": "rq" if redis_url else "db",  # the queue goes where Redis is
        "MJDASH_DATA_DIR": str(tmp_path),
        "MJDASH_GATEWAY_URL": sandbox.url,
        "MJDASH_GATEWAY_TOKEN": ALICE_TOKEN,
        "MJDASH_REFRESH_SECONDS": str(INTERVAL),
        "DJANGO_SETTINGS_MODULE": "mjdash.settings",
    }
    ids = [sandbox.create_task(step_seconds=600, age_seconds=601)["id"] for _ in range(30)]
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"tasks": [{"id": i} for i in ids]}))
    manage(env, "migrate", "--noinput")
    assert "30 tasks tracked" in manage(env, "seed_demo", str(seed))

    servers, bases = [], []
    try:
        for _ in range(2):
            port = free_port()
            servers.append(subprocess.Popen(
                [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            wait_until(lambda base=base: reachable("127.0.0.1", int(base.rsplit(":", 1)[1])))
        tabs = [logged_in(base) for base in bases for _ in range(3)]  # 3 tabs per server

        polls = []
        stop = time.monotonic() + POLL_FOR

        def poll(tab: httpx.Client) -> None:
            while time.monotonic() < stop:
                response = tab.get("/tasks/list/", headers={"HX-Request": "true"})
                assert response.status_code == 200
                polls.append(1)
                time.sleep(0.05)

        sandbox.reset_stats()
        threads = [threading.Thread(target=poll, args=(tab,)) for tab in tabs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)

    calls = sandbox.stats().get("list_by_condition", 0)
    allowed = math.ceil(POLL_FOR / INTERVAL) + 1
    print(f"2 processes x 3 tabs, {POLL_FOR}s: {len(polls)} polls -> {calls} upstream calls")
    assert len(polls) > 40
    assert 1 <= calls <= allowed, f"{calls} upstream calls for {len(polls)} polls"
