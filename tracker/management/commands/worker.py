"""`python manage.py worker`: the one background process a deployment needs (the Procfile's
`worker:` line). It runs the refresh loop (tracker/worker.py) and, beside it, the task
queue's own worker as a child process for the archive and notification jobs. SIGTERM stops
both; a dead child stops the loop too, so the process manager restarts the pair."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tracker.worker import Loop

PR_SET_PDEATHSIG = 1


def queue_worker_argv() -> list[str]:
    """The command line of the task queue's worker for the configured backend: django-rq's
    for RQ (its scheduler runs the jobs queued for later; among several workers one holds
    it), else django-tasks-db's."""
    manage = str(settings.BASE_DIR / "manage.py")
    if settings.MJDASH_TASK_QUEUE == "rq":
        return [sys.executable, manage, "rqworker", "default", "--with-scheduler"]
    return [
        sys.executable,
        manage,
        "db_worker",
        "--interval",
        "1",
        "--no-reload",
        "--verbosity",
        "0",
    ]


def _die_with_parent() -> None:
    """In the child, before it runs: end when the worker dies, even by SIGKILL (Linux)."""
    # Elsewhere than Linux the child outlives a killed parent, as any supervisor child would.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Command(BaseCommand):
    help = "Keep every tracked task current and run the queued jobs (refresh loop + queue)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--tick", type=float, default=1.0, help="Seconds between passes.")
        parser.add_argument("--no-queue", action="store_true", help="Run the refresh loop alone.")

    def handle(self, *args, tick: float = 1.0, no_queue: bool = False, **options) -> None:
        child = None
        if not no_queue:
            child = subprocess.Popen(queue_worker_argv(), preexec_fn=_die_with_parent)
        loop = Loop(tick=tick, healthy=lambda: child is None or child.poll() is None)
        try:
            loop.run()
        finally:
            if child is not None:
                _stop(child)
        if (
            child is not None
            and child.returncode not in (0, -signal.SIGTERM)
            and (not loop.stopping.is_set())
        ):
            raise CommandError(f"the queue worker stopped (exit {child.returncode})")


def _stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
