"""The assignment API's reads that carry the learner's attempts and grades (the jobs app's data):
one assignment (a teacher gets the assignment, a learner who has it their row, with attempts,
best score and status) and the caller's assignments. Their writes are the courses app's; these
views are here because courses sits below jobs (docs/architecture.md, "Layers")."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from apps.courses import services
from apps.courses.access import course_teaches
from apps.courses.apis import (
    AssignmentOutputSerializer,
    AssignmentUpdateInputSerializer,
    CourseRefOutputSerializer,
    CoursesApiView,
    ExerciseForLearnerOutputSerializer,
    ExerciseSummaryOutputSerializer,
    course_check,
)
from apps.courses.models import Assignment
from apps.courses.selectors import AssignmentStatus, assignment_queryset
from apps.jobs.selectors import assignment_get_for_learner, assignment_list_for_learner


class LearnerAssignmentOutputSerializer(serializers.ModelSerializer):
    """A row of assignment_list_for_learner: the assignment, the learner's attempts and best
    score so far, and where it stands now."""

    course = CourseRefOutputSerializer(read_only=True)
    exercise = ExerciseSummaryOutputSerializer(read_only=True)
    status = serializers.ChoiceField(choices=AssignmentStatus.choices, read_only=True)
    attempts_used = serializers.IntegerField(read_only=True)
    attempts_left = serializers.IntegerField(read_only=True)
    best_score = serializers.DecimalField(
        max_digits=6, decimal_places=2, read_only=True, allow_null=True
    )

    class Meta:
        model = Assignment
        fields = [
            "id",
            "course",
            "exercise",
            "opens_at",
            "due_at",
            "closes_at",
            "max_attempts",
            "late_policy",
            "late_penalty",
            "status",
            "attempts_used",
            "attempts_left",
            "best_score",
        ]


class LearnerAssignmentDetailOutputSerializer(LearnerAssignmentOutputSerializer):
    exercise = ExerciseForLearnerOutputSerializer(read_only=True)


class AssignmentDetailApi(CoursesApiView):
    """Teachers of the course get the assignment; a learner who has it gets their row of
    me/assignments/ with the exercise's learner-facing fields."""

    input_serializers = {"patch": AssignmentUpdateInputSerializer}

    def _assignment(self, request, assignment_id) -> Assignment:
        return get_object_or_404(assignment_queryset(tenant=request.tenant), pk=assignment_id)

    @extend_schema(
        responses=PolymorphicProxySerializer(
            component_name="AssignmentDetail",
            serializers=[AssignmentOutputSerializer, LearnerAssignmentDetailOutputSerializer],
            resource_type_field_name=None,
        )
    )
    def get(self, request, tenant_slug, assignment_id):
        assignment = self._assignment(request, assignment_id)
        access, user = request.tenant_access, request.user
        if course_teaches(access=access, user=user, course=assignment.course):
            return Response(AssignmentOutputSerializer(assignment).data)
        row = assignment_get_for_learner(
            user=user, tenant=request.tenant, assignment_id=assignment.pk
        )
        if row is None:
            raise NotFound()
        return Response(LearnerAssignmentDetailOutputSerializer(row).data)

    @extend_schema(request=AssignmentUpdateInputSerializer, responses=AssignmentOutputSerializer)
    def patch(self, request, tenant_slug, assignment_id):
        assignment = self._assignment(request, assignment_id)
        course_check(
            request, assignment.course, need="write", learner_may_see=assignment.is_published
        )
        values = self.validated_input(request)
        services.assignment_update(assignment=assignment, **values)
        return Response(AssignmentOutputSerializer(assignment).data)


class MyAssignmentListApi(CoursesApiView):
    """The caller's assignments: published ones of the published courses they are enrolled
    in, with their attempts, best score and status."""

    @extend_schema(responses=LearnerAssignmentOutputSerializer(many=True))
    def get(self, request, tenant_slug):
        rows = assignment_list_for_learner(user=request.user, tenant=request.tenant)
        return self.paginated(request, rows, LearnerAssignmentOutputSerializer)
