"""Start the sandbox as a program of its own, as the tests and the benchmarks do: a
subprocess on a free loopback port, talked to over HTTP like any gateway."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start(*args: str) -> tuple[subprocess.Popen, str]:
    """The running sandbox (with `args` after `--port 0`) and its URL, once it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", "0", *args],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        raise RuntimeError(f"the sandbox did not start: {line!r}")
    return process, line.split("listening on ", 1)[1].split()[0]


def stop(process: subprocess.Popen) -> None:
    """End it, and wait for it (killed if it will not go within 10 s)."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
