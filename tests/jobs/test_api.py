"""The jobs API after submitting: who sees which submission, job and events; cancelling; grade
overrides with their history; the leaderboard; the events list. Every refused call asserts its
status and that nothing changed."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_scopes import scope, scopes_disabled

from apps.jobs.models import Grade, Job, JobEvent, Submission
from apps.jobs.services import submission_create
from runtime.templates import TEMPLATES
from tests.conftest import api_client_for
from tests.factories import (
    AssignmentFactory,
    EnrollmentFactory,
    JobEventFactory,
    JobFactory,
    MembershipFactory,
    SubmissionFactory,
    graded_submission,
)
from tests.snapshots import db_snapshot

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}
INVALID = {"code": "invalid", "message": "The request has invalid fields; see error.fields."}


def _api(world, path: str) -> str:
    return f"/api/v1/t/{world.tenant.slug}/{path}"


def _refused(client, method, url, payload=None, *, status, body):
    """Call; assert the status, the exact error body, and that nothing changed."""
    before = db_snapshot()
    response = getattr(client, method)(url, payload, format="json")
    assert response.status_code == status, response.content
    assert response.json() == body
    assert db_snapshot() == before


def _invalid(fields: dict) -> dict:
    return {"error": {**INVALID, "fields": fields}}


def _learner(world):
    user = MembershipFactory(tenant=world.tenant).user
    EnrollmentFactory(course=world.course, user=user)
    return user


@pytest.fixture
def other_learner(tenant_a):
    return _learner(tenant_a)


@pytest.fixture
def queued(tenant_a, other_learner) -> Submission:
    """The other learner's first attempt, just submitted: its job queued, with event 1."""
    with scope(tenant=tenant_a.tenant.id):
        return submission_create(
            assignment=tenant_a.assignment,
            learner=other_learner,
            kind="spec",
            spec=TEMPLATES["xor"].spec,
        )


@pytest.fixture
def running(tenant_a, other_learner) -> Job:
    """A job a worker holds: attempt 1, lease token 1, lease live; events queued, started."""
    submission = SubmissionFactory(assignment=tenant_a.assignment, learner=other_learner, attempt=2)
    now = timezone.now()
    job = JobFactory(
        submission=submission,
        state="running",
        attempt=1,
        lease_token=1,
        lease_owner="host-1:101",
        lease_expires_at=now + timedelta(minutes=5),
        started_at=now,
        last_seq=2,
    )
    JobEventFactory(job=job, seq=1, attempt=0, type="queued")
    JobEventFactory(job=job, seq=2, attempt=1, type="started")
    return job


def _job_row(job_id) -> Job:
    with scopes_disabled():
        return Job.objects.get(id=job_id)


def _event_types(job_id) -> list[tuple[int, str]]:
    with scopes_disabled():
        return list(
            JobEvent.objects.filter(job_id=job_id).order_by("seq").values_list("seq", "type")
        )


def _listed_learners(response) -> list[str]:
    assert response.status_code == 200, response.content
    return sorted(row["learner"] for row in response.json()["results"])


# --- Who sees what -------------------------------------------------------------------------------


def test_a_learner_cannot_see_nor_cancel_another_learners_work(tenant_a, queued):
    client = api_client_for(tenant_a.learner.user)
    job = queued.job
    for path in (f"submissions/{queued.id}/", f"jobs/{job.id}/", f"jobs/{job.id}/events/"):
        _refused(client, "get", _api(tenant_a, path), status=404, body=NOT_FOUND)
    _refused(client, "post", _api(tenant_a, f"jobs/{job.id}/cancel/"), status=404, body=NOT_FOUND)
    assert _job_row(job.id).state == "queued"


def test_a_learner_lists_only_their_own_submissions(tenant_a, queued):
    client = api_client_for(tenant_a.learner.user)
    mine = [tenant_a.learner.user.email]
    assert _listed_learners(client.get(_api(tenant_a, "submissions/"))) == mine
    url = _api(tenant_a, f"assignments/{tenant_a.assignment.id}/submissions/")
    assert _listed_learners(client.get(url)) == mine


def test_the_learner_sees_their_own_submission_job_and_events(tenant_a):
    client = api_client_for(tenant_a.learner.user)
    submission = client.get(_api(tenant_a, f"submissions/{tenant_a.submission.id}/"))
    assert submission.status_code == 200
    assert (submission.json()["grade"]["score"], submission.json()["job"]["state"]) == (
        "80.00",
        "succeeded",
    )
    assert client.get(_api(tenant_a, f"jobs/{tenant_a.job.id}/")).json()["state"] == "succeeded"


