"""Accounts and deployment: login throttling, password reset only with mail, the production
settings pass Django's deploy check, forgiving booleans, key rotation, and a lock that
matches pyproject.toml."""

from __future__ import annotations

import importlib
import io
import os
import re
import subprocess
import sys
import tomllib
from datetime import timedelta
from unittest import mock

import pytest
from axes.models import AccessAttempt
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db.models import TextField
from django.db.models.functions import Cast
from django.test import Client, override_settings
from django.urls import clear_url_caches
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from mjdash.settings import envbool, envjson
from tests.conftest import PASSWORD, ROOT
from tracker.models import Gateway

LOCKED = "Too many failed attempts. Try again in 15 minutes."


def log_in(client: Client, username: str, password: str, path="/accounts/login/", **extra):
    return client.post(path, {"username": username, "password": password}, **extra)


def fail_logins(client: Client, username: str, times: int, path="/accounts/login/", **extra):
    for _ in range(times):
        response = log_in(client, username, "wrong-password", path, **extra)
    return response


def is_logged_in(client: Client) -> bool:
    return client.get("/").status_code == 200


# 1. Login throttling -----------------------------------------------------------------------


@pytest.mark.django_db
def test_forty_wrong_passwords_lock_the_account_even_against_the_right_one(client, alice):
    response = fail_logins(client, "alice", 40)
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert b'class="card narrow auth"' in response.content  # our own page, in our style

    response = log_in(client, "alice", PASSWORD)
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert not is_logged_in(client)


@pytest.mark.django_db
def test_a_few_typos_do_not_lock_anyone_out(client, alice):
    fail_logins(client, "alice", 4)
    assert log_in(client, "alice", PASSWORD).status_code == 302
    assert is_logged_in(client)


@pytest.mark.django_db
def test_the_lockout_is_for_that_user_from_that_address_only(alice, bob):
    attacker = Client(REMOTE_ADDR="10.0.0.1")
    assert fail_logins(attacker, "alice", 5).status_code == 429

    bob_same_address = Client(REMOTE_ADDR="10.0.0.1")
    assert log_in(bob_same_address, "bob", PASSWORD).status_code == 302
    assert is_logged_in(bob_same_address)

    alice_elsewhere = Client(REMOTE_ADDR="10.0.0.2")
    assert log_in(alice_elsewhere, "alice", PASSWORD).status_code == 302
    assert is_logged_in(alice_elsewhere)

    assert log_in(Client(REMOTE_ADDR="10.0.0.1"), "alice", PASSWORD).status_code == 429


@pytest.mark.django_db
def test_alice_gets_back_in_once_the_cool_off_has_passed(client, alice):
    fail_logins(client, "alice", 5)
    assert log_in(client, "alice", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert log_in(client, "alice", PASSWORD).status_code == 302
    assert is_logged_in(client)


@pytest.mark.django_db
def test_the_admin_login_is_throttled_too(client, admin_user):
    response = fail_logins(client, "admin", 5, path="/admin/login/")
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    response = log_in(client, "admin", "password", path="/admin/login/")
    assert response.status_code == 429
    assert client.get("/admin/").status_code == 302  # still sent to log in


@pytest.mark.django_db
def test_behind_a_proxy_each_client_counts_by_the_address_the_proxy_saw(settings, alice):
    settings.MJDASH_PROXY_COUNT = 1

    def via_proxy(forwarded_for: str) -> Client:
        return Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded_for)

    assert fail_logins(via_proxy("203.0.113.5"), "alice", 5).status_code == 429
    # The same stranger claiming another address first (the proxy appends the real one).
    assert log_in(via_proxy("198.51.100.9, 203.0.113.5"), "alice", PASSWORD).status_code == 429
    # Alice, at home, behind the same proxy.
    alice_home = via_proxy("198.51.100.7")
    assert log_in(alice_home, "alice", PASSWORD).status_code == 302
    assert is_logged_in(alice_home)


# 2. Password reset only where mail is configured -------------------------------------------


def reload_urls() -> None:
    import mjdash.urls

    importlib.reload(mjdash.urls)
    clear_url_caches()


@pytest.fixture
def mail_configured():
    locmem = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    with override_settings(MAILERS=locmem):
        reload_urls()
        yield
    reload_urls()


@pytest.mark.django_db
def test_without_mail_there_is_no_password_reset(client):
    assert b"Forgot your password?" not in client.get("/accounts/login/").content
    for path in [
        "/accounts/password_reset/",
        "/accounts/password_reset/done/",
        "/accounts/reset/MQ/set-password/",
        "/accounts/reset/done/",
    ]:
        assert client.get(path).status_code == 404, path


