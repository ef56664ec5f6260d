"""Jobs API: submit, validate a spec, follow a job, cancel it, read grades, override them, and
the assignment leaderboard. Everything is under /api/v1/t/<slug>/.

Access: a learner sees their own submissions and jobs; a teacher of the course (or a tenant
admin) sees all of the course's. An object the caller may not see is a 404, as if it did not
exist; a teacher-only operation asked by someone who may see the object is a 403.
"""

from django.db.models import Q
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from apps.core.api.errors import ConflictError, answers
from apps.core.api.pagination import PageNumberPagination
from apps.core.api.params import whole_number_param, whole_number_schema
from apps.core.api.serializers import InputSerializer
from apps.core.api.views import ApiView
from apps.courses.access import course_sees, course_teaches
from apps.courses.models import Assignment
from apps.jobs import grading, selectors, services, tickets
from apps.jobs.models import Grade, Job, Submission, SubmissionKind
from apps.quotas.services import QuotaExceeded
from apps.tenants.models import Role
from apps.tenants.permissions import TenantTeacher
from runtime.datasets import UnknownDataset, dataset_info, dataset_names


@extend_schema_field(OpenApiTypes.OBJECT)
class JsonDocumentField(serializers.JSONField):
    """A spec document: a JSON object, and not a huge one."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError("A spec is a JSON object.")
        return super().to_internal_value(data)


# --- Output --------------------------------------------------------------------------------------


class GradeRevisionOutputSerializer(serializers.Serializer):
    score = serializers.DecimalField(max_digits=6, decimal_places=2)
    source = serializers.CharField()
    reason = serializers.CharField()
    author = serializers.EmailField(source="author.email", allow_null=True, default=None)
    created_at = serializers.DateTimeField()


class GradeOutputSerializer(serializers.ModelSerializer):
    """A grade as its viewer may see it. While it is withheld from its learner (an assignment
    with hidden test parts, before the due date: selectors.grade_withheld_until), `score`,
    `automatic_score`, `feedback` and the private part's metrics are left out, `metrics` holds
    only `public` (the public part's figures, when the teacher shows them live) and
    `withheld_until` says when the grade is revealed."""

    score = serializers.DecimalField(max_digits=6, decimal_places=2, allow_null=True)
    automatic_score = serializers.DecimalField(max_digits=6, decimal_places=2, allow_null=True)
    overridden_by = serializers.EmailField(
        source="overridden_by.email", allow_null=True, default=None
    )
    withheld_until = serializers.SerializerMethodField()

    class Meta:
        model = Grade
        fields = [
            "score",
            "max_score",
            "metrics",
            "feedback",
            "source",
            "automatic_score",
            "override_reason",
            "overridden_by",
            "overridden_at",
            "created_at",
            "withheld_until",
        ]

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_withheld_until(self, grade) -> str | None:
        return None

    def to_representation(self, grade):
        data = super().to_representation(grade)
        until = self.context.get("withheld_until")
        if until is not None:
            now = self.context["now"]
            public = selectors.grade_public_shown(grade=grade, now=now)
            data |= {
                "score": None,
                "automatic_score": None,
                "feedback": "",
                "override_reason": "",
                "metrics": {} if public is None else {"public": public},
                "withheld_until": serializers.DateTimeField().to_representation(until),
            }
            if "revisions" in data:
                data["revisions"] = []
        return data


class GradeWithHistoryOutputSerializer(GradeOutputSerializer):
    revisions = GradeRevisionOutputSerializer(many=True)

    class Meta(GradeOutputSerializer.Meta):
        fields = [*GradeOutputSerializer.Meta.fields, "revisions"]


class JobOutputSerializer(serializers.ModelSerializer):
    submission = serializers.UUIDField(source="submission_id")
    cancel_requested = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "submission",
            "state",
            "attempt",
            "workers_lost",
            "last_seq",
            "created_at",
            "started_at",
            "finished_at",
            "cancel_requested",
            "failure_kind",
            "message",
            "outcome",
            "device",
        ]

    def get_cancel_requested(self, job) -> bool:
        return job.cancel_requested_at is not None


class SubmissionOutputSerializer(serializers.ModelSerializer):
    assignment = serializers.UUIDField(source="assignment_id")
    learner = serializers.EmailField(source="learner.email")
    job = JobOutputSerializer()
    grade = serializers.SerializerMethodField()

    class Meta:
        model = Submission
        fields = [
            "id",
            "assignment",
            "learner",
            "kind",
            "attempt",
            "is_late",
            "created_at",
            "job",
            "grade",
        ]

    grade_serializer = GradeOutputSerializer

    @extend_schema(responses=GradeOutputSerializer(allow_null=True))
    def get_grade(self, submission) -> dict | None:
        if not _has_grade(submission):
            return None
        grade = submission.grade
        now = self.context.get("now") or timezone.now()
        until = selectors.grade_withheld_until(
            grade=grade, teaches=self._teaches(submission), now=now
        )
        context = {"withheld_until": until, "now": now}
        return self.grade_serializer(grade, context=context).data

    def _teaches(self, submission) -> bool:
        """Whether the caller teaches the submission's course (a learner's grade may be
        withheld from them); without a request in the context, a grade is withheld."""
        request = self.context.get("request")
        if request is None:
            return False
        known = self.context.setdefault("teaches", {})
        course = submission.assignment.course
        if course.pk not in known:
            known[course.pk] = course_teaches(
                access=request.tenant_access, user=request.user, course=course
            )
        return known[course.pk]


class IntegrityFlagSerializer(serializers.Serializer):
    path = serializers.CharField()
    message = serializers.CharField()


class SubmissionDetailOutputSerializer(SubmissionOutputSerializer):
    spec = serializers.JSONField()
    code = serializers.CharField()
    grade = serializers.SerializerMethodField()
    integrity_flags = serializers.SerializerMethodField()

    class Meta(SubmissionOutputSerializer.Meta):
        fields = [*SubmissionOutputSerializer.Meta.fields, "spec", "code", "integrity_flags"]

    @extend_schema_field(IntegrityFlagSerializer(many=True))
    def get_integrity_flags(self, submission) -> list:
        """What the integrity checks found in the code (a literal table of data, with its
        line): for the course's teachers; the learner gets an empty list."""
        return list(submission.integrity_flags) if self._teaches(submission) else []

    grade_serializer = GradeWithHistoryOutputSerializer

    @extend_schema(responses=GradeWithHistoryOutputSerializer(allow_null=True))
    def get_grade(self, submission) -> dict | None:
        return super().get_grade(submission)