@pytest.mark.parametrize("role", ["teacher", "admin"])
def test_a_teacher_of_the_course_and_the_admin_see_every_submission(tenant_a, queued, role):
    client = api_client_for(getattr(tenant_a, role).user)
    both = sorted([tenant_a.learner.user.email, queued.learner.email])
    url = _api(tenant_a, f"assignments/{tenant_a.assignment.id}/submissions/")
    assert _listed_learners(client.get(url)) == both
    assert _listed_learners(client.get(_api(tenant_a, "submissions/"))) == both
    job = queued.job
    detail = client.get(_api(tenant_a, f"submissions/{queued.id}/"))
    assert (detail.status_code, detail.json()["learner"]) == (200, queued.learner.email)
    assert client.get(_api(tenant_a, f"jobs/{job.id}/")).json()["id"] == str(job.id)
    events = client.get(_api(tenant_a, f"jobs/{job.id}/events/")).json()
    assert [(e["seq"], e["type"]) for e in events] == [(1, "queued")]
    leaderboard = client.get(_api(tenant_a, f"assignments/{tenant_a.assignment.id}/leaderboard/"))
    assert leaderboard.status_code == 200
    assert [row["learner"] for row in leaderboard.json()] == [tenant_a.learner.user.email]


def test_a_tenant_teacher_who_does_not_teach_the_course_sees_none_of_it(tenant_a, queued):
    """The course is not theirs: its assignment, submissions and jobs do not exist for them."""
    client = api_client_for(MembershipFactory(tenant=tenant_a.tenant, role="teacher").user)
    assignment, job = tenant_a.assignment.id, queued.job.id
    for path in (
        f"assignments/{assignment}/submissions/",
        f"assignments/{assignment}/leaderboard/",
        f"submissions/{queued.id}/",
        f"submissions/{tenant_a.submission.id}/",
        f"jobs/{job}/",
        f"jobs/{job}/events/",
    ):
        _refused(client, "get", _api(tenant_a, path), status=404, body=NOT_FOUND)
    for path, payload in (
        (f"jobs/{job}/cancel/", None),
        (f"submissions/{tenant_a.submission.id}/grade/", {"score": "10", "reason": "Mine."}),
        (f"assignments/{assignment}/submissions/", {"kind": "spec", "spec": TEMPLATES["xor"].spec}),
        (f"assignments/{assignment}/validate/", {"spec": TEMPLATES["xor"].spec}),
    ):
        _refused(client, "post", _api(tenant_a, path), payload, status=404, body=NOT_FOUND)
    response = client.get(_api(tenant_a, "submissions/"))
    assert (response.status_code, response.json()["count"]) == (200, 0)


def test_a_learner_who_sees_the_assignment_gets_403_on_a_grade_override(tenant_a):
    """The rule: a teacher-only operation on an object the caller may see is a 403."""
    client = api_client_for(tenant_a.learner.user)
    _refused(
        client,
        "post",
        _api(tenant_a, f"submissions/{tenant_a.submission.id}/grade/"),
        {"score": "100", "reason": "Mine."},
        status=403,
        body={
            "error": {
                "code": "permission_denied",
                "message": "This needs a teacher of this course.",
                "fields": {},
            }
        },
    )
    with scopes_disabled():
        grade = Grade.objects.get(submission=tenant_a.submission)
        assert (str(grade.score), grade.revisions.count()) == ("80.00", 1)


def test_a_learner_sees_the_leaderboard_by_name_only(tenant_a):
    rows = (
        api_client_for(tenant_a.learner.user)
        .get(_api(tenant_a, f"assignments/{tenant_a.assignment.id}/leaderboard/"))
        .json()
    )
    assert [(r["rank"], r["learner"], r["you"], r["score"]) for r in rows] == [
        (1, None, True, "80.00")
    ]


def _jobs_routes(world, queued_submission) -> list[tuple[str, str, dict | None]]:
    assignment, job = world.assignment.id, queued_submission.job.id
    return [
        ("get", f"assignments/{assignment}/submissions/", None),
        (
            "post",
            f"assignments/{assignment}/submissions/",
            {"kind": "spec", "spec": TEMPLATES["xor"].spec},
        ),
        ("post", f"assignments/{assignment}/validate/", {"spec": TEMPLATES["xor"].spec}),
        ("get", f"assignments/{assignment}/leaderboard/", None),
        ("get", f"submissions/{queued_submission.id}/", None),
        ("get", f"submissions/{world.submission.id}/", None),
        ("post", f"submissions/{world.submission.id}/grade/", {"score": "1", "reason": "x"}),
        ("get", f"jobs/{job}/", None),
        ("get", f"jobs/{job}/events/", None),
        ("post", f"jobs/{job}/cancel/", None),
    ]


