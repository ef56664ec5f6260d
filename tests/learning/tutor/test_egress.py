"""The tutor's endpoint may not point into the server's own network (server-side request
forgery): refused when saved (after DNS resolution) and again when connecting (so a name that
resolves elsewhere later cannot slip through), unless a platform administrator allow-lists the
host (TUTOR_ENDPOINT_ALLOWED_HOSTS)."""

import asyncio
import socket
from types import SimpleNamespace

import pytest
from django_scopes import scopes_disabled

from apps.learning.models import TutorSettings
from apps.learning.tutor import OpenAICompatibleTutor, TutorRequest, TutorUnavailable
from apps.learning.tutor.egress import address_refusal
from tests.conftest import api_client_for, page_client_for
from tests.learning.tutor.test_socket import ask
from tests.learning.tutor.test_socket import world as world
from tests.snapshots import db_snapshot

URL = "/api/v1/t/alpha/tutor/settings/"
ADVICE = (
    "A platform administrator can allow-list a host on your own network "
    "(TUTOR_ENDPOINT_ALLOWED_HOSTS)."
)
PUBLIC = "93.184.215.14"  # a public address (no DNS needed: it resolves to itself)


def _refused(host_says: str) -> str:
    return f"The tutor may not connect to this endpoint: {host_says}. {ADVICE}"


def _put(client, endpoint_url: str):
    body = {"endpoint_url": endpoint_url, "model": "m", "api_key": "sk-x", "tokens_per_month": 9}
    return client.put(URL, body, format="json")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("endpoint_url", "says"),
    [
        ("http://127.0.0.1:8000/v1", "its host 127.0.0.1 is a loopback address"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "its host 169.254.169.254 is a cloud metadata address",
        ),
        ("http://[::1]:5432/", "its host ::1 is a loopback address"),
        ("http://10.0.0.1/v1", "its host 10.0.0.1 is a private address"),
        ("http://192.168.1.20:11434/v1", "its host 192.168.1.20 is a private address"),
        ("http://169.254.10.1/v1", "its host 169.254.10.1 is a link-local address"),
        ("http://[fd12:3456::1]/v1", "its host fd12:3456::1 is a unique-local address"),
        ("http://[::ffff:127.0.0.1]/v1", "its host ::ffff:127.0.0.1 is a loopback address"),
        ("http://0.0.0.0:8000/v1", "its host 0.0.0.0 is the unspecified address"),
        ("http://224.0.0.1/v1", "its host 224.0.0.1 is a multicast address"),
        (
            "http://localhost:11434/v1",
            "its host localhost resolves to 127.0.0.1, a loopback address",
        ),
    ],
)
def test_saving_an_endpoint_on_a_non_public_address_is_refused_and_changes_nothing(
    tenant_a, endpoint_url, says
):
    admin = api_client_for(tenant_a.admin.user)
    before = db_snapshot()
    response = _put(admin, endpoint_url)
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"endpoint_url": [_refused(says)]}
    assert db_snapshot() == before


@pytest.mark.django_db
def test_the_settings_page_shows_the_refusal_on_the_field_and_saves_nothing(tenant_a):
    client = page_client_for(tenant_a.admin.user)  # logging in writes last_login
    before = db_snapshot()
    response = client.post(
        "/t/alpha/tutor/",
        {"endpoint_url": "http://169.254.169.254/v1", "model": "m", "tokens_per_month": "5"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "endpoint_url": [_refused("its host 169.254.169.254 is a cloud metadata address")]
    }
    assert db_snapshot() == before


@pytest.mark.django_db
def test_a_name_that_does_not_resolve_is_refused(tenant_a):
    admin = api_client_for(tenant_a.admin.user)
    before = db_snapshot()
    response = _put(admin, "http://tutor.no-such-host.invalid/v1")
    assert response.status_code == 400
    [message] = response.json()["error"]["fields"]["endpoint_url"]
    assert message.startswith(
        "The tutor may not connect to this endpoint: its host tutor.no-such-host.invalid does "
        "not resolve ("
    )
    assert db_snapshot() == before


@pytest.mark.django_db
def test_a_public_address_or_an_allow_listed_host_is_saved(tenant_a, settings):
    admin = api_client_for(tenant_a.admin.user)
    assert _put(admin, f"http://{PUBLIC}/v1").status_code == 200
    settings.TUTOR_ENDPOINT_ALLOWED_HOSTS = ["127.0.0.1", "LLM.School.Internal"]
    for url in ("http://127.0.0.1:8000/v1", "http://llm.school.internal:8000/v1"):
        response = _put(admin, url)
        assert (response.status_code, response.json()["endpoint_url"]) == (200, url)
    with scopes_disabled():
        assert TutorSettings.objects.get(tenant=tenant_a.tenant).endpoint_url == url


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        (PUBLIC, None),
        ("2606:4700:4700::1111", None),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("100.64.0.1", "a reserved, non-public address"),
        ("fe80::1%eth0", "a link-local address"),
        ("ff02::1", "a multicast address"),
        ("::", "the unspecified address"),
        ("172.16.0.1", "a private address"),
    ],
)
def test_address_refusal(address, reason):
    assert address_refusal(address) == reason