def _has_grade(submission) -> bool:
    try:
        submission.grade  # noqa: B018 (a reverse one-to-one raises when absent)
    except Grade.DoesNotExist:
        return False
    return True


class JobEventOutputSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    attempt = serializers.IntegerField()
    type = serializers.CharField()
    payload = serializers.JSONField()
    at = serializers.DateTimeField(source="created_at")


# --- Lookups with the access rule ----------------------------------------------------------------


def _assignment(request, assignment_id) -> Assignment:
    assignment = (
        Assignment.objects.select_related("course", "exercise").filter(id=assignment_id).first()
    )
    if assignment is None:
        raise exceptions.NotFound()
    access, user = request.tenant_access, request.user
    teaches = course_teaches(access=access, user=user, course=assignment.course)
    visible = assignment.is_published and course_sees(
        access=access, user=user, course=assignment.course
    )
    if not teaches and not visible:
        raise exceptions.NotFound()
    request.teaches = teaches
    return assignment


def _submission(request, submission_id) -> Submission:
    submission = selectors.submission_get(submission_id=submission_id)
    if submission is None or not selectors.submission_visible(
        access=request.tenant_access, user=request.user, submission=submission
    ):
        raise exceptions.NotFound()
    return submission


def _job(request, job_id) -> Job:
    job = selectors.job_get(job_id=job_id)
    if job is None or not selectors.job_visible(
        access=request.tenant_access, user=request.user, job=job
    ):
        raise exceptions.NotFound()
    return job


