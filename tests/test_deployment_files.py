"""The Procfile names the processes a deployment runs, and each line works as it is written:
the web line serves the site through gunicorn, and the worker line alone keeps a tracked task
current and archives it, with nobody polling."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, database_url, wait_until
from tests.test_scale_out import free_port, reachable
from tests.test_sec6_accounts_deployment import assert_passes_the_deploy_check, production_block

BIN = Path(sys.executable).parent


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    entries = [re.fullmatch(r"([a-z][a-z0-9_-]*):\s*(\S.*)", line) for line in lines if line]
    assert all(entries), "every Procfile line is 'name: command'"
    return {m.group(1): m.group(2) for m in entries}


def argv(line: str, **env: str) -> list[str]:
    """The line as a shell would run it with `env`: $VAR and ${VAR:-default} filled in,
    python and the tools found in this environment."""
    env = {**os.environ, **env}
    line = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1), m.group(2)), line)
    words = shlex.split(re.sub(r"\$(\w+)", lambda m: env.get(m.group(1), ""), line))
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    assert (BIN / words[0]).exists(), f"{words[0]} is not installed (is it in pyproject.toml?)"
    return [str(BIN / words[0]), *words[1:]]


def test_the_procfile_names_a_web_and_a_worker_process():
    processes = procfile()
    assert set(processes) == {"web", "worker"}
    assert processes["web"].startswith("gunicorn mjdash.wsgi ")
    assert "$PORT" in processes["web"] or "${PORT" in processes["web"]
    assert processes["worker"] == "python manage.py worker"


def test_each_procfile_command_exists():
    from django.core.management import get_commands

    for name, line in procfile().items():
        words = argv(line)
        if words[0] == sys.executable:
            assert words[1] == "manage.py" and words[2] in get_commands(), name
        else:
            check = subprocess.run(
                [*words, "--check-config"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
            )  # fmt: skip
            assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.django_db(transaction=True)
def test_the_web_line_serves_the_site_through_gunicorn(sandbox):
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    web = subprocess.Popen(
        argv(procfile()["web"], PORT=str(port)), cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: web.poll() is not None or reachable("127.0.0.1", port), timeout=30)
        assert web.poll() is None, web.stderr.read()
        page = httpx.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=10)
        assert page.status_code == 200 and 'name="password"' in page.text
    finally:
        web.send_signal(signal.SIGTERM)  # gunicorn's graceful stop
        assert web.wait(timeout=30) == 0


def test_the_scaled_out_environment_passes_the_deploy_check(tmp_path):
    """The README's second set-up (PostgreSQL, Redis for the cache, the sessions and the RQ
    queue) is a valid production configuration too."""
    assert_passes_the_deploy_check(tmp_path, {**production_block(), **scaled_block()})


def scaled_block() -> dict[str, str]:
    """The variables the README's "Past one box" adds to the production environment."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Past one box", 1)[1]
    block = re.search(r"```\w*\n(.*?)\n\s*```", section, re.S).group(1)
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    values = dict(line.split("=", 1) for line in lines if line)
    assert values["MJDASH_TASK_QUEUE"] == "rq" and values["REDIS_URL"].startswith("redis://")
    return values
