"""Realtime events for a tenant's members, pushed to Channels groups named by tenant and user."""

from apps.core.realtime import publish


def group_for_admins(tenant_id) -> str:
    return f"tenant.{tenant_id.hex}.admins"


def group_for_user(tenant_id, user_id) -> str:
    return f"tenant.{tenant_id.hex}.user.{user_id.hex}"


def event_publish(*, group: str, event_type: str, payload: dict) -> None:
    """Send after the transaction commits (callers use transaction.on_commit). A failure (Redis
    down) is logged and the request carries on: the change is committed already."""
    publish(
        group=group,
        message={"type": "tenant.event", "event": {"type": event_type, "payload": payload}},
    )
