"""Learning records API: statements (xAPI export), mastery and recommendation, the teacher's
mastery grid, knowledge-tracing fits on demand, and the tenant's tutor settings.

Who reads which statements: a learner their own; a teacher those of the courses they teach
(`course` is then required); a tenant administrator all of the tenant's.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response

from apps.core.api.serializers import InputSerializer, QueryInputSerializer
from apps.core.api.views import ApiView
from apps.courses.access import course_teaches
from apps.courses.selectors import course_get
from apps.learning import selectors, services
from apps.learning.links import recommendation_url
from apps.learning.models import TutorSettings, Verb
from apps.learning.xapi import statement_json
from apps.tenants.models import Membership, Role
from apps.tenants.permissions import TenantAdmin, TenantTeacher

EXPORT_PAGE = 500


class StatementQuerySerializer(QueryInputSerializer):
    learner = serializers.UUIDField(required=False, help_text="A member's user id.")
    course = serializers.UUIDField(required=False)
    verb = serializers.ChoiceField(choices=Verb.choices, required=False)
    after = serializers.IntegerField(required=False, min_value=0, help_text="Cursor from `more`.")


class StatementResultSerializer(serializers.Serializer):
    statements = serializers.ListField(child=serializers.DictField())
    more = serializers.CharField(allow_blank=True)


def _query(request) -> dict:
    serializer = StatementQuerySerializer(data=request.query_params.dict())
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class StatementsApi(ApiView):
    """The tenant's statements as an xAPI StatementResult ({"statements", "more"}), oldest
    first, 500 a page; `more` is the next page's URL ("" at the end)."""

    @extend_schema(parameters=[StatementQuerySerializer], responses=StatementResultSerializer)
    def get(self, request, tenant_slug):
        query = _query(request)
        access, user = request.tenant_access, request.user
        course = None
        if "course" in query:
            course = course_get(tenant=request.tenant, course_id=query["course"])
            if course is None:
                raise ValidationError({"course": ["No course with this id in this tenant."]})
        learner = None
        if "learner" in query:
            membership = (
                Membership.objects.filter(tenant=request.tenant, user_id=query["learner"])
                .select_related("user")
                .first()
            )
            if membership is None:
                raise ValidationError({"learner": ["No member with this id in this tenant."]})
            learner = membership.user
        own = False  # reading one's own statements, as their learner
        if not access.allows(Role.ADMIN):
            if access.allows(Role.TEACHER) and course is not None:
                if not course_teaches(access=access, user=user, course=course):
                    raise PermissionDenied("This needs a teacher of this course.")
            elif learner is not None and learner != user:
                raise PermissionDenied("You may read your own statements only.")
            else:
                learner, own = user, True  # a learner (or a teacher without a course)
        rows = list(
            selectors.statement_list(
                tenant=request.tenant,
                learner=learner,
                course=course,
                verb=query.get("verb"),
                after_id=query.get("after"),
                withheld_now=timezone.now() if own else None,
            )[: EXPORT_PAGE + 1]
        )
        more = ""
        if len(rows) > EXPORT_PAGE:
            rows = rows[:EXPORT_PAGE]
            params = request.query_params.copy()
            params["after"] = str(rows[-1].id)
            more = f"{request.path}?{params.urlencode()}"
        docs = [
            statement_json(s, actor_email=s.actor.email, tenant_slug=request.tenant.slug)
            for s in rows
        ]
        response = Response({"statements": docs, "more": more})
        response["X-Experience-API-Version"] = "1.0.3"
        return response


class MasteryRowSerializer(serializers.Serializer):
    skill = serializers.UUIDField(source="skill.pk")
    slug = serializers.CharField(source="skill.slug")
    name = serializers.CharField(source="skill.name")
    probability = serializers.FloatField()
    observations = serializers.IntegerField()
    mastered = serializers.BooleanField()


class RecommendationSerializer(serializers.Serializer):
    sentence = serializers.CharField()
    skill = serializers.UUIDField(source="skill.pk", allow_null=True, default=None)
    kind = serializers.CharField(allow_null=True)
    title = serializers.CharField(source="target_title", allow_null=True)
    url = serializers.SerializerMethodField()

    def get_url(self, step) -> str | None:
        return recommendation_url(step, tenant_slug=self.context["tenant_slug"])


