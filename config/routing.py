"""Websocket routes. Each consumer checks the session and the tenant of what it streams."""

from django.urls import path

from apps.jobs.consumers import JobEventsConsumer
from apps.learning.consumers import TutorConsumer
from apps.tenants.consumers import TenantEventsConsumer

websocket_urlpatterns = [
    path("ws/t/<slug:tenant_slug>/events/", TenantEventsConsumer.as_asgi()),
    path("ws/jobs/<uuid:job_id>/", JobEventsConsumer.as_asgi()),
    path("ws/t/<slug:tenant_slug>/tutor/", TutorConsumer.as_asgi()),
]
