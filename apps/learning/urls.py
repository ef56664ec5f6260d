from django.urls import path

from apps.learning import views

urlpatterns = [
    path("t/<slug:tenant_slug>/tutor/", views.tutor_settings_page, name="tutor-settings"),
]
