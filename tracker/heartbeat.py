"""Whether a background worker keeps the tasks current. A running worker writes its beat
every few seconds; while one has beaten lately, pages only read the database and never wait
on a gateway. A worker that stops cleanly removes its beat at once; one that dies is taken
for dead once its beat is MJDASH_WORKER_BEAT_SECONDS × 3 old."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import WorkerBeat


def name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


def beat(who: str) -> None:
    now = timezone.now()
    WorkerBeat.objects.update_or_create(name=who, defaults={"beat_at": now})
    WorkerBeat.objects.filter(beat_at__lt=now - timedelta(days=1)).delete()  # long dead


def stop(who: str) -> None:
    WorkerBeat.objects.filter(name=who).delete()


def worker_alive() -> bool:
    recent = timezone.now() - timedelta(seconds=3 * settings.MJDASH_WORKER_BEAT_SECONDS)
    return WorkerBeat.objects.filter(beat_at__gte=recent).exists()
