"""Load test past one box: 2 web processes and 2 workers on PostgreSQL and Redis, 50 users with
200 tracked tasks each, 2 open tabs per user polling, for 60 s. Loopback only; it stops by
itself (bounded in users, tasks, time and every wait) and cleans up what it made.

    bin/bench            (or: .venv/bin/python bench/load_bench.py)

What runs: the sandbox gateway; a throwaway PostgreSQL database and Redis database 12 (cache,
sessions and the RQ queue); 2 web processes, each the Procfile's `web:` line (gunicorn, one
process of 8 threads, as two boxes behind a load balancer would run it); 2 workers, each the
Procfile's `worker:` line (`manage.py worker`: the refresh loop plus an RQ worker).

Users and gateways: users 0-24 use the site's shared gateway and token (one gateway user at
the sandbox holding 5,000 tasks); users 25-49 each bring their own token (25 more gateway
users of 200 tasks). That is 26 gateway+token pairs; MJDASH_LIST_CHUNK is 100, so one
refresh of everything is 50 + 25x2 = 100 list-by-condition calls.

Tasks advance with the sandbox's clock. Of each user's 200, 10 finish at some moment during
the run (10 of these 500 succeed, the others fail: each success is archived, and the sandbox
draws a 2048 px grid for it, which on two shared cores would otherwise swamp what is measured);
the other 190 move through their progress steps (a change every 22-30 s, so none drops to the
slow lane) and are still running at the end. The machine's load average is printed with the
figures: on a shared machine the latencies say as much about the neighbours as about mjdash.

Each of the 100 tabs polls the dashboard's poll URL (/tasks/list/, as htmx sends it) every 3 s,
one tab of each user on each web process, and stops if it is told to (286), as htmx does.

It prints, each beside its target:
- gateway refreshes per gateway+token per interval (1), and list-by-condition calls;
- poll latency p50 and p95, and errors (0);
- tasks lost or left behind (0): every task finished at the sandbox is finished in the
  database at the end (after at most two intervals), with the same status;
- tasks asked twice within one interval (0), from the sandbox's log of which IDs each call
  asked for, when and from which client port; and which process made each call and each
  refresh (the ports matched to the processes through /proc): the workers only, each
  refresh by one of them.
Exit status 1 when a target is missed, 2 when PostgreSQL or Redis cannot be had.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.launch import start, stop  # noqa: E402

USERS, TASKS_EACH, TABS_EACH = 50, 200, 2
LEAD = 45.0  # seconds from the sandbox's start to the polls' (seeding, starting processes)
SHARED_USERS = 25  # the first 25 on the site's gateway; the others bring their own token
FINISH_EACH = 10  # tasks of each user that finish during the run; the rest keep running
SUCCEED_EVERY = 5  # one of them succeeds for every 5th user, the others fail (see below)
WEB, WORKERS = 2, 2
POLL_EVERY, DURATION = 3.0, 60.0
INTERVAL = 5  # MJDASH_REFRESH_SECONDS (the default)
CHUNK = 100  # MJDASH_LIST_CHUNK (the default)
STEPS = 7  # sandbox: inserted, SUBMITTED, 5 progress steps, then the outcome
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/12"  # kept for this load test, flushed before and after
LOG = ROOT / "data" / "load-bench.log"
SITE_TOKEN = "sk-loadsite00000000000000000000000000000000000"


def token_of(user: int) -> str:
    return SITE_TOKEN if user < SHARED_USERS else f"sk-load{user:04d}" + "0" * 36


def main() -> int:
    import psycopg
    import redis

    try:
        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
        redis.Redis.from_url(REDIS_URL, socket_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - any reason is printed as it is
        print(f"load test NOT RUN: PostgreSQL and Redis on 127.0.0.1 are needed ({exc})")
        return 2
    work = Path(tempfile.mkdtemp(prefix="mjdash-load-"))
    database = f"mjdash_load_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    redis.Redis.from_url(REDIS_URL).flushdb()
    processes: list[subprocess.Popen] = []
    sandbox = None
    try:
        os.environ.update(environment(database, work))
        manage("migrate", "--noinput", "-v0")
        manage("collectstatic", "--noinput", "-v0")
        seed, by_user, finishing = make_seed(work)
        sandbox, url = start("--seed", str(seed), "--image-dir", str(work / "images"))
        started = time.time()  # the sandbox placed its tasks relative to (just before) now
        os.environ["MJDASH_GATEWAY_URL"] = url
        return run(url, sandbox.pid, started, by_user, finishing, processes)
    finally:
        for process in processes:  # workers first (they were started last), then the web
            stop_process(process)
        if sandbox is not None:
            stop(sandbox)
        close_django()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        redis.Redis.from_url(REDIS_URL).flushdb()


def environment(database: str, work: Path) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "mjdash.settings",
        "DEBUG": "false",
        "SECRET_KEY": "load-test-only-" + "x" * 50,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{database}",
        "REDIS_URL": REDIS_URL,
        "MJDASH_TASK_QUEUE": "rq",
        "MJDASH_DATA_DIR": str(work),
        "MJDASH_GATEWAY_TOKEN": SITE_TOKEN,
        "MJDASH_ALLOW_PRIVATE_GATEWAYS": "true",  # every user's gateway is the loopback sandbox
        "MJDASH_REFRESH_SECONDS": str(INTERVAL),
        "MJDASH_LIST_CHUNK": str(CHUNK),
        "LOG_LEVEL": "WARNING",
    }


def make_seed(work: Path) -> tuple[Path, dict[int, list[str]], dict[str, tuple[float, str]]]:
    """The sandbox's seed: its gateway users and 10,000 tasks, placed relative to the moment
    it starts. Returns the file, each user's task IDs, and for the tasks that finish during
    the run, when (seconds after the sandbox's start) and how."""
    rng = random.Random(11)
    users: dict[str, list[str]] = defaultdict(list)
    tasks, by_user, finishing = [], defaultdict(list), {}
    next_id = int(time.time() * 1000) - 10_000_000
    for user in range(USERS):
        owner = "site" if user < SHARED_USERS else f"user{user}"
        token = token_of(user).removeprefix("sk-")
        if token not in users[owner]:
            users[owner].append(token)
        for n in range(TASKS_EACH):
            next_id += 1
            task_id = f"{next_id}{rng.randint(0, 999):03d}"
            by_user[user].append(task_id)
            if n < FINISH_EACH:  # finishes `at` s after the start, mid-run
                step = rng.uniform(8, 12)
                at = LEAD + rng.uniform(5, DURATION - 10)
                outcome = "SUCCESS" if n == 0 and user % SUCCEED_EVERY == 0 else "FAILURE"
                finishing[task_id] = (at, outcome)
            else:  # running throughout: a change every `step` s, the end well after the run
                step = rng.uniform(22, 30)
                at = rng.uniform(LEAD + DURATION + 3 * INTERVAL + 20, STEPS * step)
                outcome = "SUCCESS"
            tasks.append(
                {"id": task_id, "owner": owner, "step_seconds": round(step, 2),
                 "age_seconds": round(STEPS * step - at, 2), "outcome": outcome,
                 "prompt": f"load {user}/{n}"}
            )  # fmt: skip
    seed = work / "load_seed.json"
    seed.write_text(json.dumps({"users": users, "tasks": tasks}))
    return seed, by_user, finishing


def run(url: str, sandbox_pid: int, started: float, by_user, finishing, processes) -> int:
    import django
    import httpx

    django.setup()
    print(f"load test: {USERS} users x {TASKS_EACH} tasks, {TABS_EACH} tabs each, polling every "
          f"{POLL_EVERY:.0f} s for {DURATION:.0f} s; {WEB} web processes, {WORKERS} workers; "
          "PostgreSQL + Redis + RQ")  # fmt: skip
    cookies = seed_database(by_user)
    print(f"   seeded in {time.time() - started:.0f} s")

    procfile = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    ports = [free_port() for _ in range(WEB)]
    for port in ports:
        processes.append(spawn(procfile["web"], PORT=str(port), WEB_CONCURRENCY="1"))
    for _ in range(WORKERS):
        processes.append(spawn(procfile["worker"]))
    ready(ports, processes)

    httpx.post(f"{url}/_sandbox/stats/reset").raise_for_status()
    labels = [f"web {n + 1}" for n in range(WEB)] + [f"worker {n + 1}" for n in range(WORKERS)]
    ports_of = PortSampler(
        {label: p.pid for label, p in zip(labels, processes, strict=True)},
        int(url.rsplit(":", 1)[1]),
    )
    ports_of.start()
    pids = {**ports_of.processes, "sandbox": sandbox_pid}
    cpu_before = cpu_seconds(pids)
    window_start = time.time()
    results = asyncio.run(poll_all(ports, cookies))
    window_end = time.time()
    cpu = {k: v - cpu_before[k] for k, v in cpu_seconds(pids).items()}
    left = settle(finishing, started, window_start, window_end)
    ports_of.stop()
    asked = httpx.get(f"{url}/_sandbox/asked", timeout=30).json()
    calls = httpx.get(f"{url}/_sandbox/stats").json()
    exits = [stop_process(p) for p in reversed(processes)]
    processes.clear()
    for call in asked:
        call["by"] = ports_of.owner.get(call["port"], "unattributed")
    failures = report(results, asked, calls, left, exits, window_start, window_end)
    print(f"5. CPU seconds while the tabs polled ({window_end - window_start:.0f} s, "
          f"{os.cpu_count()} cores):")  # fmt: skip
    print("   " + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items()))
    print(f"   load average at the end (1, 5, 15 min): {os.getloadavg()}")
    print("RESULT:", "all targets met" if not failures else "missed: " + ", ".join(failures))
    return 1 if failures else 0


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user and system) used so far by each process and its descendants, by this
    one alone (the tabs), and by the rest of the machine: PostgreSQL, Redis and whatever else
    runs here."""
    tick = os.sysconf("SC_CLK_TCK")
    own = os.times()
    used = {"load generator": own.user + own.system}
    for label, pid in pids.items():
        total = 0
        for member in [pid, *descendants(pid)]:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
                total += sum(int(x) for x in fields[11:15])  # utime, stime, children's too
        used[label] = total / tick
    cpu = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    busy = [x for i, x in enumerate(cpu) if i not in (3, 4, 8, 9)]  # not idle, iowait, guests
    used["rest of the machine"] = sum(int(x) for x in busy) / tick - sum(used.values())
    return used


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, check=True)


def spawn(line: str, **env: str) -> subprocess.Popen:
    """A Procfile line as a platform runs it: through the shell, with the environment and
    this virtualenv first on PATH. Their errors go to data/load-bench.log."""
    bin_dir = str(Path(sys.executable).parent)
    with LOG.open("a") as log:
        return subprocess.Popen(
            ["/bin/sh", "-c", f"exec {line.strip()}"], cwd=ROOT, start_new_session=True,
            env={**os.environ, **env, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip


def stop_process(process: subprocess.Popen) -> int:
    """SIGTERM, as a platform stops a process; SIGKILL to its group after 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(ports: list[int], processes: list[subprocess.Popen]) -> None:
    """Every web process answers and every worker has beaten, within 60 s."""
    import httpx

    from tracker.models import WorkerBeat

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise SystemExit(f"a process stopped at its start; see {LOG}")
        try:
            up = all(httpx.get(f"http://127.0.0.1:{p}/accounts/login/").is_success for p in ports)
        except httpx.HTTPError:
            up = False
        if up and WorkerBeat.objects.count() >= WORKERS:
            return
        time.sleep(0.5)
    raise SystemExit("the web processes or the workers did not come up within 60 s")


