"""Security section 3: every outbound connection is checked after DNS resolution, at connect
time; Test connection maps no ports; one deadline covers every byte of an image."""

from __future__ import annotations

import socket
import threading

import pytest

from tests.conftest import BOB_TOKEN, Answer, use_gateway
from tracker.models import Profile, TrackedTask
from tracker.upstream import is_public

pytestmark = pytest.mark.django_db

NOT_PUBLIC = [
    "127.0.0.1", "10.0.0.8", "172.16.3.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fd00:ec2::254",
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a00:1", "::ffff:127.0.0.1",
    "::ffff:10.0.0.1", "2002:7f00:1::1", "2001:0:4136:e378:8000:63bf:80ff:fffe", "ff02::1",
    "::7f00:1", "::ffff:0:7f00:1", "fec0::1",
]  # fmt: skip
DONE = b'[{"id":"1732000000000001","status":"SUCCESS"}]'
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_loopback_private_link_local_cgnat_metadata_and_nat64_are_refused(address):
    assert not is_public(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert is_public(address)


def test_the_settings_form_refuses_a_nat64_loopback(alice_client, alice, settings):
    settings.MJDASH_ALLOW_PRIVATE_GATEWAYS = False
    page = alice_client.post("/settings/", {"base_url": "http://[64:ff9b::7f00:1]:8080"})
    assert "private or local address" in page.content.decode()
    assert "(127.0.0.1)" not in page.content.decode()  # the form maps none of our network
    assert not Profile.objects.filter(user=alice, gateway__isnull=False).exists()


def test_a_gateway_saved_earlier_is_not_called_once_private_gateways_are_off(
    bob_client, bob, sandbox, settings
):
    task = sandbox.create_task(token=BOB_TOKEN)["id"]
    use_gateway(bob, sandbox.url.replace("127.0.0.1", "localhost"), BOB_TOKEN)  # not the site's
    settings.MJDASH_ALLOW_PRIVATE_GATEWAYS = False
    sandbox.reset_stats()
    bob_client.post("/", {"ids": task})
    bob_client.post("/settings/test/")
    bob_client.get(f"/tasks/{task}/seed/")
    assert sum(sandbox.stats().values()) == 0
    assert "not a public address" in TrackedTask.objects.get(user=bob).last_error


def test_a_name_that_rebinds_to_loopback_after_the_form_is_refused_at_connect(
    alice_client, alice, stub, settings, monkeypatch
):
    """The form sees a public address; by the time mjdash connects, the name says 127.0.0.1."""
    settings.MJDASH_ALLOW_PRIVATE_GATEWAYS = False
    real = socket.getaddrinfo
    answers = iter(["93.184.216.34"])

    def rebinding(host, *args, **kwargs):
        if host == "rebind.example":
            address = next(answers, "127.0.0.1")
            return real(address, *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    url = f"http://rebind.example:{stub.port}"
    form = {"base_url": url, "token": "sk-x", "auth_style": "bearer"}
    response = alice_client.post("/settings/", form, follow=True)
    assert b"Saved." in response.content
    page = alice_client.post("/settings/test/", headers={"HX-Request": "true"}).content.decode()
    assert "not a public address" in page
    assert stub.requests == []


def listening_socket(answer):
    """A TCP port on 127.0.0.1 that answers connections with `answer(conn)`."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            answer(conn)

    threading.Thread(target=serve, daemon=True).start()
    return server


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_test_connection_says_could_not_connect_whatever_the_port_does(
    alice_client, alice, settings
):
    settings.MJDASH_GATEWAY_TIMEOUT = 1
    settings.MJDASH_GATEWAY_RETRIES = 0
    silent = listening_socket(lambda conn: None)  # accepts, never answers
    resets = listening_socket(lambda conn: conn.close())
    messages = set()
    for port in (closed_port(), silent.getsockname()[1], resets.getsockname()[1]):
        use_gateway(alice, f"http://127.0.0.1:{port}", "sk-probe")
        page = alice_client.post("/settings/test/", headers={"HX-Request": "true"})
        messages.add(page.content.decode().split('role="status"')[1].split("</p>")[0])
    silent.close()
    resets.close()
    assert len(messages) == 1, messages
    assert "Could not connect to the gateway." in messages.pop()


@pytest.mark.parametrize("pause", [0.001, 0.05])  # 1 byte a millisecond; 20 bytes a second
def test_one_deadline_covers_every_byte_of_an_image(alice_client, alice, stub, settings, pause):
    settings.MJDASH_IMAGE_TIMEOUT = 1
    png = b"\x89PNG\r\n\x1a\n" + bytes(5_000_000)
    drip = (png[i : i + 1] for i in range(len(png)))
    stub.answer("/mj/image/", Answer(headers={"Content-Type": "image/png"}, body=drip, pause=pause))
    stub.answer("/mj/task/list-by-condition", Answer(body=DONE))
    use_gateway(alice, stub.url, "sk-own")
    alice_client.post("/", {"ids": "1732000000000001"})
    response = alice_client.get("/mj/image/1732000000000001")
    outcome: list[str] = []

    def read() -> None:
        try:
            b"".join(response.streaming_content)
            outcome.append("finished")
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test checks
            outcome.append(str(exc))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=6)  # without the deadline the drip would take hours
    assert outcome and "took too long" in outcome[0]


def test_the_guard_dials_the_address_it_checked_not_the_name_again(monkeypatch):
    """Resolve once, check, connect to exactly that address: a name that answers public
    first and 127.0.0.1 a moment later never gets a second lookup."""
    import httpcore

    from tracker.upstream.guard import GuardedBackend

    real = socket.getaddrinfo
    answers = iter(["93.184.216.34"])
    dialled: list[str] = []

    def rebinding(host, *args, **kwargs):
        if host == "rebind.example":
            return real(next(answers, "127.0.0.1"), *args, **kwargs)
        return real(host, *args, **kwargs)

    def record(self, host, *args, **kwargs):
        dialled.append(host)
        raise httpcore.ConnectError("recorded, not dialled")

    with monkeypatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", rebinding)
        patch.setattr(httpcore.SyncBackend, "connect_tcp", record)
        with pytest.raises(httpcore.ConnectError):
            GuardedBackend(allow_private=False).connect_tcp("rebind.example", 80)
    assert dialled == ["93.184.216.34"]
