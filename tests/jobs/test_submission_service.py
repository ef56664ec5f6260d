"""Submitting a model and validating a spec through the API: what a submission creates, the
assignment's window and attempt limit, who may submit, and every bad input answered with a 400
that names the field and creates nothing. No worker runs here: a code submission is only
created and queued."""

import copy
from datetime import timedelta

import pytest
import redis
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_scopes import scopes_disabled

from apps.jobs.models import Job, JobEvent, Submission
from runtime.templates import TEMPLATES
from tests.conftest import api_client_for, page_client_for
from tests.factories import (
    AssignmentFactory,
    CourseFactory,
    EnrollmentFactory,
    ExerciseFactory,
    MembershipFactory,
)
from tests.jobs.faults_support import RedisServer, this_process_on_redis
from tests.snapshots import db_snapshot

pytestmark = [pytest.mark.django_db, pytest.mark.calendar]

XOR_SPEC = TEMPLATES["xor"].spec
XOR_CODE = TEMPLATES["xor"].code
DIGITS_MLP = {
    "version": 1,
    "layers": [
        {"type": "linear", "out_features": 32},
        {"type": "relu"},
        {"type": "dropout", "p": 0.1},
        {"type": "linear", "out_features": 10},
    ],
    "training": {"optimizer": {"type": "sgd", "lr": 0.1}, "epochs": 5, "batch_size": 32},
}
INVALID = {"code": "invalid", "message": "The request has invalid fields; see error.fields."}
NOT_FOUND = {"error": {"code": "not_found", "message": "Not found.", "fields": {}}}


def _xor_with_a_wrong_layer_3() -> dict:
    spec = copy.deepcopy(XOR_SPEC)
    spec["layers"][2]["in_features"] = 3
    return spec


SHAPE_MESSAGE = "layer 3 (linear) expects 3 inputs but receives 2; check the size after relu"


def _url(world, assignment=None, action="submissions") -> str:
    assignment = assignment or world.assignment
    return f"/api/v1/t/{world.tenant.slug}/assignments/{assignment.id}/{action}/"


def _assignment(world, *, exercise=None, **fields):
    return AssignmentFactory(exercise=exercise or world.exercise, **fields)


def _code_exercise(world, **fields):
    return ExerciseFactory(course=world.course, allow_code=True, starter_code=XOR_CODE, **fields)


def _refused(client, url, payload, *, status, fields=None, body=None):
    """POST `payload`; assert the status, the error body, and that nothing changed."""
    before = db_snapshot()
    response = client.post(url, payload, format="json")
    assert response.status_code == status, response.content
    if fields is not None:
        assert response.json() == {"error": {**INVALID, "fields": fields}}
    if body is not None:
        assert response.json() == body
    assert db_snapshot() == before
    return response


def _rows(submission_id) -> tuple[Submission, Job, list[tuple]]:
    with scopes_disabled():
        submission = Submission.objects.select_related("job").get(id=submission_id)
        events = list(
            JobEvent.objects.filter(job=submission.job)
            .order_by("seq")
            .values_list("seq", "attempt", "type", "payload")
        )
    return submission, submission.job, events


def _counts() -> tuple[int, int, int]:
    with scopes_disabled():
        return Submission.objects.count(), Job.objects.count(), JobEvent.objects.count()


# --- Submitting ----------------------------------------------------------------------------------


