"""The job websocket (/ws/jobs/<uuid>/?after=<seq>) on the real ASGI stack and Redis channel
layer: who is refused and how, who may watch, replay from the database, live events across the
replay seam, gap filling, and a reconnect in the middle of a real worker's run."""

import asyncio
import json
import threading
import uuid
from datetime import datetime

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection
from django_scopes import scope, scopes_disabled
from knox.models import AuthToken
from redis import Redis

from apps.jobs.consumers import (
    CLOSE_BAD_REQUEST,
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_UNAUTHENTICATED,
)
from apps.jobs.events import job_event_publish
from apps.jobs.lease import claim_event_append, claim_finish, job_claim
from apps.jobs.models import Job, JobEvent
from apps.tenants.models import Role
from config.asgi import application
from tests.conftest import api_client_for, page_client_for, wait_for
from tests.factories import (
    AssignmentFactory,
    EnrollmentFactory,
    ExerciseFactory,
    JobEventFactory,
    JobFactory,
    MembershipFactory,
    SubmissionFactory,
)
from tests.jobs.test_end_to_end import DIGITS_MLP
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = b"http://testserver"
FINAL_TYPES = ("succeeded", "failed", "cancelled", "timed_out")


def _cookie(user) -> bytes:
    if user is None:
        return b""
    return f"sessionid={page_client_for(user).cookies['sessionid'].value}".encode()


def _socket(cookie: bytes, job_id, after="0", origin=ORIGIN) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application,
        f"/ws/jobs/{job_id}/?after={after}",
        headers=[(b"cookie", cookie), (b"origin", origin)],
    )


async def _read_until(ws: WebsocketCommunicator, done, timeout: float = 30) -> list[dict]:
    events = []
    while not events or not done(events[-1]):
        events.append(await ws.receive_json_from(timeout=timeout))
    return events


async def _closed_with(ws: WebsocketCommunicator) -> int:
    """The server's close code; then the client side ends too, so that no consumer outlives
    this event loop (the channel layer's receive lock would stay bound to a dead loop)."""
    message = await ws.receive_output(timeout=10)
    await ws.disconnect()
    assert message["type"] == "websocket.close", message
    return message.get("code", 1000)


def _stored_messages(job_id) -> list[dict]:
    with scopes_disabled():
        events = JobEvent.objects.filter(job_id=job_id).order_by("seq")
        return [event.as_message() for event in events]


def _last_seq(job_id) -> int:
    with scopes_disabled():
        return Job.objects.get(id=job_id).last_seq


def _time(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _is_final(event) -> bool:
    return event["type"] in FINAL_TYPES


def _seqs(events) -> list[int]:
    return [event["seq"] for event in events]


# --- Refusals --------------------------------------------------------------------------------


def _anonymous(world, request):
    return None, world.job.id, "0", ORIGIN


def _member_of_another_tenant(world, request):
    return request.getfixturevalue("tenant_b").admin.user, world.job.id, "0", ORIGIN


def _another_learner_of_the_course(world, request):
    other = MembershipFactory(tenant=world.tenant, role=Role.LEARNER).user
    EnrollmentFactory(course=world.course, user=other)
    return other, world.job.id, "0", ORIGIN


def _teacher_of_another_course(world, request):
    return MembershipFactory(tenant=world.tenant, role=Role.TEACHER).user, world.job.id, "0", ORIGIN


def _unknown_job(world, request):
    return world.learner.user, uuid.uuid4(), "0", ORIGIN


def _suspended_tenant(world, request):
    world.tenant.is_active = False
    world.tenant.save()
    return world.learner.user, world.job.id, "0", ORIGIN


def _bad_after(value):
    def case(world, request):
        return world.learner.user, world.job.id, value, ORIGIN

    return case


@pytest.mark.parametrize(
    "case, code",
    [
        pytest.param(_anonymous, CLOSE_UNAUTHENTICATED, id="anonymous"),
        pytest.param(_member_of_another_tenant, CLOSE_NOT_FOUND, id="other-tenant"),
        pytest.param(_another_learner_of_the_course, CLOSE_NOT_FOUND, id="other-learner"),
        pytest.param(_teacher_of_another_course, CLOSE_NOT_FOUND, id="other-teacher"),
        pytest.param(_unknown_job, CLOSE_NOT_FOUND, id="unknown-job"),
        pytest.param(_suspended_tenant, CLOSE_FORBIDDEN, id="suspended-tenant"),
        pytest.param(_bad_after("x"), CLOSE_BAD_REQUEST, id="after-not-a-number"),
        pytest.param(_bad_after("-1"), CLOSE_BAD_REQUEST, id="after-negative"),
        pytest.param(_bad_after("1234567890"), CLOSE_BAD_REQUEST, id="after-10-digits"),
    ],
)
def test_a_refused_connection_is_accepted_then_closed_with_its_code_and_changes_nothing(
    tenant_a, request, case, code
):
    """The documented codes reach the client: a close before the accept would be an HTTP 403
    to a real client, without any code."""
    user, job_id, after, origin = case(tenant_a, request)
    cookie = _cookie(user)  # logging in writes the session and last_login: before the snapshot
    before = db_snapshot()

    async def attempt():
        ws = _socket(cookie, job_id, after, origin)
        connected = await ws.connect(timeout=10)
        return connected, await _closed_with(ws)

    assert async_to_sync(attempt)() == ((True, None), code)
    assert db_snapshot() == before


def test_a_session_from_a_foreign_origin_is_refused_in_the_handshake(tenant_a):
    cookie = _cookie(tenant_a.learner.user)
    before = db_snapshot()

    async def attempt():
        ws = _socket(cookie, tenant_a.job.id, origin=b"http://evil.example")
        outcome = await ws.connect(timeout=10)
        await ws.disconnect()
        return outcome

    # AllowedHostsOriginValidator closes before accepting: an ASGI server answers HTTP 403.
    assert async_to_sync(attempt)() == (False, 1000)
    assert db_snapshot() == before


# --- API tokens and tickets ------------------------------------------------------------------


def _token(user) -> str:
    with scopes_disabled():
        return AuthToken.objects.create(user=user)[1]


def _socket_with(job_id, *, headers=(), query="") -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application, f"/ws/jobs/{job_id}/?after=0{query}", headers=list(headers)
    )


