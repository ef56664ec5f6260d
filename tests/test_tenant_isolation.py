"""Tenants never see each other: every tenant route, API object and websocket of tenant B
answers 404 to tenant A's administrator, for every method, and nothing changes.

The routes are enumerated from the URL configuration, so endpoints added later are covered.
"""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.urls import URLPattern

from apps.tenants.consumers import CLOSE_NOT_FOUND
from config.asgi import application
from config.routing import websocket_urlpatterns
from tests.conftest import api_client_for, page_client_for
from tests.snapshots import db_snapshot
from tests.urlmap import Route, example_values, tenant_routes

METHODS = ["get", "post", "put", "patch", "delete"]


def _values(world, slug_of=None):
    return example_values(world, slug_of)


def _client_for(route: Route, user):
    return api_client_for(user) if route.is_api else page_client_for(user)


def _request(client, method, url):
    return getattr(client, method)(url, data={}, content_type="application/json")


def test_the_enumeration_finds_the_tenant_routes():
    routes = {r.route for r in tenant_routes()}
    assert "t/<slug:tenant_slug>/" in routes
    assert "api/v1/t/<slug:tenant_slug>/members/<uuid:membership_id>/" in routes
    assert len(routes) >= 10


@pytest.mark.django_db
@pytest.mark.parametrize("route", tenant_routes(), ids=lambda r: r.route)
def test_another_tenants_routes_answer_404_and_change_nothing(route, tenant_a, tenant_b):
    url = route.build(_values(tenant_b))
    client = _client_for(route, tenant_a.admin.user)
    before = db_snapshot()
    for method in METHODS:
        response = _request(client, method, url)
        assert response.status_code == 404, (method, url, response.content[:300])
        if route.is_api:
            assert response.json()["error"]["code"] == "not_found"
    assert db_snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    "route", [r for r in tenant_routes() if len(r.params) > 1], ids=lambda r: r.route
)
def test_another_tenants_objects_under_my_tenant_answer_404(route, tenant_a, tenant_b):
    """My tenant's URL, the other tenant's object ids: the scope hides them."""
    url = route.build(_values(tenant_b, slug_of=tenant_a))
    client = _client_for(route, tenant_a.admin.user)
    before = db_snapshot()
    statuses = {method: _request(client, method, url).status_code for method in METHODS}
    assert set(statuses.values()) <= {404, 405}, (url, statuses)
    assert 404 in statuses.values(), (url, statuses)
    assert db_snapshot() == before


# Keywords that tie a websocket stream to one tenant: its slug, or a tenant-owned object whose
# consumer checks the caller against the object's tenant.
TENANT_KEYWORDS = {"tenant_slug", "job_id"}


def _websocket_tenant_routes():
    return [
        p
        for p in websocket_urlpatterns
        if TENANT_KEYWORDS & set(Route(str(p.pattern), p.callback, p.name).params)
    ]


def _session_cookie(user) -> bytes:
    client = page_client_for(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def _connect(path: str, cookie: bytes):
    communicator = WebsocketCommunicator(
        application, path, headers=[(b"cookie", cookie), (b"origin", b"http://testserver")]
    )
    connected, code = await communicator.connect(timeout=5)
    if connected and not await communicator.receive_nothing(timeout=0.5):
        # A consumer may accept and then close with its code (the job socket does, so that a
        # real client sees the code): that is a refusal too.
        first = await communicator.receive_output(timeout=5)
        if first["type"] == "websocket.close":
            connected, code = False, first.get("code")
    # Refused or not, end the application inside this event loop (see test_tenant_events).
    await communicator.disconnect()
    return connected, code


def test_every_websocket_route_is_tenant_scoped():
    # A websocket stream not tied to a tenant by its route would need its own isolation test.
    assert all(isinstance(p, URLPattern) for p in websocket_urlpatterns)
    assert len(_websocket_tenant_routes()) == len(websocket_urlpatterns)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pattern", _websocket_tenant_routes(), ids=lambda p: str(p.pattern))
def test_another_tenants_websockets_are_refused(pattern, tenant_a, tenant_b):
    route = Route(route=str(pattern.pattern), callback=pattern.callback, name=pattern.name)
    cookie = _session_cookie(tenant_a.admin.user)
    before = db_snapshot()
    connected, code = async_to_sync(_connect)(route.build(_values(tenant_b)), cookie)
    assert (connected, code) == (False, CLOSE_NOT_FOUND)
    # The same user does reach the same stream of their own tenant.
    connected, _ = async_to_sync(_connect)(route.build(_values(tenant_a)), cookie)
    assert connected is True
    assert db_snapshot() == before