def test_a_spec_submission_creates_its_queued_job_and_one_event(tenant_a):
    learner = tenant_a.learner.user
    client = api_client_for(learner)
    counts = _counts()

    response = client.post(_url(tenant_a), {"kind": "spec", "spec": XOR_SPEC}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    submission, job, events = _rows(body["id"])
    assert _counts() == (counts[0] + 1, counts[1] + 1, counts[2] + 1)
    assert (submission.learner, submission.assignment_id, submission.kind, submission.attempt) == (
        learner,
        tenant_a.assignment.id,
        "spec",
        2,
    )
    assert (submission.spec, submission.code, submission.is_late) == (XOR_SPEC, "", False)
    assert (job.state, job.attempt, job.last_seq, job.lease_token, job.lease_owner) == (
        "queued",
        0,
        1,
        0,
        "",
    )
    assert (job.queue, job.workers_lost, job.started_at, job.finished_at) == ("gpu", 0, None, None)
    assert events == [(1, 0, "queued", {"submission": str(submission.id), "attempt": 2})]

    assert parse_datetime(body.pop("created_at")) == submission.created_at
    assert parse_datetime(body["job"].pop("created_at")) == job.created_at
    assert body == {
        "id": str(submission.id),
        "assignment": str(tenant_a.assignment.id),
        "learner": learner.email,
        "kind": "spec",
        "attempt": 2,
        "is_late": False,
        "job": {
            "id": str(job.id),
            "submission": str(submission.id),
            "state": "queued",
            "attempt": 0,
            "workers_lost": 0,
            "last_seq": 1,
            "started_at": None,
            "finished_at": None,
            "cancel_requested": False,
            "failure_kind": "",
            "message": "",
            "outcome": None,
            "device": "",
        },
        "grade": None,
        "spec": XOR_SPEC,
        "code": "",
        "integrity_flags": [],
    }


def test_a_code_submission_carrying_a_literal_table_is_flagged_for_the_teacher_alone(tenant_a):
    assignment = _assignment(tenant_a, exercise=_code_exercise(tenant_a))
    table = {f"{n:012x}": n % 10 for n in range(400)}  # hashed inputs to their labels
    code = XOR_CODE + f"\n\nANSWERS = {table!r}\n"
    line = code.count("\n", 0, code.index("ANSWERS")) + 1
    learner = api_client_for(tenant_a.learner.user)

    response = learner.post(
        _url(tenant_a, assignment), {"kind": "code", "code": code}, format="json"
    )

    assert response.status_code == 201, response.content  # a flag refuses nothing
    assert response.json()["integrity_flags"] == []  # the learner is not shown it
    submission = _rows(response.json()["id"])[0]
    (flag,) = submission.integrity_flags
    assert flag["path"] == f"code:{line}"
    assert flag["message"].startswith(f"Line {line} holds a literal 400-entry table of ")
    detail = f"/api/v1/t/{tenant_a.tenant.slug}/submissions/{submission.id}/"
    teacher = api_client_for(tenant_a.teacher.user).get(detail).json()
    assert teacher["integrity_flags"] == [flag]
    assert learner.get(detail).json()["integrity_flags"] == []
    page = page_client_for(tenant_a.teacher.user).get(
        f"/t/{tenant_a.tenant.slug}/runs/{submission.id}/"
    )
    assert 'id="integrity-flags"' in page.content.decode()
    own = page_client_for(tenant_a.learner.user).get(
        f"/t/{tenant_a.tenant.slug}/runs/{submission.id}/"
    )
    assert 'id="integrity-flags"' not in own.content.decode()


def test_a_code_submission_is_created_and_queued(tenant_a):
    assignment = _assignment(tenant_a, exercise=_code_exercise(tenant_a))
    client = api_client_for(tenant_a.learner.user)

    response = client.post(
        _url(tenant_a, assignment), {"kind": "code", "code": XOR_CODE}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    submission, job, events = _rows(body["id"])
    assert (submission.kind, submission.attempt, submission.spec, submission.code) == (
        "code",
        1,
        None,
        XOR_CODE,
    )
    assert (body["kind"], body["attempt"], body["spec"], body["code"]) == (
        "code",
        1,
        None,
        XOR_CODE,
    )
    assert (job.state, job.last_seq) == ("queued", 1)
    assert events == [(1, 0, "queued", {"submission": str(submission.id), "attempt": 1})]


def test_the_job_is_published_only_after_the_commit(
    tenant_a, django_capture_on_commit_callbacks, tmp_path
):
    """The pool is idle, so the submit releases its job at once (no dispatch round); the task
    reaches the broker (a private Redis here) only when the transaction has committed."""
    client = api_client_for(tenant_a.learner.user)
    server = RedisServer(tmp_path)
    server.start()
    try:
        with this_process_on_redis(server.url):
            broker = redis.Redis.from_url(server.url)
            with django_capture_on_commit_callbacks() as callbacks:
                response = client.post(
                    _url(tenant_a), {"kind": "spec", "spec": XOR_SPEC}, format="json"
                )
            assert response.status_code == 201, response.content
            _, job, _ = _rows(response.json()["id"])
            assert (job.state, job.queue, job.dispatched_at is not None) == ("queued", "gpu", True)
            assert broker.llen("gpu") == 0  # nothing published inside the transaction

            for callback in callbacks:  # the commit: publish the event, then the task
                callback()
            assert broker.llen("gpu") == 1
    finally:
        server.stop()
    job.refresh_from_db()
    assert job.state == "queued"


def test_attempt_numbers_increase_and_the_sixth_of_five_is_refused(tenant_a):
    client = api_client_for(tenant_a.learner.user)  # attempt 1 is the fixture's
    attempts = []
    for _ in range(4):
        response = client.post(_url(tenant_a), {"kind": "spec", "spec": XOR_SPEC}, format="json")
        assert response.status_code == 201, response.content
        attempts.append(response.json()["attempt"])
    assert attempts == [2, 3, 4, 5]

    _refused(
        client,
        _url(tenant_a),
        {"kind": "spec", "spec": XOR_SPEC},
        status=400,
        fields={"assignment": ["All 5 attempts are used."]},
    )


@pytest.mark.parametrize(
    "kind, free",
    [("workers_lost", True), ("internal", True), ("setup", True), ("exception", False)],
)
def test_a_run_the_platform_failed_costs_no_attempt(tenant_a, kind, free):
    """Attempts 2 to 5 are taken; attempt 4's run failed. A failure of the platform gives the
    attempt back (the next submission is attempt 6, and the dashboard says 4 of 5 used); the
    learner's own failure does not."""
    client = api_client_for(tenant_a.learner.user)
    ids = []
    for _ in range(4):
        response = client.post(_url(tenant_a), {"kind": "spec", "spec": XOR_SPEC}, format="json")
        ids.append(response.json()["job"]["id"])
    with scopes_disabled():
        Job.objects.filter(id=ids[2]).update(state="failed", failure_kind=kind)
    me = client.get("/api/v1/t/alpha/me/assignments/").json()["results"]
    [row] = [r for r in me if r["id"] == str(tenant_a.assignment.id)]
    assert (row["attempts_used"], row["attempts_left"]) == ((4, 1) if free else (5, 0))
    response = client.post(_url(tenant_a), {"kind": "spec", "spec": XOR_SPEC}, format="json")
    if free:
        assert (response.status_code, response.json()["attempt"]) == (201, 6)
    else:
        assert response.json()["error"]["fields"] == {"assignment": ["All 5 attempts are used."]}
    _refused(
        client,
        _url(tenant_a),
        {"kind": "spec", "spec": XOR_SPEC},
        status=400,
        fields={"assignment": ["All 5 attempts are used."]},
    )


def test_attempts_are_counted_per_learner(tenant_a):
    other = MembershipFactory(tenant=tenant_a.tenant).user
    EnrollmentFactory(course=tenant_a.course, user=other)
    response = api_client_for(other).post(
        _url(tenant_a), {"kind": "spec", "spec": XOR_SPEC}, format="json"
    )
    assert (response.status_code, response.json()["attempt"]) == (201, 1)


def _days(n: int):
    return timezone.now() + timedelta(days=n)


@pytest.mark.parametrize(
    "dates, message",
    [
        (
            {"opens_at": _days(1), "due_at": _days(2)},
            "This assignment is not open yet.",
        ),
        (
            {"opens_at": _days(-2), "due_at": _days(-1), "late_policy": "refuse"},
            "This assignment was due; it takes no more work.",
        ),
        (
            {
                "opens_at": _days(-3),
                "due_at": _days(-2),
                "closes_at": _days(-1),
                "late_policy": "penalty",
                "late_penalty": 0.2,
            },
            "This assignment is closed.",
        ),
        (
            {
                "opens_at": _days(-3),
                "due_at": _days(-2),
                "closes_at": _days(-1),
                "late_policy": "accept",
            },
            "This assignment is closed.",
        ),
    ],
    ids=["not-open-yet", "due-refuse", "penalty-closed", "accept-closed"],
)
def test_outside_its_window_an_assignment_refuses_work(tenant_a, dates, message):
    assignment = _assignment(tenant_a, **dates)
    client = api_client_for(tenant_a.learner.user)
    _refused(
        client,
        _url(tenant_a, assignment),
        {"kind": "spec", "spec": XOR_SPEC},
        status=400,
        fields={"assignment": [message]},
    )


@pytest.mark.parametrize(
    "policy, closes_in_days", [("accept", None), ("accept", 1), ("penalty", 1)]
)
def test_past_due_under_a_late_policy_the_submission_is_late(tenant_a, policy, closes_in_days):
    closes_at = None if closes_in_days is None else _days(closes_in_days)
    assignment = _assignment(
        tenant_a,
        opens_at=_days(-2),
        due_at=_days(-1),
        closes_at=closes_at,
        late_policy=policy,
        late_penalty=0.1,
    )
    client = api_client_for(tenant_a.learner.user)
    response = client.post(
        _url(tenant_a, assignment), {"kind": "spec", "spec": XOR_SPEC}, format="json"
    )
    assert response.status_code == 201, response.content
    assert (response.json()["is_late"], response.json()["attempt"]) == (True, 1)
    submission, _, _ = _rows(response.json()["id"])
    assert submission.is_late is True


def test_a_learner_gets_404_for_an_unpublished_assignment(tenant_a):
    assignment = _assignment(tenant_a, published_at=None)
    client = api_client_for(tenant_a.learner.user)
    _refused(
        client,
        _url(tenant_a, assignment),
        {"kind": "spec", "spec": XOR_SPEC},
        status=404,
        body=NOT_FOUND,
    )


def test_a_learner_gets_404_for_an_assignment_of_an_unpublished_course(tenant_a):
    course = CourseFactory(tenant=tenant_a.tenant, published_at=None)
    EnrollmentFactory(course=course, user=tenant_a.learner.user)
    assignment = AssignmentFactory(exercise=ExerciseFactory(course=course))
    client = api_client_for(tenant_a.learner.user)
    _refused(
        client,
        _url(tenant_a, assignment),
        {"kind": "spec", "spec": XOR_SPEC},
        status=404,
        body=NOT_FOUND,
    )


def test_a_learner_not_enrolled_gets_404(tenant_a):
    stranger = MembershipFactory(tenant=tenant_a.tenant).user
    client = api_client_for(stranger)
    _refused(client, _url(tenant_a), {"kind": "spec", "spec": XOR_SPEC}, status=404, body=NOT_FOUND)


def test_a_teacher_of_the_course_is_not_enrolled_and_cannot_submit(tenant_a):
    client = api_client_for(tenant_a.teacher.user)
    _refused(
        client,
        _url(tenant_a),
        {"kind": "spec", "spec": XOR_SPEC},
        status=400,
        fields={"assignment": ["You are not enrolled in this course."]},
    )


@pytest.mark.parametrize(
    "payload, fields",
    [
        (
            {"kind": "code", "code": XOR_CODE},
            {"kind": ["This exercise takes spec submissions."]},
        ),
        ({"kind": "notebook", "spec": XOR_SPEC}, {"kind": ['"notebook" is not a valid choice.']}),
        ({"spec": XOR_SPEC}, {"kind": ["This field is required."]}),
        ({"kind": "spec", "spec": _xor_with_a_wrong_layer_3()}, {"spec": [SHAPE_MESSAGE]}),
        (
            {"kind": "spec", "spec": {}},
            {
                "spec": [
                    "the spec needs version, which must be 1",
                    "the spec needs layers, a list of at least one layer",
                    "the spec needs training, an object with optimizer, epochs and batch_size",
                ]
            },
        ),
        ({"kind": "spec"}, {"spec": ["A spec submission needs a spec."]}),
        ({"kind": "spec", "spec": [1, 2]}, {"spec": ["A spec is a JSON object."]}),
        (
            {"kind": "spec", "spec": XOR_SPEC, "code": XOR_CODE},
            {"code": ["A spec submission takes no code."]},
        ),
        (
            {"kind": "spec", "spec": XOR_SPEC, "notes": "hi"},
            {"notes": ["Unknown field; this endpoint does not accept it."]},
        ),
    ],
    ids=[
        "kind-not-allowed",
        "kind-unknown",
        "kind-missing",
        "spec-shape",
        "spec-document",
        "spec-missing",
        "spec-not-an-object",
        "spec-with-code",
        "unknown-field",
    ],
)
def test_a_bad_spec_submission_is_a_400_naming_the_field(tenant_a, payload, fields):
    client = api_client_for(tenant_a.learner.user)
    _refused(client, _url(tenant_a), payload, status=400, fields=fields)


@pytest.mark.parametrize(
    "payload, fields",
    [
        (
            {"kind": "code", "code": "def build_model(input_shape, num_classes):\n    return (\n"},
            {"code": ["Syntax error on line 2, column 12: '(' was never closed."]},
        ),
        (
            {"kind": "code", "code": "import torch\n"},
            {
                "code": [
                    "Your code must define a function build_model(input_shape, num_classes) "
                    "that returns a torch.nn.Module."
                ]
            },
        ),
        ({"kind": "code", "code": ""}, {"code": ["This field may not be blank."]}),
        (
            {"kind": "code", "code": XOR_CODE, "spec": XOR_SPEC},
            {"spec": ["A code submission takes no spec."]},
        ),
        ({"kind": "spec", "spec": XOR_SPEC}, {"kind": ["This exercise takes code submissions."]}),
    ],
    ids=["syntax-error", "no-build-model", "blank", "code-with-spec", "kind-not-allowed"],
)
def test_a_bad_code_submission_is_a_400_naming_the_field(tenant_a, payload, fields):
    assignment = _assignment(tenant_a, exercise=_code_exercise(tenant_a, allow_spec=False))
    client = api_client_for(tenant_a.learner.user)
    _refused(client, _url(tenant_a, assignment), payload, status=400, fields=fields)


def test_a_malformed_json_body_is_a_400(tenant_a):
    client = api_client_for(tenant_a.learner.user)
    before = db_snapshot()
    response = client.post(_url(tenant_a), "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
    assert db_snapshot() == before


# --- Validating a spec ---------------------------------------------------------------------------


def _validated(world, spec, assignment=None) -> dict:
    client = api_client_for(world.learner.user)
    before = db_snapshot()
    response = client.post(_url(world, assignment, "validate"), {"spec": spec}, format="json")
    assert response.status_code == 200, response.content
    assert db_snapshot() == before
    return response.json()


def _layer(position, type, shape_in, shape_out, params, flops) -> dict:
    return {
        "position": position,
        "type": type,
        "input_shape": shape_in,
        "output_shape": shape_out,
        "params": params,
        "flops": flops,
    }


XOR_LAYERS = [
    _layer("1", "linear", [2], [2], 6, 8),
    _layer("2", "relu", [2], [2], 0, 2),
    _layer("3", "linear", [2], [1], 3, 4),
    _layer("4", "sigmoid", [1], [1], 0, 1),
]


def test_the_xor_template_validates_with_its_shapes_and_parameter_counts(tenant_a):
    assert _validated(tenant_a, XOR_SPEC) == {
        "valid": True,
        "input_shape": [2],
        "output_shape": [1],
        "layers": XOR_LAYERS,
        "total_params": 9,
        "total_flops": 15,
        "memory_bytes": 2192,
        "problems": [],
    }


def test_a_digits_mlp_validates_with_its_shapes_and_parameter_counts(tenant_a):
    exercise = ExerciseFactory(course=tenant_a.course, dataset="digits", starter_spec=DIGITS_MLP)
    report = _validated(tenant_a, DIGITS_MLP, _assignment(tenant_a, exercise=exercise))
    assert report == {
        "valid": True,
        "input_shape": [64],
        "output_shape": [10],
        "layers": [
            _layer("1", "linear", [64], [32], 2080, 4096),  # 64 x 32 + 32
            _layer("2", "relu", [32], [32], 0, 32),
            _layer("3", "dropout", [32], [32], 0, 32),
            _layer("4", "linear", [32], [10], 330, 640),  # 32 x 10 + 10
        ],
        "total_params": 2410,
        "total_flops": 4800,
        "memory_bytes": 82080,
        "problems": [],
    }


def test_a_spec_with_a_shape_error_is_reported_invalid_with_its_problem(tenant_a):
    report = _validated(tenant_a, _xor_with_a_wrong_layer_3())
    assert (report["valid"], report["layers"], report["total_params"]) == (False, XOR_LAYERS, 9)
    assert report["problems"] == [
        {"path": "layers[2].in_features", "layer": "3", "message": SHAPE_MESSAGE}
    ]


def test_a_spec_that_does_not_parse_is_reported_invalid_with_every_problem(tenant_a):
    spec = {"version": 1, "layers": [{"type": "transformer"}], "training": XOR_SPEC["training"]}
    report = _validated(tenant_a, spec)
    assert {key: report[key] for key in report if key != "problems"} == {
        "valid": False,
        "input_shape": None,
        "output_shape": None,
        "layers": [],
        "total_params": None,
        "total_flops": None,
        "memory_bytes": None,
    }
    assert [(p["path"], p["layer"]) for p in report["problems"]] == [("layers[0].type", "1")]
    assert report["problems"][0]["message"].startswith(
        'layer 1 has an unknown type "transformer" (did you mean "transformer_encoder_layer"?)'
    )


@pytest.mark.parametrize(
    "payload, fields",
    [
        ({}, {"spec": ["This field is required."]}),
        ({"spec": "linear"}, {"spec": ["A spec is a JSON object."]}),
        ({"spec": None}, {"spec": ["This field may not be null."]}),
        (
            {"spec": XOR_SPEC, "kind": "spec"},
            {"kind": ["Unknown field; this endpoint does not accept it."]},
        ),
    ],
    ids=["missing", "not-an-object", "null", "unknown-field"],
)
def test_a_malformed_validate_request_is_a_400(tenant_a, payload, fields):
    client = api_client_for(tenant_a.learner.user)
    _refused(client, _url(tenant_a, action="validate"), payload, status=400, fields=fields)


def test_validate_is_404_for_a_learner_not_enrolled(tenant_a):
    client = api_client_for(MembershipFactory(tenant=tenant_a.tenant).user)
    _refused(
        client, _url(tenant_a, action="validate"), {"spec": XOR_SPEC}, status=404, body=NOT_FOUND
    )