@pytest.mark.parametrize("role", ["admin", "teacher", "learner"])
def test_another_tenant_gets_404_everywhere(tenant_a, tenant_b, queued, role):
    client = api_client_for(getattr(tenant_b, role).user)
    for method, path, payload in _jobs_routes(tenant_a, queued):
        _refused(client, method, _api(tenant_a, path), payload, status=404, body=NOT_FOUND)


def test_the_other_tenants_objects_under_my_tenant_are_404(tenant_a, tenant_b):
    """My slug, their ids: the tenant scope hides them, even from my admin."""
    client = api_client_for(tenant_a.admin.user)
    with scope(tenant=tenant_b.tenant.id):
        their = submission_create(
            assignment=tenant_b.assignment,
            learner=tenant_b.learner.user,
            kind="spec",
            spec=TEMPLATES["xor"].spec,
        )
    for method, path, payload in _jobs_routes(tenant_b, their):
        _refused(client, method, _api(tenant_a, path), payload, status=404, body=NOT_FOUND)


# --- Grade override ------------------------------------------------------------------------------


def _grade_url(world, submission=None) -> str:
    return _api(world, f"submissions/{(submission or world.submission).id}/grade/")


def test_a_teacher_overrides_a_grade_and_the_history_is_kept(tenant_a):
    teacher = tenant_a.teacher.user
    response = api_client_for(teacher).post(
        _grade_url(tenant_a),
        {"score": "65.5", "reason": "Trained on the test split."},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    with scopes_disabled():
        grade = Grade.objects.get(submission=tenant_a.submission)
        revisions = list(grade.revisions.order_by("created_at", "id"))
    assert parse_datetime(body.pop("overridden_at")) == grade.overridden_at
    assert parse_datetime(body.pop("created_at")) == grade.created_at
    assert [parse_datetime(r.pop("created_at")) for r in body["revisions"]] == [
        r.created_at for r in revisions
    ]
    assert body == {
        "score": "65.50",
        "max_score": "100.00",
        "metrics": {"accuracy": 0.86},
        "feedback": "",
        "source": "teacher",
        "automatic_score": "80.00",
        "override_reason": "Trained on the test split.",
        "overridden_by": teacher.email,
        "withheld_until": None,
        "revisions": [
            {"score": "80.00", "source": "automatic", "reason": "", "author": None},
            {
                "score": "65.50",
                "source": "teacher",
                "reason": "Trained on the test split.",
                "author": teacher.email,
            },
        ],
    }
    assert (str(grade.score), grade.source, str(grade.automatic_score)) == (
        "65.50",
        "teacher",
        "80.00",
    )
    assert grade.overridden_by == teacher


def test_a_second_override_adds_a_third_revision(tenant_a):
    client = api_client_for(tenant_a.admin.user)
    for score, reason in (("70", "Late fix."), ("90", "Regraded.")):
        response = client.post(
            _grade_url(tenant_a), {"score": score, "reason": reason}, format="json"
        )
        assert response.status_code == 200, response.content
    body = response.json()
    assert (body["score"], body["automatic_score"], body["override_reason"]) == (
        "90.00",
        "80.00",
        "Regraded.",
    )
    assert [(r["score"], r["source"], r["reason"], r["author"]) for r in body["revisions"]] == [
        ("80.00", "automatic", "", None),
        ("70.00", "teacher", "Late fix.", tenant_a.admin.user.email),
        ("90.00", "teacher", "Regraded.", tenant_a.admin.user.email),
    ]


@pytest.mark.parametrize(
    "payload, fields",
    [
        ({"score": "50", "reason": ""}, {"reason": ["This field may not be blank."]}),
        ({"score": "50", "reason": "   "}, {"reason": ["This field may not be blank."]}),
        ({"score": "50"}, {"reason": ["This field is required."]}),
        (
            {"score": "100.01", "reason": "Bonus."},
            {"score": ["The score must be between 0 and 100.00."]},
        ),
        (
            {"score": "-1", "reason": "Cheated."},
            {"score": ["Ensure this value is greater than or equal to 0."]},
        ),
        ({"score": "ten", "reason": "Typo."}, {"score": ["A valid number is required."]}),
        (
            {"score": "50", "reason": "Fine.", "source": "automatic"},
            {"source": ["Unknown field; this endpoint does not accept it."]},
        ),
    ],
    ids=[
        "reason-empty",
        "reason-blank",
        "reason-missing",
        "score-above-max",
        "score-negative",
        "score-not-a-number",
        "unknown-field",
    ],
)
def test_a_bad_override_is_a_400_and_changes_nothing(tenant_a, payload, fields):
    client = api_client_for(tenant_a.teacher.user)
    _refused(client, "post", _grade_url(tenant_a), payload, status=400, body=_invalid(fields))


def test_a_learner_cannot_override_their_own_grade(tenant_a):
    client = api_client_for(tenant_a.learner.user)
    _refused(
        client,
        "post",
        _grade_url(tenant_a),
        {"score": "100", "reason": "I deserve it."},
        status=403,
        body={
            "error": {
                "code": "permission_denied",
                "message": "This needs a teacher of this course.",
                "fields": {},
            }
        },
    )


def test_a_submission_without_a_grade_cannot_be_overridden(tenant_a, queued):
    client = api_client_for(tenant_a.teacher.user)
    _refused(
        client,
        "post",
        _grade_url(tenant_a, queued),
        {"score": "50", "reason": "Early."},
        status=400,
        body=_invalid(
            {"non_field_errors": ["This submission has no grade yet (its job has not succeeded)."]}
        ),
    )


# --- Leaderboard ---------------------------------------------------------------------------------


def test_the_leaderboard_ranks_each_learners_best_with_ties_to_the_earlier(tenant_a):
    assignment = AssignmentFactory(exercise=tenant_a.exercise)
    x, y, z = (_learner(tenant_a) for _ in range(3))
    base = timezone.now() - timedelta(days=1)
    made = {}
    for learner, attempt, score, hours in (
        # y ties x at 90, an hour earlier: y ranks first (its rows are made first, so that
        # the rows' creation order, which the queryset's default ordering follows, cannot help).
        (y, 1, 90, 2),
        (y, 2, 40, 4),
        (x, 1, 70, 1),
        (x, 2, 90, 3),
        (x, 3, 90, 5),  # x's own tie: attempt 2 counts
        (z, 1, "95.5", 6),
        (z, 2, 50, 7),
    ):
        submission = graded_submission(
            assignment=assignment, learner=learner, attempt=attempt, score=score
        )
        with scopes_disabled():
            Submission.objects.filter(id=submission.id).update(
                created_at=base + timedelta(hours=hours)
            )
        made[learner, attempt] = submission

    response = api_client_for(tenant_a.teacher.user).get(
        _api(tenant_a, f"assignments/{assignment.id}/leaderboard/")
    )

    assert response.status_code == 200, response.content
    rows = response.json()
    expected = [(1, z, 1, "95.50", 6), (2, y, 1, "90.00", 2), (3, x, 2, "90.00", 3)]
    assert [parse_datetime(row.pop("submitted_at")) for row in rows] == [
        base + timedelta(hours=hours) for *_, hours in expected
    ]
    assert rows == [
        {
            "rank": rank,
            "learner": learner.email,
            "full_name": learner.full_name,
            "you": False,
            "public_metric": None,  # a dataset of one part: its score is the grade's
            "private_metric": None,
            "score": score,
            "max_score": "100.00",
            "submission": str(made[learner, attempt].id),
            "attempt": attempt,
        }
        for rank, learner, attempt, score, _ in expected
    ]


def test_an_assignment_without_grades_has_an_empty_leaderboard(tenant_a):
    assignment = AssignmentFactory(exercise=tenant_a.exercise)
    response = api_client_for(tenant_a.teacher.user).get(
        _api(tenant_a, f"assignments/{assignment.id}/leaderboard/")
    )
    assert (response.status_code, response.json()) == (200, [])


# --- Cancel --------------------------------------------------------------------------------------


def _cancel(client, world, job_id):
    return client.post(_api(world, f"jobs/{job_id}/cancel/"))


def test_cancelling_a_queued_job_ends_it_at_once(tenant_a, queued):
    response = _cancel(api_client_for(queued.learner), tenant_a, queued.job.id)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["state"], body["cancel_requested"], body["last_seq"]) == ("cancelled", True, 2)
    assert body["finished_at"] is not None
    job = _job_row(queued.job.id)
    assert (job.state, job.cancel_requested_by, job.last_seq) == ("cancelled", queued.learner, 2)
    assert _event_types(job.id) == [(1, "queued"), (2, "cancelled")]