async def _watch_all(ws) -> tuple[tuple, list[str]]:
    connected = await ws.connect(timeout=10)
    events = await _read_until(ws, _is_final)
    assert await _closed_with(ws) == 1000
    return connected, [event["type"] for event in events]


@pytest.mark.parametrize("origin", [None, b"http://evil.example"], ids=["no-origin", "foreign"])
def test_an_api_token_in_the_header_watches_the_job_from_any_origin(tenant_a, origin):
    headers = [(b"authorization", f"Token {_token(tenant_a.learner.user)}".encode())]
    if origin:
        headers.append((b"origin", origin))
    ws = _socket_with(tenant_a.job.id, headers=headers)
    assert async_to_sync(_watch_all)(ws) == ((True, None), ["queued", "started", "succeeded"])


@pytest.mark.parametrize(
    "header, code",
    [
        pytest.param(b"Token not-a-token", CLOSE_UNAUTHENTICATED, id="bad-token"),
        pytest.param(b"Bearer x", CLOSE_UNAUTHENTICATED, id="other-scheme"),
        pytest.param(b"Token \xff\xfe", CLOSE_UNAUTHENTICATED, id="not-utf8"),
    ],
)
def test_a_bad_token_is_closed_4401_and_changes_nothing(tenant_a, header, code):
    before = db_snapshot()

    async def attempt():
        ws = _socket_with(tenant_a.job.id, headers=[(b"authorization", header)])
        return await ws.connect(timeout=10), await _closed_with(ws)

    assert async_to_sync(attempt)() == ((True, None), code)
    assert db_snapshot() == before


def test_a_token_of_a_user_who_may_not_watch_is_closed_4404(tenant_a, tenant_b):
    header = f"Token {_token(tenant_b.admin.user)}".encode()

    async def attempt():
        ws = _socket_with(tenant_a.job.id, headers=[(b"authorization", header)])
        return await ws.connect(timeout=10), await _closed_with(ws)

    assert async_to_sync(attempt)() == ((True, None), CLOSE_NOT_FOUND)


def _ticket(user, job_id, slug="alpha"):
    return api_client_for(user).post(f"/api/v1/t/{slug}/jobs/{job_id}/socket-ticket/")


