"""The background loop that keeps every tracked task current with no browser open.

Each tick asks the gateway service to refresh every gateway that is due (one shared,
leased, batched refresh: the same one a page's poll uses when no worker runs), beats the
heartbeat that tells pages to leave the asking to it, and now and then queues again the
archive jobs and the notifications a dead worker lost. SIGTERM or SIGINT ends it between
ticks: the refresh under way finishes (every gateway call has its deadline), and its beat is
removed so pages take over at once.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections

from . import archive, gateway, heartbeat, notify

log = logging.getLogger(__name__)


class Loop:
    def __init__(self, tick: float = 1.0, healthy: Callable[[], bool] = lambda: True) -> None:
        self.tick = tick
        self.healthy = healthy  # False ends the loop (e.g. the queue worker beside it died)
        self.stopping = threading.Event()
        self.name = heartbeat.name()
        self._last_beat = 0.0

    def stop(self, *_signal) -> None:
        self.stopping.set()

    def run(self) -> None:
        """Until SIGTERM/SIGINT (or stop()): a tick, then a pause of `tick` seconds."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.stop)
        log.info("refresh loop %s started", self.name)
        try:
            while not self.stopping.is_set() and self.healthy():
                close_old_connections()  # a restarted database or an old connection heals
                self.once()
                self.stopping.wait(self.tick)
        finally:
            heartbeat.stop(self.name)
            log.info("refresh loop %s stopped", self.name)

    def once(self) -> int:
        """One tick: beat, refresh what is due, sweep lost archive jobs and notifications
        (each at most once a minute; across processes too where the cache is shared). Returns
        how many gateways were refreshed. An error here is logged; the next tick tries again."""
        try:
            self._beat()
            refreshed = gateway.refresh_all_due()
            archive.sweep()
            notify.sweep()
            return refreshed
        except Exception:
            log.exception("the refresh loop's tick failed; trying again in %ss", self.tick)
            return 0

    def _beat(self) -> None:
        now = time.monotonic()
        if now - self._last_beat >= settings.MJDASH_WORKER_BEAT_SECONDS:
            heartbeat.beat(self.name)
            self._last_beat = now