@pytest.mark.django_db
def test_with_mail_alice_resets_her_forgotten_password(client, alice, mail_configured):
    alice.email = "alice@example.com"
    alice.save()
    login_page = client.get("/accounts/login/").content.decode()
    assert '<a href="/accounts/password_reset/">Forgot your password?</a>' in login_page

    form = client.get("/accounts/password_reset/")
    assert b"Reset your password" in form.content
    assert b'class="card narrow auth"' in form.content
    response = client.post("/accounts/password_reset/", {"email": "alice@example.com"})
    assert response.status_code == 302
    assert b"Check your email" in client.get(response.url).content

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@example.com"]
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    set_password_page = client.get(link, follow=True)
    assert b"Choose a new password" in set_password_page.content
    new = "a-brand-new-long-password"
    done = client.post(
        set_password_page.redirect_chain[-1][0],
        {"new_password1": new, "new_password2": new},
        follow=True,
    )
    assert b"Your new password is set" in done.content

    assert log_in(client, "alice", new).status_code == 302
    assert is_logged_in(client)


# 3. The documented production settings pass `check --deploy` -------------------------------


def production_block() -> dict[str, str]:
    """The environment block under the README's "Running in production"."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Running in production", 1)[1]
    block = re.search(r"```\w*\n(.*?)\n\s*```", section, re.S).group(1)
    lines = [line.strip() for line in block.splitlines()]
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def assert_passes_the_deploy_check(tmp_path, environment: dict[str, str]) -> None:
    """`check --deploy --fail-level WARNING` under `environment` alone (and a key file)."""
    key = tmp_path / "secret-key"
    key.write_text("k" + os.urandom(40).hex())
    env = {"PATH": os.environ["PATH"], **environment, "SECRET_KEY_FILE": str(key)}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_documented_production_environment_passes_the_deploy_check(tmp_path):
    assert_passes_the_deploy_check(tmp_path, production_block())


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if re.match(r"[A-Z_]+=", line):
            name, rest = line.split("=", 1)
            values[name] = rest.split("#", 1)[0].strip()
    return values


def test_env_example_shows_the_same_production_values():
    example = env_example()
    for name, value in production_block().items():
        assert example.get(name) == value, name


def test_env_example_lists_every_variable_the_settings_read():
    source = (ROOT / "mjdash" / "settings.py").read_text(encoding="utf-8")
    reader = r"""(?:environ\.get\(|environ\[|env(?:bool|int|secret)\()"([A-Z_]+)"""
    read = set(re.findall(reader, source))
    assert read, "found no variables in settings.py"
    listed = env_example().keys()
    # A secret may be listed by its _FILE form (SECRET_KEY_FILE=...).
    assert sorted(n for n in read if n not in listed and f"{n}_FILE" not in listed) == []


# 4. Booleans take the usual spellings ------------------------------------------------------

TRUE, FALSE = ["true", "1", "yes", "on"], ["false", "0", "no", "off"]


def any_case(words: list[str]):
    return st.sampled_from(words).flatmap(
        lambda w: st.tuples(*(st.sampled_from([c.lower(), c.upper()]) for c in w)).map("".join)
    )


@given(true=any_case(TRUE), false=any_case(FALSE))
def test_booleans_take_the_usual_spellings_in_any_case(true, false):
    with mock.patch.dict(os.environ, {"FLAG_T": true, "FLAG_F": false}):
        assert envbool("FLAG_T", "False") is True
        assert envbool("FLAG_F", "True") is False


def test_anything_else_is_refused_with_a_clear_message():
    maybe = mock.patch.dict(os.environ, {"DEBUG": "maybe"})
    with maybe, pytest.raises(ImproperlyConfigured) as refusal:
        envbool("DEBUG", "False")
    assert str(refusal.value) == "DEBUG must be true or false (got 'maybe')"


@pytest.mark.parametrize("value", ["[1", '"a string"', "[]"])
def test_storage_options_that_are_no_json_object_are_refused_clearly(value):
    refused = pytest.raises(ImproperlyConfigured, match="MJDASH_ARCHIVE_OPTIONS must be a JSON")
    with mock.patch.dict(os.environ, {"MJDASH_ARCHIVE_OPTIONS": value}), refused:
        envjson("MJDASH_ARCHIVE_OPTIONS")
    with mock.patch.dict(os.environ, {"MJDASH_ARCHIVE_OPTIONS": '{"bucket_name": "b"}'}):
        assert envjson("MJDASH_ARCHIVE_OPTIONS") == {"bucket_name": "b"}


@pytest.mark.parametrize(("debug", "ok"), [("1", True), ("maybe", False)])
def test_the_site_starts_with_debug_1_and_refuses_debug_maybe(debug, ok, tmp_path):
    env = {"PATH": os.environ["PATH"], "DEBUG": debug, "MJDASH_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (result.returncode == 0) is ok, result.stderr
    if not ok:
        assert "DEBUG must be true or false (got 'maybe')" in result.stderr


# 5. rotate_keys --------------------------------------------------------------------------

KEY_A = "old-key-" + "a" * 50
KEY_B = "new-key-" + "b" * 50
KEY_LOST = "lost-key-" + "c" * 50
TOKEN = "sk-carol-token-0000000000000000000000000000000"
OTHER = "sk-dave-token-00000000000000000000000000000000"


def printed(out: io.StringIO, capsys, caplog) -> str:
    """Everything the command wrote: its own output, anything else on stdout and stderr, logs."""
    captured = capsys.readouterr()
    return out.getvalue() + captured.out + captured.err + caplog.text


def stored(connection: Gateway) -> str:
    """The token column as it is in the database."""
    row = Gateway.objects.annotate(raw=Cast("token", TextField()))
    return row.values_list("raw", flat=True).get(pk=connection.pk)


@pytest.mark.django_db
def test_rotating_the_key_keeps_tokens_readable_after_the_old_key_is_gone(settings, capsys, caplog):
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = KEY_A, []
    connection = Gateway.for_values("https://gw.example.com", TOKEN, "bearer")

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = KEY_B, [KEY_A]
    out = io.StringIO()
    call_command("rotate_keys", stdout=out)
    assert "Re-encrypted 1 stored token(s)" in out.getvalue()
    assert TOKEN not in printed(out, capsys, caplog)

    settings.SECRET_KEY_FALLBACKS = []
    assert Gateway.objects.get(pk=connection.pk).token == TOKEN


@pytest.mark.django_db
def test_a_token_no_key_opens_is_reported_and_left_untouched(settings, capsys, caplog):
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = KEY_LOST, []
    lost = Gateway.for_values("https://lost.example.com", OTHER, "bearer")
    settings.SECRET_KEY = KEY_A
    kept = Gateway.for_values("https://gw.example.com", TOKEN, "bearer")
    before = stored(lost)

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = KEY_B, [KEY_A]
    out = io.StringIO()
    call_command("rotate_keys", stdout=out)
    report = out.getvalue()
    assert "Re-encrypted 1 stored token(s)" in report
    assert "1 stored token(s) could not be opened" in report
    everything = printed(out, capsys, caplog)
    assert TOKEN not in everything and OTHER not in everything
    assert stored(lost) == before
    settings.SECRET_KEY_FALLBACKS = []
    assert Gateway.objects.get(pk=kept.pk).token == TOKEN


# 6. The lock covers what pyproject.toml declares -------------------------------------------


def test_the_lock_pins_every_declared_dependency_with_hashes():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = [
        *pyproject["project"]["dependencies"],
        *pyproject["project"]["optional-dependencies"]["postgres"],
        *pyproject["dependency-groups"]["test"],
        *pyproject["build-system"]["requires"],
    ]
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    pinned = {
        canonicalize_name(name): version
        for name, version in re.findall(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", lock, re.M)
    }
    assert pinned, "requirements.lock pins nothing"
    for spec in map(Requirement, declared):
        name = canonicalize_name(spec.name)
        assert name in pinned, f"{spec.name} is declared but not locked: run bin/lock"
        assert spec.specifier.contains(pinned[name], prereleases=True), (
            f"{spec} does not allow the locked {pinned[name]}: run bin/lock"
        )
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n", 2)[2])
    assert all("--hash=sha256:" in entry for entry in entries if "==" in entry)


def test_a_deployment_with_the_old_upstream_names_keeps_its_gateway(tmp_path):
    """The gateway settings were renamed; an existing environment must not lose its token."""
    env = {
        "PATH": os.environ["PATH"],
        "DEBUG": "true",
        "MJDASH_DATA_DIR": str(tmp_path),
        "MJDASH_UPSTREAM_URL": "https://old.example",
        "MJDASH_UPSTREAM_TOKEN": "sk-old",
        "MJDASH_ALLOW_PRIVATE_UPSTREAMS": "false",
    }
    script = (
        "from django.conf import settings as s; "
        "print(s.MJDASH_GATEWAY_URL, s.MJDASH_GATEWAY_TOKEN, s.MJDASH_ALLOW_PRIVATE_GATEWAYS)"
    )
    run = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {script}"],
        cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "mjdash.settings"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.stdout.split()[-3:] == ["https://old.example", "sk-old", "False"], run.stderr
