"""The sandbox gateway as the benchmarks start it: a subprocess on a free loopback port,
with one gateway user ("bench") whose token is TOKEN, and mjdash's site gateway set to it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sandbox.launch import start, stop  # noqa: E402

TOKEN = "sk-bench000000000000000000000000000000000000000"


def with_sandbox(data_dir: str, run: Callable[[str], int]) -> int:
    """`run(url)` against a sandbox started for it (its drawn images under `data_dir`), with
    MJDASH_GATEWAY_URL and _TOKEN pointing at it; the sandbox is stopped after, whatever
    happens."""
    process = None
    try:
        process, url = start("--token", f"{TOKEN}=bench", "--image-dir", f"{data_dir}/images")
        os.environ["MJDASH_GATEWAY_URL"] = url
        os.environ["MJDASH_GATEWAY_TOKEN"] = TOKEN
        return run(url)
    finally:
        if process is not None:
            stop(process)