def seed_database(by_user: dict[int, list[str]]) -> list[str]:
    """The users, their gateways, their tracked tasks (tracked as a paste tracks them, through
    the gateway service), and one logged-in session each (the two tabs share it)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from tracker.gateway import track
    from tracker.models import Gateway, Profile

    cookies = []
    for user_no in range(USERS):
        user = get_user_model().objects.create_user(f"load{user_no}")
        if user_no >= SHARED_USERS:
            gateway = Gateway.for_values(settings.MJDASH_GATEWAY_URL, token_of(user_no), "bearer")
            Profile.objects.update_or_create(user=user, defaults={"gateway": gateway})
        result = track(user, "\n".join(by_user[user_no]))
        assert len(result.added) == TASKS_EACH, (user_no, len(result.added))
        browser = Client()
        browser.force_login(user)
        cookies.append(browser.cookies[settings.SESSION_COOKIE_NAME].value)
    return cookies


async def poll_all(ports: list[int], cookies: list[str]) -> list[tuple[float, int]]:
    """Every tab's polls for DURATION seconds: (seconds, status) each; status 0 is a
    connection error or a timeout."""
    import httpx

    results: list[tuple[float, int]] = []
    stop_at = time.monotonic() + DURATION

    async def tab(port: int, cookie: str) -> None:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", cookies={"sessionid": cookie}, timeout=10,
            limits=httpx.Limits(keepalive_expiry=1),  # gunicorn closes an idle one after 2 s
        ) as client:  # fmt: skip
            await asyncio.sleep(random.uniform(0, POLL_EVERY))  # tabs opened at any moment
            etag = None
            while time.monotonic() < stop_at:
                headers = {"HX-Request": "true"} | ({"If-None-Match": etag} if etag else {})
                begun = time.perf_counter()
                try:
                    response = await client.get("/tasks/list/", headers=headers)
                    status = response.status_code
                    etag = response.headers.get("ETag", etag)
                except httpx.HTTPError:
                    status = 0
                results.append((time.perf_counter() - begun, status))
                if status == 286:  # htmx stops polling: nothing unfinished on screen
                    return
                await asyncio.sleep(POLL_EVERY)

    await asyncio.gather(
        *(tab(ports[t % WEB], cookie) for cookie in cookies for t in range(TABS_EACH))
    )
    return results


def settle(finishing: dict, started: float, window_start: float, window_end: float) -> dict:
    """After the run, wait (at most two intervals and 10 s) until every task the sandbox had
    finished by the end of the run is finished in the database with the same status; then
    return what is still missing, left behind or different."""
    from tracker.models import TrackedTask

    due = {i: outcome for i, (at, outcome) in finishing.items() if started + at <= window_end}
    deadline = time.monotonic() + 2 * INTERVAL + 10
    while True:
        rows = dict(TrackedTask.objects.filter(task_id__in=due).values_list("task_id", "status"))
        behind = [i for i, outcome in due.items() if rows.get(i) != outcome]
        if not behind or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    tracked = TrackedTask.objects.count()
    late = TrackedTask.objects.filter(task_id__in=behind)
    return {
        "lost": [] if tracked == USERS * TASKS_EACH else [f"{USERS * TASKS_EACH - tracked} rows"],
        "behind": [i for i in behind if i in rows],
        "behind as": Counter(late.values_list("status", "gateway__shared")),
        "missing": [i for i in behind if i not in rows],
        "finished": list(due),
        "during": [i for i in due if started + finishing[i][0] >= window_start],
    }


class PortSampler(threading.Thread):
    """Which process each connection to the sandbox belongs to: every 0.1 s, the sockets of
    each process we started (and of its children, such as a worker's queue worker) are
    matched to /proc/net/tcp's local ports. The sandbox names the client's port of each call,
    so each call is put down to the process that made it. Linux only; elsewhere nothing is
    attributed."""

    def __init__(self, processes: dict[str, int], sandbox_port: int) -> None:
        super().__init__(daemon=True)
        self.processes, self.sandbox_port = processes, sandbox_port
        self.halt = threading.Event()
        self.owner: dict[int, str] = {}  # local port -> process label

    def run(self) -> None:
        while not self.halt.is_set():
            with contextlib.suppress(OSError):  # a process ended between two reads
                self.sample()
            self.halt.wait(0.1)

    def sample(self) -> None:
        inodes = {}
        for label, pid in self.processes.items():
            for member in [pid, *descendants(pid)]:
                fds = Path(f"/proc/{member}/fd")
                for fd in fds.iterdir() if fds.exists() else ():
                    try:
                        link = os.readlink(fd)
                    except OSError:
                        continue
                    if link.startswith("socket:["):
                        inodes[int(link[8:-1])] = label
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            lines = Path(table).read_text().splitlines()[1:] if Path(table).exists() else []
            for line in lines:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], int(fields[9])
                if int(remote.rsplit(":", 1)[1], 16) == self.sandbox_port and inode in inodes:
                    self.owner[int(local.rsplit(":", 1)[1], 16)] = inodes[inode]

    def stop(self) -> None:
        self.halt.set()
        self.join()


def descendants(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    found = [int(c) for c in children.read_text().split()] if children.exists() else []
    return found + [d for child in found for d in descendants(child)]


def refreshes(asked: list[dict]) -> dict[str, list[list[dict]]]:
    """Each gateway user's refreshes: its status calls from one process grouped into bursts
    (a refresh sends its chunks close together; that process's next one comes an interval
    later), in the order they began."""
    open_runs: dict[tuple[str, str], list[dict]] = {}
    bursts: dict[str, list[list[dict]]] = defaultdict(list)
    for call in sorted(asked, key=lambda c: c["at"]):
        key = (call["caller"], call["by"])
        run = open_runs.get(key)
        if run is None or call["at"] - run[-1]["at"] > INTERVAL / 2:
            open_runs[key] = run = []
            bursts[call["caller"]].append(run)
        run.append(call)
    return bursts


def overlapping(runs: list[list[dict]]) -> int:
    """How many of one gateway's refreshes ran while another process's was still asking."""
    spans = sorted((run[0]["at"], run[-1]["at"], run[0]["by"]) for run in runs)
    return sum(
        1
        for (_, end, by), (start, _, other) in zip(spans, spans[1:], strict=False)
        if start < end and other != by
    )


def report(results, asked, calls, left, exits, window_start, window_end) -> list[str]:
    failures = []
    seconds = window_end - window_start
    intervals = seconds / INTERVAL
    latencies = sorted(t for t, _ in results)
    statuses = Counter(s for _, s in results)
    errors = sum(n for s, n in statuses.items() if s == 0 or s >= 400)
    in_run = [c for c in asked if window_start <= c["at"] <= window_end]
    bursts = refreshes(in_run)
    per_gateway = {caller: len(runs) / intervals for caller, runs in bursts.items()}
    twice, asks = 0, defaultdict(list)
    for call in asked:
        for task_id in call["ids"]:
            asks[task_id].append(call["at"])
    gaps = []
    for times in asks.values():
        times.sort()
        gaps += [b - a for a, b in zip(times, times[1:], strict=False)]
    twice = sum(1 for gap in gaps if gap < INTERVAL / 2)
    in_window = [len([t for t in times if window_start <= t <= window_end]) for times in
                 asks.values()]  # fmt: skip

    print(f"1. gateway calls ({len(bursts)} gateway+token pairs, {seconds:.0f} s = "
          f"{intervals:.1f} intervals of {INTERVAL} s)")  # fmt: skip
    print(
        f"   list-by-condition calls:   {calls.get('list_by_condition', 0)} "
        f"({calls.get('list_by_condition', 0) / intervals:.1f} per interval; one refresh of "
        f"everything is {SHARED_USERS * TASKS_EACH // CHUNK + (USERS - SHARED_USERS) * 2})"
    )
    print(f"   single fetches:            {calls.get('fetch', 0)}")
    top = max(per_gateway.values(), default=0)
    print(
        f"   refreshes per gateway+token per interval: max {top:.2f}, mean "
        f"{statistics.fmean(per_gateway.values()) if per_gateway else 0:.2f}   target: <= 1"
    )
    others = [n for caller, n in per_gateway.items() if caller != "site"]
    print(f"   the shared gateway ({SHARED_USERS * TASKS_EACH} tasks): "
          f"{per_gateway.get('site', 0):.2f}; each own token ({TASKS_EACH} tasks): mean "
          f"{statistics.fmean(others) if others else 0:.2f}")  # fmt: skip
    if top > 1.0 + 1 / intervals:  # the run may cut an interval short
        failures.append("calls per interval")

    p50 = statistics.median(latencies) if latencies else float("nan")
    p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
    print(
        f"2. polls: {len(results)} from {USERS * TABS_EACH} tabs "
        f"({len(results) / seconds:.1f}/s); statuses {dict(sorted(statuses.items()))}"
    )
    print(
        f"   latency p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max "
        f"{latencies[-1] * 1000 if latencies else 0:.0f} ms"
    )
    print(f"   errors: {errors}   target: 0")
    if errors or not results:
        failures.append("errors")

    lost = len(left["lost"]) + len(left["missing"])
    print(
        f"3. tasks: {USERS * TASKS_EACH} tracked; {len(left['finished'])} finished at the "
        f"sandbox by the end ({len(left['during'])} while the tabs polled)"
    )
    print(f"   lost: {lost}   target: 0")
    print(
        f"   left behind (finished at the sandbox, not in the database): "
        f"{len(left['behind'])}   target: 0"
    )
    if left["behind"]:
        shown = {f"{status or 'queued'} ({'shared' if shared else 'own'} gateway)": n
                 for (status, shared), n in left["behind as"].items()}  # fmt: skip
        print(f"   what the database says of them: {shown}")
    if lost or left["behind"]:
        failures.append("tasks lost or left behind")

    print("4. workers")
    print(f"   tasks asked twice within one interval: {twice}   target: 0 (shortest time "
          f"between two asks of one task: {min(gaps, default=0):.1f} s)")  # fmt: skip
    print(
        f"   asks per task in the run: min {min(in_window, default=0)}, median "
        f"{statistics.median(in_window) if in_window else 0:.0f} "
        f"(about {intervals:.0f} for a task running throughout)"
    )
    by = Counter(call["by"] for call in in_run)
    by_worker = Counter(run[0]["by"] for runs in bursts.values() for run in runs)
    at_once = sum(overlapping(runs) for runs in bursts.values())
    from_web = sum(n for label, n in by.items() if label.startswith("web"))
    print(f"   status calls by process: {dict(sorted(by.items()))}   target: workers only")
    print(f"   refreshes by process: {dict(sorted(by_worker.items()))}; a gateway asked by two "
          f"at once: {at_once}   target: 0")  # fmt: skip
    print(f"   processes' exit after SIGTERM: {exits}   target: all 0")
    if twice or at_once or from_web:
        failures.append("each task asked by one worker once an interval")
    if any(exits):
        failures.append("clean stop")

    return failures


def close_django() -> None:
    try:
        from django.db import connections

        connections.close_all()
    except Exception:  # noqa: BLE001 - Django may never have started
        pass


if __name__ == "__main__":
    LOG.parent.mkdir(exist_ok=True)
    sys.exit(main())