def test_a_ticket_from_the_api_opens_the_socket_once(tenant_a):
    response = _ticket(tenant_a.learner.user, tenant_a.job.id)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"ticket", "expires_in", "url"} and body["expires_in"] == 60
    assert body["url"] == f"/ws/jobs/{tenant_a.job.id}/?ticket={body['ticket']}"
    query = f"&ticket={body['ticket']}"
    # No cookie, and a browser on a page of this site sends its origin: neither is needed.
    first = _socket_with(tenant_a.job.id, query=query)
    assert async_to_sync(_watch_all)(first) == ((True, None), ["queued", "started", "succeeded"])

    async def again():
        ws = _socket_with(tenant_a.job.id, query=query)
        return await ws.connect(timeout=10), await _closed_with(ws)

    assert async_to_sync(again)() == ((True, None), CLOSE_UNAUTHENTICATED)  # single use


def test_a_ticket_opens_only_its_own_job(tenant_a):
    other = JobFactory(
        submission=SubmissionFactory(
            assignment=tenant_a.assignment, learner=tenant_a.learner.user, attempt=2
        )
    )
    ticket = _ticket(tenant_a.learner.user, tenant_a.job.id).json()["ticket"]

    async def attempt(job_id, value):
        ws = _socket_with(job_id, query=f"&ticket={value}")
        return await ws.connect(timeout=10), await _closed_with(ws)

    assert async_to_sync(attempt)(other.id, ticket) == ((True, None), CLOSE_UNAUTHENTICATED)
    assert async_to_sync(attempt)(tenant_a.job.id, "made-up") == (
        (True, None),
        CLOSE_UNAUTHENTICATED,
    )


def test_the_ticket_api_refuses_who_may_not_watch_and_issues_nothing(tenant_a, tenant_b):
    other = MembershipFactory(tenant=tenant_a.tenant, role=Role.LEARNER).user
    EnrollmentFactory(course=tenant_a.course, user=other)
    assert _ticket(other, tenant_a.job.id).status_code == 404
    assert _ticket(tenant_b.admin.user, tenant_a.job.id, slug="beta").status_code == 404
    assert (
        api_client_for(None)
        .post(f"/api/v1/t/alpha/jobs/{tenant_a.job.id}/socket-ticket/")
        .status_code
        == 401
    )
    redis = Redis.from_url(settings.REDIS_URL)
    assert redis.keys(f"*tenant.{tenant_a.tenant.id}.job.{tenant_a.job.id}.socket-ticket.*") == []


# --- Who may watch, and replay ---------------------------------------------------------------


@pytest.mark.parametrize("role", ["learner", "teacher", "admin"])
def test_the_learner_a_teacher_of_the_course_and_the_admin_watch_the_job(tenant_a, role):
    user = getattr(tenant_a, role).user
    cookie = _cookie(user)
    before = db_snapshot()

    async def watch():
        ws = _socket(cookie, tenant_a.job.id)
        connected = await ws.connect(timeout=10)
        events = await _read_until(ws, _is_final)
        return connected, events, await _closed_with(ws)

    connected, events, code = async_to_sync(watch)()
    assert connected == (True, None)
    assert events == _stored_messages(tenant_a.job.id)
    assert [event["type"] for event in events] == ["queued", "started", "succeeded"]
    assert code == 1000
    assert db_snapshot() == before  # watching writes nothing


@pytest.mark.parametrize("after, expected_seqs", [(0, [1, 2, 3]), (2, [3]), (3, [])])
def test_a_finished_job_replays_the_events_after_the_given_seq_then_closes(
    tenant_a, after, expected_seqs
):
    cookie = _cookie(tenant_a.learner.user)

    async def watch():
        ws = _socket(cookie, tenant_a.job.id, after=str(after))
        connected = await ws.connect(timeout=10)
        events = []
        while (message := await ws.receive_output(timeout=10))["type"] == "websocket.send":
            events.append(message)
        assert message["type"] == "websocket.close", message
        return connected, events, message.get("code")

    connected, messages, code = async_to_sync(watch)()
    assert connected == (True, None)
    stored = _stored_messages(tenant_a.job.id)
    assert [json.loads(m["text"]) for m in messages] == [stored[s - 1] for s in expected_seqs]
    assert code == 1000


# --- Live events, the replay seam and gaps ---------------------------------------------------


def _running_job(world):
    """A second attempt of the learner, claimed by a test "worker": events 1 queued, 2 started."""
    submission = SubmissionFactory(
        assignment=world.assignment, learner=world.learner.user, attempt=2
    )
    job = JobFactory(submission=submission, last_seq=1)
    JobEventFactory(job=job, seq=1, type="queued", attempt=0)
    with scope(tenant=world.tenant.id):
        claim = job_claim(job_id=job.id, owner="test-worker:1")
    assert claim is not None
    return job, claim


