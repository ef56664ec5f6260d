"""Django admin: trained models and their blobs, read-only (they change through the services:
a deleted model must release its storage)."""

from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.trained_models.models import ArtifactBlob, TrainedModel


@admin.register(TrainedModel)
class TrainedModelAdmin(ReadOnlyAdmin):
    list_display = ["id", "tenant", "learner", "course", "exercise", "dataset", "created_at"]
    list_filter = ["tenant", "dataset"]
    search_fields = ["id", "learner__email"]
    list_select_related = ["tenant", "learner", "course", "exercise"]


@admin.register(ArtifactBlob)
class ArtifactBlobAdmin(ReadOnlyAdmin):
    list_display = ["id", "tenant", "kind", "sha256", "size", "created_at"]
    list_filter = ["kind", "tenant"]
    search_fields = ["sha256"]
    list_select_related = ["tenant"]
