"""The tenant events websocket: admins hear who joined, a member hears their role change."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from apps.tenants.consumers import CLOSE_FORBIDDEN, CLOSE_NOT_FOUND
from config.asgi import application
from tests.conftest import api_client_for, page_client_for


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