def _teacher_only(request, course) -> None:
    if not course_teaches(access=request.tenant_access, user=request.user, course=course):
        raise exceptions.PermissionDenied("This needs a teacher of this course.")


@answers(QuotaExceeded)
class QuotaRefusal(exceptions.APIException):
    """The submission is valid but does not fit the tenant's GPU quota (nothing was created)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "quota_exceeded"


class JobConflict(ConflictError):
    """The job has already ended: there is nothing left to cancel (a service's Conflict, which
    the exception handler answers; named here for the schema)."""


# --- Views -----------------------------------------------------------------------------------


class AssignmentSubmissionListApi(ApiView):
    """Submissions to an assignment. A learner submits a model (a layer spec or PyTorch
    code) to be trained and graded; it is refused when no attempt is left, the assignment is
    closed or the GPU quota is spent."""

    pagination_class = PageNumberPagination

    class SubmissionCreateInputSerializer(InputSerializer):
        kind = serializers.ChoiceField(choices=SubmissionKind.choices)
        spec = JsonDocumentField(required=False)
        code = serializers.CharField(required=False, max_length=64 * 1024, trim_whitespace=False)

    input_serializers = {"post": SubmissionCreateInputSerializer}
    raises = {"post": [QuotaRefusal]}

    @extend_schema(responses=SubmissionOutputSerializer(many=True))
    def get(self, request, tenant_slug, assignment_id):
        """A teacher of the course sees every submission; a learner their own."""
        assignment = _assignment(request, assignment_id)
        learner = None if request.teaches else request.user
        rows = selectors.submission_list(assignment=assignment, learner=learner)
        return self.paginated(
            request, rows, SubmissionOutputSerializer, context={"request": request}
        )

    @extend_schema(
        request=SubmissionCreateInputSerializer,
        responses={201: SubmissionDetailOutputSerializer},
    )
    def post(self, request, tenant_slug, assignment_id):
        assignment = _assignment(request, assignment_id)
        values = self.validated_input(request)
        submission = services.submission_create(
            assignment=assignment,
            learner=request.user,
            kind=values["kind"],
            spec=values.get("spec"),
            code=values.get("code", ""),
        )
        # As created (the worker may already have claimed the job: the events tell that).
        return Response(
            SubmissionDetailOutputSerializer(submission, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class SpecValidateApi(ApiView):
    """Shapes and parameter counts of a spec on the assignment's dataset, or its problems.
    Creates nothing."""

    class SpecValidateInputSerializer(InputSerializer):
        spec = JsonDocumentField()

    class LayerReportSerializer(serializers.Serializer):
        position = serializers.CharField()
        type = serializers.CharField()
        output_shape = serializers.ListField(child=serializers.IntegerField())
        params = serializers.IntegerField()

    class ProblemSerializer(serializers.Serializer):
        path = serializers.CharField()
        layer = serializers.CharField(allow_null=True)
        message = serializers.CharField()

    class SpecReportOutputSerializer(serializers.Serializer):
        valid = serializers.BooleanField()
        input_shape = serializers.ListField(child=serializers.IntegerField(), allow_null=True)
        output_shape = serializers.ListField(child=serializers.IntegerField(), allow_null=True)
        layers = serializers.ListField(child=serializers.DictField())
        total_params = serializers.IntegerField(allow_null=True)
        total_flops = serializers.IntegerField(allow_null=True)
        memory_bytes = serializers.IntegerField(allow_null=True)
        problems = serializers.ListField(child=serializers.DictField())

    input_serializers = {"post": SpecValidateInputSerializer}

    @extend_schema(request=SpecValidateInputSerializer, responses=SpecReportOutputSerializer)
    def post(self, request, tenant_slug, assignment_id):
        assignment = _assignment(request, assignment_id)
        values = self.validated_input(request)
        report = services.spec_report(dataset=assignment.exercise.dataset, spec=values["spec"])
        return Response(report)


class DatasetSpecValidateApi(ApiView):
    """For teachers writing an exercise's starter model: the same report on a dataset named in
    the request. Creates nothing."""

    permission_classes = [*ApiView.permission_classes, TenantTeacher]

    class DatasetSpecValidateInputSerializer(InputSerializer):
        dataset = serializers.CharField(
            max_length=50, help_text=f"One of {', '.join(dataset_names())}, or upload:..."
        )
        spec = JsonDocumentField()

    input_serializers = {"post": DatasetSpecValidateInputSerializer}

    @extend_schema(
        request=DatasetSpecValidateInputSerializer,
        responses=SpecValidateApi.SpecReportOutputSerializer,
    )
    def post(self, request, tenant_slug):
        values = self.validated_input(request)
        try:  # a built-in name, or one of the tenant's ready versions
            dataset_info(values["dataset"])
        except UnknownDataset as exc:
            raise exceptions.ValidationError({"dataset": [str(exc)]}) from None
        return Response(services.spec_report(dataset=values["dataset"], spec=values["spec"]))


class LeaderboardApi(ApiView):
    """The assignment's leaderboard: each learner's best, highest first. Teachers of its course
    see every learner's email, each hidden test part's score and the grades. Enrolled learners
    see names only and, for a dataset with hidden parts (docs/datasets.md), the public part's
    scores while the assignment runs (when the teacher shows them live) and the private part's
    and the grades after the due date; for a dataset of one part, the grades."""

    class LeaderboardRowSerializer(serializers.Serializer):
        rank = serializers.IntegerField()
        learner = serializers.EmailField(allow_null=True, help_text="Teachers only.")
        full_name = serializers.CharField()
        you = serializers.BooleanField(help_text="This row is the caller's.")
        public_metric = serializers.FloatField(
            allow_null=True, help_text="On the public test part; null: hidden or no such part."
        )
        private_metric = serializers.FloatField(
            allow_null=True, help_text="On the private test part (the grade's); null: hidden."
        )
        score = serializers.DecimalField(max_digits=6, decimal_places=2, allow_null=True)
        max_score = serializers.DecimalField(max_digits=6, decimal_places=2)
        submission = serializers.UUIDField(allow_null=True, help_text="Teachers and its learner.")
        attempt = serializers.IntegerField()
        submitted_at = serializers.DateTimeField()

    @extend_schema(responses=LeaderboardRowSerializer(many=True))
    def get(self, request, tenant_slug, assignment_id):
        assignment = _assignment(request, assignment_id)
        teacher = course_teaches(
            access=request.tenant_access, user=request.user, course=assignment.course
        )
        standings = selectors.standings_get(
            assignment=assignment, teacher=teacher, now=timezone.now()
        )
        rows = []
        for standing in standings:
            grade = standing.grade
            learner = grade.submission.learner
            yours = learner.pk == request.user.pk
            rows.append(
                {
                    "rank": standing.rank,
                    "learner": learner.email if teacher else None,
                    "full_name": learner.full_name,
                    "you": yours,
                    "public_metric": standing.public,
                    "private_metric": standing.private,
                    "score": standing.score,
                    "max_score": grade.max_score,
                    "submission": grade.submission_id if teacher or yours else None,
                    "attempt": grade.submission.attempt,
                    "submitted_at": grade.submission.created_at,
                }
            )
        return Response(self.LeaderboardRowSerializer(rows, many=True).data)


class SubmissionListApi(ApiView):
    pagination_class = PageNumberPagination

    @extend_schema(responses=SubmissionOutputSerializer(many=True))
    def get(self, request, tenant_slug):
        """Mine, plus every submission to the courses I teach."""
        access, mine = request.tenant_access, Q(learner=request.user)
        rows = selectors.submission_list()
        if not access.allows(Role.ADMIN):  # a tenant admin teaches every course
            if access.allows(Role.TEACHER):
                mine |= Q(assignment__course__teachers=request.user)
            rows = rows.filter(mine).distinct()
        return self.paginated(
            request, rows, SubmissionOutputSerializer, context={"request": request}
        )


class SubmissionDetailApi(ApiView):
    """One submission, with its job and grade, for whoever may follow it."""

    @extend_schema(responses=SubmissionDetailOutputSerializer)
    def get(self, request, tenant_slug, submission_id):
        submission = _submission(request, submission_id)
        return Response(
            SubmissionDetailOutputSerializer(submission, context={"request": request}).data
        )


class GradeOverrideApi(ApiView):
    """A teacher of the course sets a submission's grade, with a reason; the automatic score
    and every earlier revision stay."""

    class GradeOverrideInputSerializer(InputSerializer):
        score = serializers.DecimalField(max_digits=6, decimal_places=2, min_value=0)
        reason = serializers.CharField(max_length=2000)

    input_serializers = {"post": GradeOverrideInputSerializer}

    @extend_schema(request=GradeOverrideInputSerializer, responses=GradeWithHistoryOutputSerializer)
    def post(self, request, tenant_slug, submission_id):
        submission = _submission(request, submission_id)
        _teacher_only(request, submission.assignment.course)
        values = self.validated_input(request)
        if not _has_grade(submission):
            raise exceptions.ValidationError(
                {
                    "non_field_errors": [
                        "This submission has no grade yet (its job has not succeeded)."
                    ]
                }
            )
        grade = grading.grade_override(grade=submission.grade, by=request.user, **values)
        return Response(GradeWithHistoryOutputSerializer(grade).data)


class JobDetailApi(ApiView):
    """A training job: its state, progress and outcome."""

    @extend_schema(responses=JobOutputSerializer)
    def get(self, request, tenant_slug, job_id):
        return Response(JobOutputSerializer(_job(request, job_id)).data)


MAX_SEQ = 999_999_999


class JobEventListApi(ApiView):
    """A training job's events (queued, started, progress, the end), in order."""

    MAX_EVENTS = 1000

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "after",
                whole_number_schema(minimum=0, maximum=MAX_SEQ),
                description="Events after this sequence number",
            )
        ],
        responses=JobEventOutputSerializer(many=True),
    )
    def get(self, request, tenant_slug, job_id):
        """The job's events after `after` (default 0), in order, at most 1000 per call."""
        job = _job(request, job_id)
        after = whole_number_param(request, "after", default=0, minimum=0, maximum=MAX_SEQ)
        events = selectors.events_after(job_id=job.id, after=after, limit=self.MAX_EVENTS)
        return Response(JobEventOutputSerializer(events, many=True).data)


