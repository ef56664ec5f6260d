from django.urls import path

from apps.quotas import views

urlpatterns = [
    path("t/<slug:tenant_slug>/usage/", views.usage_page, name="tenant-usage"),
]
