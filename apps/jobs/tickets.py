"""Job websocket tickets: a short-lived, single-use secret that lets a client which cannot set
an Authorization header on a websocket (a browser) open one job's stream as the user who asked
for it, passed as `?ticket=`. Stored hashed in Redis under the job's tenant; redeeming deletes
it, so a ticket opens one connection at most."""

import hashlib
import secrets

from django.core.cache import cache

TICKET_BYTES = 32
TICKET_SECONDS = 60  # long enough to open the socket just after asking, no longer


def _key(job, ticket: str) -> str:
    digest = hashlib.sha256(ticket.encode("utf-8", "replace")).hexdigest()
    return f"tenant.{job.tenant_id}.job.{job.id}.socket-ticket.{digest}"


def socket_ticket_issue(*, job, user) -> str:
    """A new ticket for `user` to watch `job` (the caller has checked that they may), valid
    for TICKET_SECONDS."""
    ticket = secrets.token_urlsafe(TICKET_BYTES)
    cache.set(_key(job, ticket), user.pk, timeout=TICKET_SECONDS)
    return ticket


def socket_ticket_redeem(*, job, ticket: str):
    """The id of the user the ticket was issued to, once; None for an unknown, expired or
    already used ticket (of two connections racing with one ticket, one wins)."""
    if not ticket or len(ticket) > 100:
        return None
    key = _key(job, ticket)
    user_id = cache.get(key)
    if user_id is None or not cache.delete(key):
        return None
    return user_id