class JobCancelApi(ApiView):
    """Cancel a job: a waiting one ends at once, a running one within a second; an ended one
    is a 409."""

    raises = {"post": [JobConflict]}

    @extend_schema(request=None, responses=JobOutputSerializer)
    def post(self, request, tenant_slug, job_id):
        job = _job(request, job_id)
        job = services.job_cancel(job=job, by=request.user)
        return Response(JobOutputSerializer(job).data)


class JobSocketTicketApi(ApiView):
    """A single-use ticket that opens this job's websocket once, within a minute, as the user
    who asked: `/ws/jobs/<id>/?ticket=<ticket>` (for clients that cannot send a header)."""

    class JobSocketTicketOutputSerializer(serializers.Serializer):
        ticket = serializers.CharField()
        expires_in = serializers.IntegerField(help_text="Seconds the ticket stays valid.")
        url = serializers.CharField(help_text="The websocket path to open, ticket included.")

    @extend_schema(request=None, responses={201: JobSocketTicketOutputSerializer})
    def post(self, request, tenant_slug, job_id):
        job = _job(request, job_id)
        ticket = tickets.socket_ticket_issue(job=job, user=request.user)
        body = {
            "ticket": ticket,
            "expires_in": tickets.TICKET_SECONDS,
            "url": f"/ws/jobs/{job.id}/?ticket={ticket}",
        }
        return Response(
            self.JobSocketTicketOutputSerializer(body).data, status=status.HTTP_201_CREATED
        )
