"""The job progress websocket: /ws/jobs/<uuid>/?after=<seq>.

On connect it checks who is asking (an API token or the session, config.websocket_auth; or a
single-use `?ticket=` from the API, apps.jobs.tickets), the tenant, and that the user may watch
the job (the learner who submitted it, a teacher of the course, a tenant admin). It joins the
job's group first, then replays the stored events after `after`, then streams live ones; every
event goes out at most once and in sequence order, and a gap in the live stream is filled from
the database. Refusals accept the handshake and then close with their code (a close before the
accept reaches the client as an HTTP 403 without it): 4401 not signed in (or a bad token or
ticket), 4404 no such job for this user, 4403 tenant suspended, 4400 a bad `after`. A session
connection from a foreign Origin is refused before the handshake (config.websocket_auth).
"""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model
from django_scopes import scope, scopes_disabled

from apps.jobs.events import group_for_job
from apps.jobs.models import Job
from apps.jobs.selectors import events_after, job_visible
from apps.jobs.states import FINAL_STATES
from apps.jobs.tickets import socket_ticket_redeem
from apps.tenants.access import TenantNotFound, TenantSuspended, tenant_access

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


class Refused(Exception):
    def __init__(self, code: int):
        self.code = code


@database_sync_to_async
def _job_for(user, job_id):
    with scopes_disabled():  # the job's tenant is not known until the job is read
        job = Job.objects.select_related("tenant").filter(id=job_id).first()
    if job is None:
        raise Refused(CLOSE_NOT_FOUND)
    try:
        access = tenant_access(user=user, tenant=job.tenant)
    except TenantNotFound as exc:
        raise Refused(CLOSE_NOT_FOUND) from exc
    except TenantSuspended as exc:
        raise Refused(CLOSE_FORBIDDEN) from exc
    with scope(tenant=job.tenant_id):
        job = Job.objects.select_related("submission__assignment__course").get(id=job.id)
        if not job_visible(access=access, user=user, job=job):
            raise Refused(CLOSE_NOT_FOUND)
    return job


@database_sync_to_async
def _ticket_user(ticket: str, job_id):
    """The user a ticket for this job was issued to (spending the ticket), else refused as
    not signed in (an unknown job too: a ticket says nothing about which jobs exist)."""
    with scopes_disabled():  # the job's tenant is not known until the job is read
        job = Job.objects.filter(id=job_id).only("id", "tenant_id").first()
        user_id = socket_ticket_redeem(job=job, ticket=ticket) if job is not None else None
        user = (
            get_user_model().objects.filter(pk=user_id, is_active=True).first() if user_id else None
        )
    if user is None:
        raise Refused(CLOSE_UNAUTHENTICATED)
    return user


def _query(query_string: bytes) -> dict[str, list[str]]:
    return parse_qs(query_string.decode("latin-1"))


@database_sync_to_async
def _stored_after(tenant_id, job_id, after: int, upto: int | None = None):
    with scope(tenant=tenant_id):
        events = events_after(job_id=job_id, after=after)
        return [e.as_message() for e in events if upto is None or e.seq <= upto]


def _after(query: dict[str, list[str]]) -> int:
    values = query.get("after", ["0"])
    value = values[-1]
    # isdigit() alone takes "²", which int() refuses.
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise Refused(CLOSE_BAD_REQUEST)
    return int(value)


class JobEventsConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None
    last_sent = 0

    async def connect(self):
        # Accept first, so that a refusal reaches the client as its close code.
        await self.accept()
        query = _query(self.scope.get("query_string", b""))
        job_id = self.scope["url_route"]["kwargs"]["job_id"]
        try:
            if "ticket" in query:
                user = await _ticket_user(query["ticket"][-1], job_id)
            else:
                user = self.scope["user"]
            if not user.is_authenticated:
                raise Refused(CLOSE_UNAUTHENTICATED)
            after = _after(query)
            job = await _job_for(user, job_id)
        except Refused as refusal:
            await self.close(code=refusal.code)
            return
        self.tenant_id, self.job_id = job.tenant_id, job.id
        self.last_sent = after
        # Join before reading the database: an event committed after the read arrives live,
        # one committed before is in the read, and `last_sent` drops the overlap.
        self.group = group_for_job(job.tenant_id, job.id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        for message in await _stored_after(self.tenant_id, self.job_id, after):
            await self._send_in_order(message)
        if job.state in FINAL_STATES and self.last_sent >= job.last_seq:
            await self.close(code=1000)  # nothing more will come

    async def _send_in_order(self, message: dict) -> None:
        if message["seq"] <= self.last_sent:
            return
        await self.send_json(message)
        self.last_sent = message["seq"]
        if message["type"] in FINAL_STATES:
            await self.close(code=1000)

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        await self.send_json({"type": "error", "payload": {"message": "This stream is read-only."}})

    async def job_event(self, message):
        event = message["event"]
        if event["seq"] > self.last_sent + 1:  # missed one (a lost publish): read the gap
            for stored in await _stored_after(
                self.tenant_id, self.job_id, self.last_sent, upto=event["seq"] - 1
            ):
                await self._send_in_order(stored)
        await self._send_in_order(event)
