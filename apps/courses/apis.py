"""Courses API under /api/v1/t/<slug>/: courses, lessons, skills, exercises, assignments,
enrollments, and a learner's own assignments (me/assignments/).

The access rule, one for every endpoint (`_course_check`):
- A course is seen by who teaches it (its teachers, and every admin of the tenant) and, once
  published, by the learners enrolled in it (apps/courses/access.py). Learners see an
  assignment once it is published too, and an exercise only through an assignment they have
  (assignments/<id>/ GET); exercise endpoints are for teachers.
- 404 for what the caller cannot see: another tenant's anything (TenantMember, the scope), a
  course they neither teach nor take, an unpublished course or assignment for a learner.
- Reads answer who sees the object. Teacher-only reads (exercises, enrollments) answer 403 to
  an enrolled learner and 404 to everyone else who does not teach the course, a teacher of the
  tenant included: a read never reveals a course its caller cannot see.
- Writes need who teaches the course. 403 to an enrolled learner, and to a teacher of the
  tenant who does not teach it (tenant staff are told why, not that it is missing); 404 to
  anyone else.
- courses/ and skills/: every member reads (courses: their own list); creating or changing
  needs the teacher role in the tenant (403). me/assignments/: every member, their own rows.

One class per resource path, one method per operation (docs/architecture.md).
"""

from collections.abc import Sequence
from typing import Literal

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from apps.core.api.pagination import PageNumberPagination
from apps.core.api.serializers import InputSerializer
from apps.core.api.views import ApiView
from apps.courses import services
from apps.courses.access import course_takes, course_teaches
from apps.courses.models import (
    Assignment,
    Course,
    Enrollment,
    Exercise,
    LatePolicy,
    Lesson,
    Metric,
    ScoresShown,
    Skill,
)
from apps.courses.selectors import (
    assignment_list,
    assignment_queryset,
    course_get,
    course_list_for,
    enrollment_list,
    exercise_list,
    exercise_queryset,
    lesson_list,
    skill_list,
)
from apps.courses.signals import lesson_viewed
from apps.tenants.models import Role
from apps.tenants.permissions import TenantTeacher
from runtime.datasets import dataset_names
from runtime.errors import SpecInvalid
from runtime.spec import parse_spec

Need = Literal["read", "teacher_read", "write"]


def course_check(request, course: Course, *, need: Need, learner_may_see: bool = True) -> None:
    """The rule in this module's docstring: returns when allowed, raises 404 or 403."""
    access, user = request.tenant_access, request.user
    if course_teaches(access=access, user=user, course=course):
        return
    sees = learner_may_see and course_takes(user=user, course=course)
    if need == "read" and sees:
        return
    if sees or (need == "write" and access.allows(Role.TEACHER)):
        raise PermissionDenied("This needs a teacher of this course.")
    raise NotFound()


def _course(request, course_id, *, need: Need) -> Course:
    course = course_get(tenant=request.tenant, course_id=course_id)
    if course is None:
        raise NotFound()
    course_check(request, course, need=need)
    return course


class TenantTeacherToChange(TenantTeacher):
    """Every member reads; creating and changing need the teacher role."""

    def has_permission(self, request, view):
        return request.method in SAFE_METHODS or super().has_permission(request, view)


def _skills(request, ids: Sequence, field: str = "skills") -> list[Skill]:
    ids = list(dict.fromkeys(ids))
    found = {skill.pk: skill for skill in skill_list(tenant=request.tenant).filter(pk__in=ids)}
    missing = [f"No skill with the id {i} in this tenant." for i in ids if i not in found]
    if missing:
        raise ValidationError({field: missing})
    return [found[i] for i in ids]


def _with_skills(request, values: dict) -> dict:
    if "skills" in values:
        values["skills"] = _skills(request, values["skills"])
    return values


class CoursesApiView(ApiView):
    """Lists are paginated (?page=, ?page_size=). PATCH takes the create serializer with every
    field optional (the schema shows it as Patched…)."""

    pagination_class = PageNumberPagination