class MyMasterySerializer(serializers.Serializer):
    skills = MasteryRowSerializer(many=True)
    recommendation = RecommendationSerializer()


class MyMasteryApi(ApiView):
    """My mastery of each skill of my courses, and my recommended next step."""

    @extend_schema(responses=MyMasterySerializer)
    def get(self, request, tenant_slug):
        mastery = selectors.mastery_list(tenant=request.tenant, user=request.user)
        step = selectors.recommendation_get(
            tenant=request.tenant, user=request.user, mastery=mastery
        )
        data = {"skills": mastery, "recommendation": step}
        context = {"tenant_slug": request.tenant.slug}
        return Response(MyMasterySerializer(data, context=context).data)


class MasteryGridSerializer(serializers.Serializer):
    skills = serializers.ListField(child=serializers.DictField())
    learners = serializers.ListField(child=serializers.DictField())


class CourseMasteryApi(ApiView):
    """The course's learners by its skills: each learner's mastery (null: no observation)."""

    permission_classes = [*ApiView.permission_classes, TenantTeacher]

    @extend_schema(responses=MasteryGridSerializer)
    def get(self, request, tenant_slug, course_id):
        course = course_get(tenant=request.tenant, course_id=course_id)
        if course is None or not course_teaches(
            access=request.tenant_access, user=request.user, course=course
        ):
            raise NotFound()
        grid = selectors.mastery_grid_get(course=course)
        return Response(
            {
                "skills": [{"id": str(s.pk), "slug": s.slug, "name": s.name} for s in grid.skills],
                "learners": [
                    {"id": str(u.pk), "email": u.email, "mastery": row}
                    for u, row in zip(grid.learners, grid.cells, strict=True)
                ],
            }
        )


class FitApi(ApiView):
    """Refit the tenant's knowledge-tracing parameters now (a Celery task; 202)."""

    permission_classes = [*ApiView.permission_classes, TenantTeacher]

    @extend_schema(request=None, responses={202: None})
    def post(self, request, tenant_slug):
        services.bkt_fit_on_commit(request.tenant.pk)
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)


class TutorSettingsOutputSerializer(serializers.ModelSerializer):
    has_api_key = serializers.SerializerMethodField()
    backend = serializers.SerializerMethodField()

    class Meta:
        model = TutorSettings
        fields = ["backend", "endpoint_url", "model", "has_api_key", "tokens_per_month"]

    def get_has_api_key(self, row) -> bool:
        return bool(row.api_key_encrypted)

    def get_backend(self, row) -> str:
        return "endpoint" if row.uses_endpoint else "grounded"


class TutorSettingsInputSerializer(InputSerializer):
    endpoint_url = serializers.URLField(allow_blank=True, max_length=500)
    model = serializers.CharField(allow_blank=True, max_length=200)
    api_key = serializers.CharField(
        allow_blank=True,
        max_length=500,
        required=False,
        write_only=True,
        help_text="Omit to keep the stored key; empty to remove it.",
    )
    tokens_per_month = serializers.IntegerField(min_value=0, max_value=10**9)


class TutorSettingsApi(ApiView):
    """The tenant's tutor: an OpenAI-compatible endpoint (URL, model, key stored encrypted and
    never shown again) or, with no URL, the built-in grounded tutor; and its monthly tokens."""

    permission_classes = [*ApiView.permission_classes, TenantAdmin]
    input_serializers = {"put": TutorSettingsInputSerializer}

    @extend_schema(responses=TutorSettingsOutputSerializer)
    def get(self, request, tenant_slug):
        row = services.tutor_settings_of(request.tenant)
        return Response(TutorSettingsOutputSerializer(row).data)

    @extend_schema(request=TutorSettingsInputSerializer, responses=TutorSettingsOutputSerializer)
    def put(self, request, tenant_slug):
        values = self.validated_input(request)
        row = services.tutor_settings_set(tenant=request.tenant, actor=request.user, **values)
        return Response(TutorSettingsOutputSerializer(row).data)
