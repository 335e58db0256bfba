"""The sandbox gateway as the benchmarks start it: a subprocess on a free loopback port,
with one gateway user ("bench") whose token is TOKEN."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "sk-bench000000000000000000000000000000000000000"


def start_sandbox(data_dir: str) -> tuple[subprocess.Popen, str]:
    """The running sandbox and its URL; its drawn images go under `data_dir`/images."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", "0", "--token", f"{TOKEN}=bench",
         "--image-dir", str(Path(data_dir) / "images")],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        raise RuntimeError(f"the sandbox did not start: {line!r}")
    return process, line.split("listening on ", 1)[1].split()[0]