def test_cancelling_a_cancelled_job_again_is_a_409(tenant_a, queued):
    client = api_client_for(queued.learner)
    assert _cancel(client, tenant_a, queued.job.id).status_code == 200
    _refused(
        client,
        "post",
        _api(tenant_a, f"jobs/{queued.job.id}/cancel/"),
        status=409,
        body={
            "error": {
                "code": "conflict",
                "fields": {},
                "message": "This job has already ended (cancelled).",
            }
        },
    )
    assert _event_types(queued.job.id) == [(1, "queued"), (2, "cancelled")]


def test_cancelling_a_running_job_flags_it_for_its_worker(tenant_a, running):
    teacher = tenant_a.teacher.user
    response = _cancel(api_client_for(teacher), tenant_a, running.id)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["state"], body["cancel_requested"], body["last_seq"]) == ("running", True, 3)
    job = _job_row(running.id)
    assert (job.state, job.cancel_requested_by, job.lease_token) == ("running", teacher, 1)
    assert job.cancel_requested_at is not None
    assert _event_types(job.id) == [(1, "queued"), (2, "started"), (3, "cancel_requested")]
    with scopes_disabled():
        assert JobEvent.objects.get(job=job, seq=3).payload == {}


def test_cancelling_a_running_job_twice_is_idempotent(tenant_a, running):
    client = api_client_for(running.submission.learner)
    assert _cancel(client, tenant_a, running.id).status_code == 200
    before = db_snapshot()
    response = _cancel(client, tenant_a, running.id)
    assert response.status_code == 200, response.content
    assert (response.json()["cancel_requested"], response.json()["last_seq"]) == (True, 3)
    assert db_snapshot() == before