# --- Serializers ------------------------------------------------------------------------------


class SkillOutputSerializer(serializers.ModelSerializer):
    prerequisites = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Skill
        fields = ["id", "slug", "name", "description", "prerequisites", "created_at", "updated_at"]


class SkillRefOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Skill
        fields = ["id", "slug", "name"]


class CourseOutputSerializer(serializers.ModelSerializer):
    teachers = serializers.SlugRelatedField(many=True, read_only=True, slug_field="email")

    class Meta:
        model = Course
        fields = [
            "id",
            "slug",
            "title",
            "summary",
            "is_published",
            "published_at",
            "teachers",
            "artifact_retention_days",
            "created_at",
            "updated_at",
        ]


class LessonOutputSerializer(serializers.ModelSerializer):
    skills = SkillRefOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Lesson
        fields = ["id", "course", "title", "body", "position", "skills", "created_at", "updated_at"]
        read_only_fields = fields  # FKs then need no queryset (nor scope)


EXERCISE_LEARNER_FIELDS = [
    "title",
    "instructions",
    "dataset",
    "metric",
    "min_metric",
    "target_metric",
    "max_score",
    "param_budget",
    "param_penalty",
    "max_seconds",
    "max_epochs",
    "allowed_kinds",
    "starter_spec",
    "starter_code",
    "skills",
]


