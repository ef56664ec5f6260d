"""The tenant events websocket: admins hear who joined, a member hears their role change."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django_scopes import scopes_disabled

from apps.tenants.consumers import CLOSE_FORBIDDEN, CLOSE_NOT_FOUND
from apps.tenants.models import Membership, Role
from config.asgi import application
from tests.conftest import api_client_for, free_port, page_client_for


def _communicator(user, slug, origin=b"http://testserver"):
    cookie = b""
    if user is not None:
        cookie = f"sessionid={page_client_for(user).cookies['sessionid'].value}".encode()
    return WebsocketCommunicator(
        application, f"/ws/t/{slug}/events/", headers=[(b"cookie", cookie), (b"origin", origin)]
    )


@pytest.mark.django_db(transaction=True)
def test_admins_hear_a_join_and_a_member_hears_their_role_change(tenant_a):
    admin_ws = _communicator(tenant_a.admin.user, "alpha")
    learner_ws = _communicator(tenant_a.learner.user, "alpha")
    admin_api = api_client_for(tenant_a.admin.user)

    def accept_invitation():
        return Client().post(
            f"/invite/{tenant_a.invitation_token}/", {"password": "a long passphrase 1234"}
        )

    def promote_learner():
        return admin_api.patch(
            f"/api/v1/t/alpha/members/{tenant_a.learner.id}/", {"role": "teacher"}, format="json"
        )

    # One event loop for the whole conversation: a communicator is bound to the loop it ran in.
    async def conversation():
        assert (await admin_ws.connect(timeout=5))[0]
        assert (await learner_ws.connect(timeout=5))[0]
        hello_admin = await admin_ws.receive_json_from(timeout=5)
        hello_learner = await learner_ws.receive_json_from(timeout=5)
        assert (await sync_to_async(accept_invitation)()).status_code == 302
        joined = await admin_ws.receive_json_from(timeout=5)
        assert (await sync_to_async(promote_learner)()).status_code == 200
        changed = await learner_ws.receive_json_from(timeout=5)
        assert await learner_ws.receive_nothing(timeout=0.2)
        await admin_ws.disconnect()
        await learner_ws.disconnect()
        return hello_admin, hello_learner, joined, changed

    hello_admin, hello_learner, joined, changed = async_to_sync(conversation)()
    assert hello_admin == {"type": "hello", "payload": {"role": "admin"}}
    assert hello_learner == {"type": "hello", "payload": {"role": "learner"}}
    assert joined == {
        "type": "membership.joined",
        "payload": {"email": tenant_a.invitation.email, "role": "learner"},
    }
    assert changed == {"type": "membership.role_changed", "payload": {"role": "teacher"}}


@pytest.mark.django_db(transaction=True)
def test_refusals_anonymous_foreign_origin_suspended(tenant_a):
    async def attempt(ws):
        outcome = await ws.connect(timeout=5)
        # End the application inside this event loop: a consumer left running is cancelled when
        # async_to_sync closes the loop, and a cancelled channel-layer receive can hang there.
        await ws.disconnect()
        return outcome

    assert async_to_sync(attempt)(_communicator(None, "alpha")) == (False, CLOSE_NOT_FOUND)
    assert async_to_sync(attempt)(_communicator(tenant_a.admin.user, "nope")) == (
        False,
        CLOSE_NOT_FOUND,
    )
    evil = _communicator(tenant_a.admin.user, "alpha", origin=b"http://evil.example")
    assert async_to_sync(attempt)(evil)[0] is False
    tenant_a.tenant.is_active = False
    tenant_a.tenant.save()
    assert async_to_sync(attempt)(_communicator(tenant_a.admin.user, "alpha")) == (
        False,
        CLOSE_FORBIDDEN,
    )


@pytest.mark.django_db(transaction=True)
def test_with_redis_stopped_a_role_change_answers_200_and_is_kept(tenant_a, settings, caplog):
    """Redis stopped, for this process: the channel layer and the cache point at a port where
    nothing listens. The publish after commit fails, is logged, and the request still answers
    what it committed."""
    stopped = f"redis://127.0.0.1:{free_port()}/0"
    layer = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {
        "default": {**layer, "CONFIG": {**layer["CONFIG"], "hosts": [{"address": stopped}]}}
    }
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": stopped}}
    client = api_client_for(tenant_a.admin.user)
    client.raise_request_exception = False  # a 500 must show as one, not as a test error
    response = client.patch(
        f"/api/v1/t/alpha/members/{tenant_a.learner.id}/", {"role": "teacher"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["role"] == "teacher"
    with scopes_disabled():
        assert Membership.objects.get(pk=tenant_a.learner.id).role == Role.TEACHER
    [failure] = [r for r in caplog.records if r.name == "apps.core.realtime"]
    assert failure.getMessage() == (
        f"could not publish tenant.event to tenant.{tenant_a.tenant.id.hex}"
        f".user.{tenant_a.learner.user.id.hex}"
    )
