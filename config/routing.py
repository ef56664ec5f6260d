"""Websocket routes. Tenant-owned streams carry the tenant slug, and their consumers check it."""

from django.urls import path

from apps.tenants.consumers import TenantEventsConsumer

websocket_urlpatterns = [
    path("ws/t/<slug:tenant_slug>/events/", TenantEventsConsumer.as_asgi()),
]
