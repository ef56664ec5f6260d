"""Realtime events for a tenant's members, pushed to Channels groups named by tenant and user."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def group_for_admins(tenant_id) -> str:
    return f"tenant.{tenant_id.hex}.admins"


def group_for_user(tenant_id, user_id) -> str:
    return f"tenant.{tenant_id.hex}.user.{user_id.hex}"


def event_publish(*, group: str, event_type: str, payload: dict) -> None:
    """Send after the transaction commits (callers use transaction.on_commit)."""
    async_to_sync(get_channel_layer().group_send)(
        group, {"type": "tenant.event", "event": {"type": event_type, "payload": payload}}
    )
