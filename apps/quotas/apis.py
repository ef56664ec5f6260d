"""Quota API: platform administrators set a tenant's quota; tenant administrators see it, its
balance and the usage of this period."""

from django.shortcuts import get_object_or_404
from django_scopes import scope
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response

from apps.core.api.serializers import InputSerializer
from apps.core.api.views import ApiView
from apps.quotas import selectors, services
from apps.quotas.models import Period, TenantQuota
from apps.tenants.models import Tenant
from apps.tenants.permissions import PlatformAdmin, TenantAdmin


def _seconds(**kwargs):
    return serializers.DecimalField(
        max_digits=16, decimal_places=3, coerce_to_string=False, **kwargs
    )


class BalanceOutputSerializer(serializers.Serializer):
    quota = serializers.IntegerField()
    reserved = _seconds()
    used = _seconds()
    remaining = _seconds()
    period_started_at = serializers.DateTimeField()
    resets_at = serializers.DateTimeField()


class ArtifactUsageOutputSerializer(serializers.Serializer):
    storage_used = serializers.IntegerField(help_text="Bytes of trained models kept.")
    storage_limit = serializers.IntegerField(help_text="Bytes the tenant may keep.")
    predictions_requests = serializers.IntegerField(help_text="Prediction requests today (UTC).")
    predictions_samples = serializers.IntegerField(help_text="Samples predicted today (UTC).")
    predictions_limit = serializers.IntegerField(help_text="Samples allowed a day.")


class QuotaOutputSerializer(serializers.ModelSerializer):
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    balance = serializers.SerializerMethodField()
    artifacts = serializers.SerializerMethodField()

    class Meta:
        model = TenantQuota
        fields = ["tenant", *services.QUOTA_FIELDS, "period_started_at", "balance", "artifacts"]

    @extend_schema_field(BalanceOutputSerializer)
    def get_balance(self, quota) -> dict:
        return BalanceOutputSerializer(selectors.balance_get(quota=quota)).data

    @extend_schema_field(ArtifactUsageOutputSerializer)
    def get_artifacts(self, quota) -> dict:
        usage = selectors.artifact_usage_get(tenant_id=quota.tenant_id)
        return ArtifactUsageOutputSerializer(usage).data


def _quota_response(tenant) -> Response:
    return Response(QuotaOutputSerializer(selectors.quota_get(tenant=tenant)).data)


# --- The platform administrators' API --------------------------------------------------------


class PlatformQuotaApi(ApiView):
    """A tenant's quota as platform administrators set it: PUT all of it, PATCH some. GPU time
    is in GPU-seconds (3600 are one GPU hour); the console's form takes hours. Model storage
    (storage_bytes) and predictions_per_day, left out of a PUT, stay as they are."""

    permission_classes = [*ApiView.permission_classes, PlatformAdmin]

    class QuotaSetInputSerializer(InputSerializer):
        period = serializers.ChoiceField(choices=Period.choices)
        gpu_seconds = serializers.IntegerField(min_value=1, max_value=2**62)
        max_running_jobs = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
        max_queued_jobs = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
        max_seconds_per_job = serializers.IntegerField(min_value=1, max_value=2**31 - 1)
        learner_gpu_seconds_per_day = serializers.IntegerField(
            min_value=1, max_value=2**31 - 1, allow_null=True, required=False
        )
        pools = serializers.ListField(
            child=serializers.CharField(max_length=100), allow_empty=False, max_length=50
        )
        storage_bytes = serializers.IntegerField(
            min_value=0, max_value=2**62, required=False, help_text="Model storage, in bytes."
        )
        predictions_per_day = serializers.IntegerField(
            min_value=0, max_value=2**31 - 1, required=False
        )

    input_serializers = {"put": QuotaSetInputSerializer, "patch": QuotaSetInputSerializer}

    @extend_schema(responses=QuotaOutputSerializer)
    def get(self, request, slug):
        tenant = get_object_or_404(Tenant, slug=slug)
        with scope(tenant=tenant):
            return _quota_response(tenant)

    def _set(self, request, slug, values) -> Response:
        tenant = get_object_or_404(Tenant, slug=slug)
        with scope(tenant=tenant):
            services.quota_set(tenant=tenant, actor=request.user, **values)
            return _quota_response(tenant)

    @extend_schema(request=QuotaSetInputSerializer, responses=QuotaOutputSerializer)
    def put(self, request, slug):
        values = self.validated_input(request)
        values.setdefault("learner_gpu_seconds_per_day", None)  # PUT replaces the whole quota
        return self._set(request, slug, values)

    @extend_schema(request=QuotaSetInputSerializer, responses=QuotaOutputSerializer)
    def patch(self, request, slug):
        return self._set(request, slug, self.validated_input(request))


# --- A tenant's own API -----------------------------------------------------------------------


class TenantQuotaApi(ApiView):
    """The tenant's GPU quota and this period's balance, its model storage used and allowed,
    and today's predictions. GPU time is in GPU-seconds (3600 are one GPU hour)."""

    permission_classes = [*ApiView.permission_classes, TenantAdmin]

    @extend_schema(responses=QuotaOutputSerializer)
    def get(self, request, tenant_slug):
        return _quota_response(request.tenant)


class _UsageSums(serializers.Serializer):
    used = _seconds()
    reserved = _seconds(help_text="Still reserved by jobs that have not ended.")
    jobs = serializers.IntegerField(help_text="Jobs admitted this period.")


class CourseUsageSerializer(_UsageSums):
    course_id = serializers.UUIDField()
    course_title = serializers.CharField()


class LearnerUsageSerializer(_UsageSums):
    learner_id = serializers.UUIDField()
    email = serializers.EmailField()
    full_name = serializers.CharField()


class DayUsageSerializer(serializers.Serializer):
    day = serializers.DateField()
    used = _seconds()


class UsageOutputSerializer(serializers.Serializer):
    period_started_at = serializers.DateTimeField()
    resets_at = serializers.DateTimeField()
    used = _seconds()
    by_course = CourseUsageSerializer(many=True)
    by_learner = LearnerUsageSerializer(many=True)
    by_day = DayUsageSerializer(many=True)


class UsageApi(ApiView):
    """GPU-seconds used this period, by course, by learner and per day (for a chart)."""

    permission_classes = [*ApiView.permission_classes, TenantAdmin]

    @extend_schema(responses=UsageOutputSerializer)
    def get(self, request, tenant_slug):
        usage = selectors.usage_get(quota=selectors.quota_get(tenant=request.tenant))
        return Response(UsageOutputSerializer(usage).data)
