"""The background loop that keeps every tracked task current with no browser open.

Each tick beats the heartbeat that tells pages to leave the asking to it, hands every gateway
that is due and not already being asked to a pool of threads (the gateway service's shared,
leased, batched refresh: the same one a page's poll uses when no worker runs), and now and
then queues again the archive jobs and the notifications a dead worker lost. A tick never
waits for a gateway: a slow one holds one thread until its deadline, never the others.
SIGTERM or SIGINT ends it between ticks: the refreshes under way finish (every gateway call
has its deadline), and its beat is removed so pages take over at once.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, connection

from . import archive, gateway, heartbeat, notify

log = logging.getLogger(__name__)
THREADS = 8  # gateways asked at once; one slow gateway holds one of them, up to its deadline


class Loop:
    def __init__(self, tick: float = 1.0, healthy: Callable[[], bool] = lambda: True) -> None:
        self.tick = tick
        self.healthy = healthy  # False ends the loop (e.g. the queue worker beside it died)
        self.stopping = threading.Event()
        self.name = heartbeat.name()
        self._last_beat = 0.0
        self._pool: ThreadPoolExecutor | None = None
        self._asking: dict[int, Future] = {}  # gateway id -> its refresh under way

    def stop(self, *_signal) -> None:
        self.stopping.set()

    def run(self) -> None:
        """Until SIGTERM/SIGINT (or stop()): a tick, then a pause of `tick` seconds."""
        if threading.current_thread() is threading.main_thread():  # (a test runs it in another)
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self.stop)
        log.info("refresh loop %s started", self.name)
        self._pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="refresh")
        try:
            while not self.stopping.is_set() and self.healthy():
                close_old_connections()  # a restarted database or an old connection heals
                self.tick_once()
                self.stopping.wait(self.tick)
        finally:
            self._pool.shutdown(wait=True)  # each refresh under way ends by its deadline
            heartbeat.stop(self.name)
            log.info("refresh loop %s stopped", self.name)
            if threading.current_thread() is not threading.main_thread():
                connection.close()  # a loop run in a thread leaves no connection behind

    def tick_once(self) -> int:
        """One tick of the running loop: hand each due gateway that is not being asked
        already to the pool, without waiting for any. Returns how many it handed out."""
        return self._pass(self._hand_out)

    def once(self) -> int:
        """A single pass, waited for (refresh_tasks --once). Returns how many gateways were
        refreshed."""
        return self._pass(gateway.refresh_all_due)

    def _pass(self, refresh: Callable[[], int]) -> int:
        """Beat, refresh, sweep lost archive jobs and notifications (each at most once a
        minute; across processes too where the cache is shared). An error is logged, and the
        next tick tries again."""
        try:
            self._beat()
            count = refresh()
            archive.sweep()
            notify.sweep()
            return count
        except Exception:
            log.exception("the refresh loop's tick failed; trying again in %ss", self.tick)
            return 0

    def _hand_out(self) -> int:
        self._asking = {g: f for g, f in self._asking.items() if not f.done()}
        handed = [g for g in gateway.due_gateway_ids() if g not in self._asking]
        for gateway_id in handed:
            self._asking[gateway_id] = self._pool.submit(gateway.refresh_one, gateway_id)
        return len(handed)

    def _beat(self) -> None:
        now = time.monotonic()
        if now - self._last_beat >= settings.MJDASH_WORKER_BEAT_SECONDS:
            heartbeat.beat(self.name)
            self._last_beat = now