def _append_progress(claim, steps) -> None:
    """As the runner's progress callback does, from another thread with its own connection."""
    try:
        with scope(tenant=claim.tenant_id):
            for step in steps:
                claim_event_append(claim, type="progress", payload={"step": step})
    finally:
        connection.close()


def _append_one(claim, *, step: int) -> int:
    with scope(tenant=claim.tenant_id):
        return claim_event_append(claim, type="progress", payload={"step": step})


def _finish(claim) -> None:
    with scope(tenant=claim.tenant_id):
        claim_finish(claim, state="succeeded", final_payload={"message": "done"})


LIVE_EVENTS = 40


def test_live_events_arrive_exactly_once_in_order_for_a_watcher_and_one_joining_mid_stream(
    tenant_a,
):
    job, claim = _running_job(tenant_a)
    cookie = _cookie(tenant_a.learner.user)
    last = 2 + LIVE_EVENTS
    appender = threading.Thread(target=_append_progress, args=(claim, range(1, LIVE_EVENTS + 1)))

    # One event loop for the whole conversation: a communicator is bound to the loop it ran in.
    async def watch():
        early = _socket(cookie, job.id)
        assert await early.connect(timeout=10) == (True, None)
        early_events = await _read_until(early, lambda e: e["seq"] == 2)
        appender.start()
        early_events += await _read_until(early, lambda e: e["seq"] >= 6)
        # Joins while the appender is (most likely) still writing: events committed during
        # its replay read must come exactly once, from the read or live.
        late = _socket(cookie, job.id)
        assert await late.connect(timeout=10) == (True, None)
        early_events += await _read_until(early, lambda e: e["seq"] >= last)
        late_events = await _read_until(late, lambda e: e["seq"] >= last)
        await sync_to_async(appender.join)(timeout=60)
        await sync_to_async(_finish)(claim)
        ends = []
        for ws, events in ((early, early_events), (late, late_events)):
            events += await _read_until(ws, _is_final)
            ends.append(await _closed_with(ws))
        return early_events, late_events, ends

    early_events, late_events, ends = async_to_sync(watch)()
    stored = _stored_messages(job.id)
    assert _seqs(stored) == list(range(1, last + 2))
    assert early_events == stored
    assert late_events == stored
    assert [e["payload"].get("step") for e in stored[2:-1]] == list(range(1, LIVE_EVENTS + 1))
    assert stored[-1]["type"] == "succeeded"
    assert ends == [1000, 1000]


def _stored_unpublished(job, seq: int) -> dict:
    """An event committed whose publish has not happened (yet, or ever)."""
    event = JobEventFactory(job=job, seq=seq, attempt=1, type="progress", payload={"step": seq})
    with scopes_disabled():
        Job.objects.filter(id=job.id).update(last_seq=seq)
    return event.as_message()


def _publisher(job):
    @sync_to_async
    def publish(message) -> None:
        job_event_publish(tenant_id=job.tenant_id, job_id=job.id, message=message)

    return publish


def test_an_event_both_replayed_and_then_published_at_the_seam_goes_out_once(tenant_a):
    """The seam's overlap made deterministic: event 3 is committed before the client's replay
    read but its publish comes after the client joined the group (as an on_commit publish of a
    slow writer would)."""
    job, claim = _running_job(tenant_a)
    cookie = _cookie(tenant_a.learner.user)
    third = _stored_unpublished(job, 3)
    publish = _publisher(job)

    async def watch():
        ws = _socket(cookie, job.id)
        assert await ws.connect(timeout=10) == (True, None)
        replayed = await _read_until(ws, lambda e: e["seq"] == 3)
        await publish(third)
        fourth = await sync_to_async(_append_one)(claim, step=4)
        live = await ws.receive_json_from(timeout=10)
        await ws.disconnect()
        return replayed, fourth, live

    replayed, fourth, live = async_to_sync(watch)()
    stored = _stored_messages(job.id)
    assert replayed == stored[:3]
    assert (fourth, live) == (4, stored[3])