def _answer(tutor):
    async def consume():
        return [event async for event in tutor.answer(TutorRequest("What is ReLU?", []))]

    return asyncio.run(consume())


def test_the_connection_itself_refuses_a_name_that_resolves_to_loopback(standin, settings):
    """The check at connect time, on its own: no saved settings, nothing allow-listed, and a
    name (localhost) that resolves to the stand-in's loopback address."""
    tutor = OpenAICompatibleTutor(f"http://localhost:{standin.port}/v1", "m", "sk-x", timeout=5)
    with pytest.raises(TutorUnavailable) as excinfo:
        _answer(tutor)
    assert excinfo.value.kind == "connection"
    assert str(excinfo.value) == (
        f"The tutor's model server at http://localhost:{standin.port}/v1 could not be reached "
        "(ConnectError: refused to connect to localhost (127.0.0.1): a loopback address, not "
        "allow-listed)."
    )
    assert standin.requests == []
    # Allow-listed, the same name is reached.
    allowed = OpenAICompatibleTutor(
        f"http://localhost:{standin.port}/v1", "m", "sk-x", timeout=5, allowed_hosts=["localhost"]
    )
    assert len(_answer(allowed)) == 4  # three chunks and the end
    assert len(standin.requests) == 1


@pytest.fixture
def rebinding_dns(monkeypatch):
    """DNS for one name, rebind.test, as a rebinding attacker runs it: a public address until
    `rebound` is set (after the settings are saved), loopback from then on. The one stand-in
    here is for DNS, outside the project; every other name resolves as usual."""
    real = socket.getaddrinfo
    dns = SimpleNamespace(rebound=False, lookups=[])

    def getaddrinfo(host, port, *args, **kwargs):
        if (host.decode() if isinstance(host, bytes) else host) != "rebind.test":  # anyio: bytes
            return real(host, port, *args, **kwargs)
        address = "127.0.0.1" if dns.rebound else PUBLIC
        dns.lookups.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return dns


@pytest.mark.django_db(transaction=True)
def test_a_rebinding_name_saved_as_public_is_refused_when_the_tutor_connects(
    world,
    standin,
    settings,
    rebinding_dns,
):
    settings.TUTOR_ENDPOINT_ALLOWED_HOSTS = []
    endpoint = f"http://rebind.test:{standin.port}/v1"
    response = _put(api_client_for(world.admin.user), endpoint)
    assert (response.status_code, response.json()["endpoint_url"]) == (200, endpoint)
    assert rebinding_dns.lookups == [PUBLIC]  # checked when saved
    rebinding_dns.rebound = True
    [messages] = ask(world.learner.user, "Why do I need ReLU to learn XOR?")
    [notice] = [m for m in messages if m["type"] == "notice"]
    assert (
        "could not be reached (ConnectError: refused to connect to rebind.test (127.0.0.1): a "
        "loopback address, not allow-listed)" in notice["message"]
    )
    assert standin.requests == []  # the chat and its key never left
    assert messages[-1]["type"] == "done"  # answered from the lessons instead
    assert rebinding_dns.lookups[1:] == ["127.0.0.1"]  # checked again when connecting
