"""The platform administrators' console API: workers, queue depth, and cancelling any job.
(Tenant administrators cancel their tenant's jobs through /t/<slug>/jobs/<id>/cancel/.)"""

from django.http import Http404
from django_scopes import scope
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from apps.console.selectors import queue_depth_get, worker_list
from apps.core.api.views import ApiView
from apps.jobs import services as job_services
from apps.jobs.apis import JobConflict, JobOutputSerializer
from apps.jobs.selectors import job_get_any_tenant
from apps.tenants.permissions import PlatformAdmin


class WorkerJobOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    tenant = serializers.CharField(source="tenant.slug")
    state = serializers.CharField()
    queue = serializers.CharField()
    device = serializers.CharField()
    attempt = serializers.IntegerField()
    started_at = serializers.DateTimeField(allow_null=True)


class WorkerOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    queues = serializers.ListField(child=serializers.CharField())
    pid = serializers.IntegerField(allow_null=True)
    device = serializers.CharField(help_text='What it trains on: "cpu" or its GPUs\' names')
    heartbeat_age = serializers.FloatField(help_text="Seconds since the worker's last heartbeat")
    alive = serializers.BooleanField()
    current_job = WorkerJobOutputSerializer(allow_null=True)


class PlatformWorkerListApi(ApiView):
    """The workers that sent a heartbeat: their queues, device, heartbeat age and current
    job."""

    permission_classes = [*ApiView.permission_classes, PlatformAdmin]

    @extend_schema(responses=WorkerOutputSerializer(many=True))
    def get(self, request):
        return Response(WorkerOutputSerializer(worker_list(), many=True).data)


class TenantDepthSerializer(serializers.Serializer):
    tenant = serializers.CharField()
    name = serializers.CharField()
    queued = serializers.IntegerField()
    running = serializers.IntegerField()


class PoolDepthSerializer(serializers.Serializer):
    pool = serializers.CharField()
    slots = serializers.IntegerField(help_text="Jobs the pool runs at once (0: not a pool now)")
    running = serializers.IntegerField()
    released = serializers.IntegerField(help_text="Handed to the pool, not started yet")


class QueueDepthOutputSerializer(serializers.Serializer):
    tenants = TenantDepthSerializer(many=True)
    pools = PoolDepthSerializer(many=True)


class PlatformQueueDepthApi(ApiView):
    """Jobs waiting and running per tenant, and each worker pool's slots and use."""

    permission_classes = [*ApiView.permission_classes, PlatformAdmin]

    @extend_schema(responses=QueueDepthOutputSerializer)
    def get(self, request):
        return Response(QueueDepthOutputSerializer(queue_depth_get()).data)


class PlatformJobCancelApi(ApiView):
    """Cancel any tenant's job: a waiting one ends at once, a running one within a second;
    an ended one is a 409."""

    permission_classes = [*ApiView.permission_classes, PlatformAdmin]
    raises = {"post": [JobConflict]}

    @extend_schema(request=None, responses=JobOutputSerializer)
    def post(self, request, job_id):
        job = job_get_any_tenant(job_id=job_id)
        if job is None:
            raise Http404
        with scope(tenant=job.tenant):
            job = job_services.job_cancel(job=job, by=request.user)
            return Response(JobOutputSerializer(job).data)