def test_cancelling_a_finished_job_is_a_409_and_changes_nothing(tenant_a):
    client = api_client_for(tenant_a.learner.user)
    _refused(
        client,
        "post",
        _api(tenant_a, f"jobs/{tenant_a.job.id}/cancel/"),
        status=409,
        body={
            "error": {
                "code": "conflict",
                "fields": {},
                "message": "This job has already ended (succeeded).",
            }
        },
    )


def test_cancel_takes_no_body(tenant_a, queued):
    client = api_client_for(queued.learner)
    _refused(
        client,
        "post",
        _api(tenant_a, f"jobs/{queued.job.id}/cancel/"),
        {"now": True},
        status=400,
        body=_invalid({"non_field_errors": ["This endpoint takes no request body."]}),
    )


# --- Events --------------------------------------------------------------------------------------


def _events_url(world, after=None) -> str:
    query = "" if after is None else f"?after={after}"
    return _api(world, f"jobs/{world.job.id}/events/{query}")


def test_the_events_after_a_sequence_number_come_in_order(tenant_a):
    client = api_client_for(tenant_a.learner.user)
    response = client.get(_events_url(tenant_a, 1))
    assert response.status_code == 200, response.content
    events = response.json()
    with scopes_disabled():
        stored = list(JobEvent.objects.filter(job=tenant_a.job, seq__gt=1).order_by("seq"))
    assert [parse_datetime(event.pop("at")) for event in events] == [e.created_at for e in stored]
    assert events == [
        {"seq": 2, "attempt": 1, "type": "started", "payload": {}},
        {"seq": 3, "attempt": 1, "type": "succeeded", "payload": {}},
    ]


@pytest.mark.parametrize("after, seqs", [(None, [1, 2, 3]), (0, [1, 2, 3]), (3, []), (99, [])])
def test_the_events_list_from_the_start_or_past_the_end(tenant_a, after, seqs):
    response = api_client_for(tenant_a.learner.user).get(_events_url(tenant_a, after))
    assert response.status_code == 200, response.content
    assert [event["seq"] for event in response.json()] == seqs


@pytest.mark.parametrize("after", ["x", "-1", "1.5", "", "%C2%B2", "1234567890"])
def test_a_bad_after_is_a_400_naming_after(tenant_a, after):
    client = api_client_for(tenant_a.learner.user)
    _refused(
        client,
        "get",
        _events_url(tenant_a, after),
        status=400,
        body=_invalid({"after": ["A whole number from 0 to 999999999."]}),
    )