class ExerciseOutputSerializer(serializers.ModelSerializer):
    skills = SkillRefOutputSerializer(many=True, read_only=True)
    allowed_kinds = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Exercise
        fields = [
            "id",
            "course",
            *EXERCISE_LEARNER_FIELDS,
            "allow_spec",
            "allow_code",
            "solution_code",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields  # FKs then need no queryset (nor scope)


class ExerciseForLearnerOutputSerializer(ExerciseOutputSerializer):
    """What a learner is shown of an exercise: the task, how it is graded, the budget."""

    class Meta(ExerciseOutputSerializer.Meta):
        fields = EXERCISE_LEARNER_FIELDS


class ExerciseSummaryOutputSerializer(ExerciseOutputSerializer):
    class Meta(ExerciseOutputSerializer.Meta):
        fields = ["title", "dataset", "metric", "max_score", "allowed_kinds"]


class AssignmentOutputSerializer(serializers.ModelSerializer):
    exercise_title = serializers.CharField(source="exercise.title", read_only=True)

    class Meta:
        model = Assignment
        fields = [
            "id",
            "course",
            "exercise",
            "exercise_title",
            "opens_at",
            "due_at",
            "closes_at",
            "max_attempts",
            "late_policy",
            "late_penalty",
            "tutor_solutions_allowed",
            "scores_shown",
            "is_published",
            "published_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields  # FKs then need no queryset (nor scope)


class CourseRefOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Course
        fields = ["id", "slug", "title"]


class EnrollmentOutputSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email", read_only=True)
    full_name = serializers.CharField(source="user.full_name", read_only=True)

    class Meta:
        model = Enrollment
        fields = ["id", "course", "email", "full_name", "created_at"]
        read_only_fields = fields  # FKs then need no queryset (nor scope)


@extend_schema_field(
    {"type": "object", "nullable": True, "description": "A model spec (docs/runtime.md)."}
)
class SpecField(serializers.JSONField):
    """A spec document, parsed here (its structure); the service checks it on the dataset."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            parse_spec(value)
        except SpecInvalid as exc:
            raise serializers.ValidationError([p.message for p in exc.problems]) from exc
        return value


def _skill_ids_field():
    return serializers.ListField(child=serializers.UUIDField(), required=False, max_length=100)


def _text_field(max_length: int):
    return serializers.CharField(
        max_length=max_length, required=False, allow_blank=True, trim_whitespace=False
    )


# --- Courses ----------------------------------------------------------------------------------


class CourseInputSerializer(InputSerializer):
    slug = serializers.CharField(max_length=50)
    title = serializers.CharField(max_length=200)
    summary = _text_field(5000)
    artifact_retention_days = serializers.IntegerField(
        min_value=1,
        max_value=36500,
        allow_null=True,
        required=False,
        help_text="Days trained models are kept after their run (null: until deleted). A "
        "change moves the expiry of the course's models kept now.",
    )


class CourseListApi(CoursesApiView):
    """Courses the caller teaches or takes (all of them for admins); teachers create them."""

    permission_classes = [*ApiView.permission_classes, TenantTeacherToChange]
    input_serializers = {"post": CourseInputSerializer}

    @extend_schema(responses=CourseOutputSerializer(many=True))
    def get(self, request, tenant_slug):
        courses = course_list_for(user=request.user, access=request.tenant_access)
        return self.paginated(request, courses.order_by("title", "pk"), CourseOutputSerializer)

    @extend_schema(request=CourseInputSerializer, responses={201: CourseOutputSerializer})
    def post(self, request, tenant_slug):
        values = self.validated_input(request)
        course = services.course_create(tenant=request.tenant, created_by=request.user, **values)
        return Response(CourseOutputSerializer(course).data, status=status.HTTP_201_CREATED)


class CourseDetailApi(CoursesApiView):
    """A course, for who teaches or takes it; its teachers change it."""

    input_serializers = {"patch": CourseInputSerializer}

    @extend_schema(responses=CourseOutputSerializer)
    def get(self, request, tenant_slug, course_id):
        course = _course(request, course_id, need="read")
        return Response(CourseOutputSerializer(course).data)

    @extend_schema(request=CourseInputSerializer, responses=CourseOutputSerializer)
    def patch(self, request, tenant_slug, course_id):
        course = _course(request, course_id, need="write")
        values = self.validated_input(request)
        services.course_update(course=course, **values)
        return Response(CourseOutputSerializer(course).data)


class CoursePublishApi(CoursesApiView):
    """Show the course to its enrolled learners (again: no change)."""

    @extend_schema(request=None, responses=CourseOutputSerializer)
    def post(self, request, tenant_slug, course_id):
        course = _course(request, course_id, need="write")
        services.course_publish(course=course)
        return Response(CourseOutputSerializer(course).data)


# --- Lessons ----------------------------------------------------------------------------------


class LessonInputSerializer(InputSerializer):
    title = serializers.CharField(max_length=200)
    body = _text_field(100_000)
    position = serializers.IntegerField(min_value=1, max_value=100_000, required=False)
    skills = _skill_ids_field()


class LessonListApi(CoursesApiView):
    """A course's lessons in order; its teachers add them (default: after the last)."""

    input_serializers = {"post": LessonInputSerializer}

    @extend_schema(responses=LessonOutputSerializer(many=True))
    def get(self, request, tenant_slug, course_id):
        course = _course(request, course_id, need="read")
        return self.paginated(request, lesson_list(course=course), LessonOutputSerializer)

    @extend_schema(request=LessonInputSerializer, responses={201: LessonOutputSerializer})
    def post(self, request, tenant_slug, course_id):
        course = _course(request, course_id, need="write")
        values = _with_skills(request, self.validated_input(request))
        lesson = services.lesson_create(course=course, **values)
        return Response(LessonOutputSerializer(lesson).data, status=status.HTTP_201_CREATED)


class LessonDetailApi(CoursesApiView):
    """One lesson. Deleting one leaves a gap in the positions; the others keep theirs."""

    input_serializers = {"patch": LessonInputSerializer}

    def _lesson(self, request, course_id, lesson_id, need: Need) -> Lesson:
        course = _course(request, course_id, need=need)
        return get_object_or_404(lesson_list(course=course), pk=lesson_id)

    @extend_schema(responses=LessonOutputSerializer)
    def get(self, request, tenant_slug, course_id, lesson_id):
        lesson = self._lesson(request, course_id, lesson_id, "read")
        if course_takes(user=request.user, course=lesson.course):
            lesson_viewed.send(sender=Lesson, user=request.user, lesson=lesson)  # a learner read it
        return Response(LessonOutputSerializer(lesson).data)

    @extend_schema(request=LessonInputSerializer, responses=LessonOutputSerializer)
    def patch(self, request, tenant_slug, course_id, lesson_id):
        lesson = self._lesson(request, course_id, lesson_id, "write")
        values = _with_skills(request, self.validated_input(request))
        services.lesson_update(lesson=lesson, **values)
        return Response(LessonOutputSerializer(lesson).data)

    @extend_schema(responses={204: None})
    def delete(self, request, tenant_slug, course_id, lesson_id):
        lesson = self._lesson(request, course_id, lesson_id, "write")
        services.lesson_delete(lesson=lesson)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Skills -----------------------------------------------------------------------------------


class SkillInputSerializer(InputSerializer):
    slug = serializers.CharField(max_length=50)
    name = serializers.CharField(max_length=200)
    description = _text_field(5000)
    prerequisites = _skill_ids_field()


def _with_prerequisites(request, values: dict) -> dict:
    if "prerequisites" in values:
        values["prerequisites"] = _skills(request, values["prerequisites"], "prerequisites")
    return values


class SkillListApi(CoursesApiView):
    """The tenant's skills; teachers add them."""

    permission_classes = [*ApiView.permission_classes, TenantTeacherToChange]
    input_serializers = {"post": SkillInputSerializer}

    @extend_schema(responses=SkillOutputSerializer(many=True))
    def get(self, request, tenant_slug):
        return self.paginated(request, skill_list(tenant=request.tenant), SkillOutputSerializer)

    @extend_schema(request=SkillInputSerializer, responses={201: SkillOutputSerializer})
    def post(self, request, tenant_slug):
        values = self.validated_input(request)
        skill = services.skill_create(tenant=request.tenant, **_with_prerequisites(request, values))
        return Response(SkillOutputSerializer(skill).data, status=status.HTTP_201_CREATED)


class SkillDetailApi(CoursesApiView):
    """A skill of the tenant; teachers change it."""

    permission_classes = [*ApiView.permission_classes, TenantTeacherToChange]
    input_serializers = {"patch": SkillInputSerializer}

    @extend_schema(responses=SkillOutputSerializer)
    def get(self, request, tenant_slug, skill_id):
        skill = get_object_or_404(skill_list(tenant=request.tenant), pk=skill_id)
        return Response(SkillOutputSerializer(skill).data)

    @extend_schema(request=SkillInputSerializer, responses=SkillOutputSerializer)
    def patch(self, request, tenant_slug, skill_id):
        skill = get_object_or_404(skill_list(tenant=request.tenant), pk=skill_id)
        values = self.validated_input(request)
        services.skill_update(skill=skill, **_with_prerequisites(request, values))
        return Response(SkillOutputSerializer(skill).data)


# --- Exercises --------------------------------------------------------------------------------


class ExerciseInputSerializer(InputSerializer):
    title = serializers.CharField(max_length=200)
    instructions = _text_field(100_000)
    dataset = serializers.CharField(
        max_length=50,
        help_text=f"A built-in dataset ({', '.join(dataset_names())}) or the name of a ready "
        "version of the tenant's own datasets (upload:...).",
    )
    metric = serializers.ChoiceField(choices=Metric.choices, required=False)
    min_metric = serializers.FloatField(min_value=0.0, max_value=1.0)
    target_metric = serializers.FloatField(min_value=0.0, max_value=1.0)
    max_score = serializers.DecimalField(max_digits=6, decimal_places=2, required=False)
    param_budget = serializers.IntegerField(required=False, allow_null=True)
    param_penalty = serializers.FloatField(required=False)
    max_seconds = serializers.IntegerField(required=False)
    max_epochs = serializers.IntegerField(required=False, allow_null=True)
    allow_spec = serializers.BooleanField(required=False)
    allow_code = serializers.BooleanField(required=False)
    starter_spec = SpecField(required=False, allow_null=True)
    starter_code = _text_field(64 * 1024)
    solution_code = _text_field(64 * 1024)
    skills = _skill_ids_field()


class ExerciseListApi(CoursesApiView):
    """A course's exercises, for its teachers."""

    input_serializers = {"post": ExerciseInputSerializer}

    @extend_schema(responses=ExerciseOutputSerializer(many=True))
    def get(self, request, tenant_slug, course_id):
        course = _course(request, course_id, need="teacher_read")
        return self.paginated(request, exercise_list(course=course), ExerciseOutputSerializer)

    @extend_schema(request=ExerciseInputSerializer, responses={201: ExerciseOutputSerializer})
    def post(self, request, tenant_slug, course_id):
        course = _course(request, course_id, need="write")
        values = _with_skills(request, self.validated_input(request))
        exercise = services.exercise_create(course=course, **values)
        return Response(ExerciseOutputSerializer(exercise).data, status=status.HTTP_201_CREATED)


class ExerciseDetailApi(CoursesApiView):
    """An exercise, for the teachers of its course (learners see it in their assignment)."""

    input_serializers = {"patch": ExerciseInputSerializer}

    def _exercise(self, request, exercise_id, need: Need) -> Exercise:
        exercise = get_object_or_404(exercise_queryset(tenant=request.tenant), pk=exercise_id)
        course_check(request, exercise.course, need=need)
        return exercise

    @extend_schema(responses=ExerciseOutputSerializer)
    def get(self, request, tenant_slug, exercise_id):
        exercise = self._exercise(request, exercise_id, "teacher_read")
        return Response(ExerciseOutputSerializer(exercise).data)

    @extend_schema(request=ExerciseInputSerializer, responses=ExerciseOutputSerializer)
    def patch(self, request, tenant_slug, exercise_id):
        exercise = self._exercise(request, exercise_id, "write")
        values = _with_skills(request, self.validated_input(request))
        services.exercise_update(exercise=exercise, **values)
        return Response(ExerciseOutputSerializer(exercise).data)


# --- Assignments ------------------------------------------------------------------------------


class AssignmentInputSerializer(InputSerializer):
    exercise = serializers.UUIDField()
    opens_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField()
    closes_at = serializers.DateTimeField(required=False, allow_null=True)
    max_attempts = serializers.IntegerField(required=False)
    late_policy = serializers.ChoiceField(choices=LatePolicy.choices, required=False)
    late_penalty = serializers.FloatField(required=False)
    tutor_solutions_allowed = serializers.BooleanField(required=False)
    scores_shown = serializers.ChoiceField(
        choices=ScoresShown.choices,
        required=False,
        help_text="When learners see the hidden test parts' scores (an uploaded dataset's).",
    )


class AssignmentUpdateInputSerializer(AssignmentInputSerializer):
    exercise = None  # an assignment keeps its exercise; assign another one instead


class AssignmentListApi(CoursesApiView):
    """A course's assignments (learners: the published ones); its teachers create them."""

    input_serializers = {"post": AssignmentInputSerializer}

    @extend_schema(responses=AssignmentOutputSerializer(many=True))
    def get(self, request, tenant_slug, course_id):
        course = _course(request, course_id, need="read")
        teaches = course_teaches(access=request.tenant_access, user=request.user, course=course)
        assignments = assignment_list(course=course, published_only=not teaches)
        return self.paginated(request, assignments, AssignmentOutputSerializer)

    @extend_schema(request=AssignmentInputSerializer, responses={201: AssignmentOutputSerializer})
    def post(self, request, tenant_slug, course_id):
        course = _course(request, course_id, need="write")
        values = self.validated_input(request)
        exercise = exercise_queryset(tenant=request.tenant).filter(pk=values["exercise"]).first()
        if exercise is None:
            raise ValidationError({"exercise": ["No exercise with this id in this tenant."]})
        values["exercise"] = exercise
        assignment = services.assignment_create(course=course, **values)
        return Response(AssignmentOutputSerializer(assignment).data, status=status.HTTP_201_CREATED)


class AssignmentPublishApi(CoursesApiView):
    """Show the assignment to the course's learners (again: no change)."""

    @extend_schema(request=None, responses=AssignmentOutputSerializer)
    def post(self, request, tenant_slug, assignment_id):
        assignment = get_object_or_404(assignment_queryset(tenant=request.tenant), pk=assignment_id)
        course_check(
            request, assignment.course, need="write", learner_may_see=assignment.is_published
        )
        services.assignment_publish(assignment=assignment)
        return Response(AssignmentOutputSerializer(assignment).data)


# --- Enrollments ------------------------------------------------------------------------------


class EnrollmentInputSerializer(InputSerializer):
    email = serializers.EmailField()


class EnrollmentListApi(CoursesApiView):
    """Who takes the course, for its teachers; they enroll members of the tenant by email."""

    input_serializers = {"post": EnrollmentInputSerializer}

    @extend_schema(responses=EnrollmentOutputSerializer(many=True))
    def get(self, request, tenant_slug, course_id):
        course = _course(request, course_id, need="teacher_read")
        return self.paginated(request, enrollment_list(course=course), EnrollmentOutputSerializer)

    @extend_schema(request=EnrollmentInputSerializer, responses={201: EnrollmentOutputSerializer})
    def post(self, request, tenant_slug, course_id):
        course = _course(request, course_id, need="write")
        values = self.validated_input(request)
        enrollment = services.enrollment_create(course=course, **values)
        return Response(EnrollmentOutputSerializer(enrollment).data, status=status.HTTP_201_CREATED)


class EnrollmentDetailApi(CoursesApiView):
    """Take a learner out of the course; their submissions and grades stay."""

    @extend_schema(responses={204: None})
    def delete(self, request, tenant_slug, course_id, enrollment_id):
        course = _course(request, course_id, need="write")
        enrollment = get_object_or_404(enrollment_list(course=course), pk=enrollment_id)
        services.enrollment_delete(enrollment=enrollment)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Join codes ------------------------------------------------------------------------------


class JoinCodeOutputSerializer(serializers.Serializer):
    join_code = serializers.CharField(help_text='The course\'s join code; "" when joining is off.')


class CourseJoinCodeApi(CoursesApiView):
    """The course's join code, for its teachers: read it, draw a new one (turning joining on;
    the old code stops working), or turn joining by code off."""

    def _answer(self, course) -> Response:
        return Response(JoinCodeOutputSerializer({"join_code": course.join_code}).data)

    @extend_schema(responses=JoinCodeOutputSerializer)
    def get(self, request, tenant_slug, course_id):
        return self._answer(_course(request, course_id, need="teacher_read"))

    @extend_schema(request=None, responses=JoinCodeOutputSerializer)
    def post(self, request, tenant_slug, course_id):
        course = _course(request, course_id, need="write")
        return self._answer(services.course_join_code_regenerate(course=course))

    @extend_schema(responses={200: JoinCodeOutputSerializer})  # the code is gone: ""
    def delete(self, request, tenant_slug, course_id):
        course = _course(request, course_id, need="write")
        return self._answer(services.course_join_code_disable(course=course))


class CourseJoinInputSerializer(InputSerializer):
    code = serializers.CharField(max_length=40, help_text="The join code the teacher gave.")


class CourseJoinApi(CoursesApiView):
    """A learner of the tenant enrolls in a published course by its join code; a wrong or
    turned-off code is a 400 on "code" and enrolls nobody."""

    input_serializers = {"post": CourseJoinInputSerializer}

    @extend_schema(request=CourseJoinInputSerializer, responses={201: EnrollmentOutputSerializer})
    def post(self, request, tenant_slug):
        values = self.validated_input(request)
        enrollment = services.course_join(tenant=request.tenant, user=request.user, **values)
        return Response(EnrollmentOutputSerializer(enrollment).data, status=status.HTTP_201_CREATED)
