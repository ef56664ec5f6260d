"""The tenant events websocket: a member receives events for themself, admins for the tenant.

A connection to a tenant the user cannot enter is refused during the handshake with close code
4404 (4403 for a suspended tenant), the websocket counterpart of the pages' 404 and 403.
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.tenants.access import TenantNotFound, TenantSuspended, tenant_access
from apps.tenants.events import group_for_admins, group_for_user
from apps.tenants.models import Role
from apps.tenants.selectors import tenant_get

CLOSE_NOT_FOUND = 4404
CLOSE_FORBIDDEN = 4403


@database_sync_to_async
def socket_access(user, slug):
    """The user's access to the tenant of a websocket route (raises TenantNotFound or
    TenantSuspended, which a consumer answers with 4404 or 4403)."""
    tenant = tenant_get(slug=slug)
    if tenant is None or not user.is_authenticated:
        raise TenantNotFound
    return tenant_access(user=user, tenant=tenant)


class TenantEventsConsumer(AsyncJsonWebsocketConsumer):
    groups_joined: list[str]

    async def connect(self):
        self.groups_joined = []
        user = self.scope["user"]
        try:
            access = await socket_access(user, self.scope["url_route"]["kwargs"]["tenant_slug"])
        except TenantNotFound:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        except TenantSuspended:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.groups_joined.append(group_for_user(access.tenant.id, user.id))
        if access.allows(Role.ADMIN):
            self.groups_joined.append(group_for_admins(access.tenant.id))
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "payload": {"role": access.role.value}})

    async def disconnect(self, code):
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        await self.send_json({"type": "error", "payload": {"message": "This stream is read-only."}})

    async def tenant_event(self, message):
        await self.send_json(message["event"])