def test_a_watcher_idle_longer_than_the_redis_read_timeout_still_gets_the_next_event(tenant_a):
    """A job can sit queued or in data loading for a while without an event. redis-py 8's
    default 5 s read timeout once crashed the consumer's blocking channel-layer read here."""
    job, claim = _running_job(tenant_a)
    cookie = _cookie(tenant_a.learner.user)

    async def watch():
        ws = _socket(cookie, job.id)
        assert await ws.connect(timeout=10) == (True, None)
        replayed = await _read_until(ws, lambda e: e["seq"] == 2)
        await asyncio.sleep(6)  # the idle stretch under test, past the 5 s default
        third = await sync_to_async(_append_one)(claim, step=3)
        live = await ws.receive_json_from(timeout=10)
        await ws.disconnect()
        return replayed, third, live

    replayed, third, live = async_to_sync(watch)()
    assert _seqs(replayed) == [1, 2]
    assert (third, live) == (3, _stored_messages(job.id)[2])


def test_a_gap_in_the_live_stream_is_filled_from_the_database_and_a_stale_event_dropped(
    tenant_a,
):
    job, claim = _running_job(tenant_a)
    cookie = _cookie(tenant_a.learner.user)
    store_without_publishing = sync_to_async(_stored_unpublished)
    publish = _publisher(job)

    async def watch():
        ws = _socket(cookie, job.id)
        assert await ws.connect(timeout=10) == (True, None)
        replayed = await _read_until(ws, lambda e: e["seq"] == 2)
        third = await store_without_publishing(job, 3)  # its publish was lost
        fourth = await store_without_publishing(job, 4)
        await publish(fourth)
        filled = await _read_until(ws, lambda e: e["seq"] == 4)
        await publish(third)  # late or duplicated: already sent, so dropped
        fifth = await sync_to_async(_append_one)(claim, step=5)
        after = await ws.receive_json_from(timeout=10)
        await ws.disconnect()
        return replayed, filled, after, fifth

    replayed, filled, after, fifth = async_to_sync(watch)()
    assert _seqs(replayed) == [1, 2]
    stored = _stored_messages(job.id)
    assert filled == stored[2:4]
    assert after == stored[4]
    assert (after["seq"], fifth) == (5, 5)


# --- Reconnecting mid-run, with a real worker ------------------------------------------------

# Long enough (hundreds of steps, dozens of progress events) that the job is still training
# when the watcher comes back.
LONG_DIGITS = {**DIGITS_MLP, "training": {**DIGITS_MLP["training"], "epochs": 40, "batch_size": 16}}


def test_reconnecting_with_after_mid_run_loses_and_duplicates_nothing(
    celery_worker_process, tenant_a
):
    exercise = ExerciseFactory(
        course=tenant_a.course,
        dataset="digits",
        min_metric=0.5,
        target_metric=0.9,
        max_seconds=600,
        starter_spec=LONG_DIGITS,
    )
    assignment = AssignmentFactory(exercise=exercise)
    learner = tenant_a.learner.user
    response = api_client_for(learner).post(
        f"/api/v1/t/{tenant_a.tenant.slug}/assignments/{assignment.id}/submissions/",
        {"kind": "spec", "spec": LONG_DIGITS},
        format="json",
    )
    assert response.status_code == 201, response.content
    job_id = response.json()["job"]["id"]
    cookie = _cookie(learner)

    # Both visits in one event loop: the channel layer's locks are bound to the loop they were
    # first used in, and a second loop (a second async_to_sync) can find one of them held by a
    # cleanup task of the first ("bound to a different event loop").
    async def two_visits():
        ws = _socket(cookie, job_id)
        assert await ws.connect(timeout=10) == (True, None)
        first = await _read_until(ws, lambda e: e["type"] == "progress", timeout=120)
        await ws.disconnect()
        seen = first[-1]["seq"]
        await sync_to_async(wait_for)(
            lambda: _last_seq(job_id) > seen + 1,
            timeout=120,
            message=f"job {job_id} writing events past {seen + 1} while nobody watches",
        )
        ws = _socket(cookie, job_id, after=str(seen))
        assert await ws.connect(timeout=10) == (True, None)
        second = await _read_until(ws, _is_final, timeout=120)
        return first, second, await _closed_with(ws)

    first, second, code = async_to_sync(two_visits)()
    events = first + second
    assert _seqs(events) == list(range(1, _last_seq(job_id) + 1))
    assert events[-1]["type"] == "succeeded"
    assert code == 1000
    assert events == _stored_messages(job_id)
    # The outcome says when training began: after the claim, before the first progress point.
    first_step_at = events[-1]["payload"]["outcome"]["first_step_at"]
    started = next(e["at"] for e in events if e["type"] == "started")
    first_progress = next(e["at"] for e in events if e["type"] == "progress")
    assert _time(started) < _time(first_step_at) < _time(first_progress)
