from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.serving.models import ModelApiKey


@admin.register(ModelApiKey)
class ModelApiKeyAdmin(ReadOnlyAdmin):
    list_display = ["name", "prefix", "trained_model", "created_by", "created_at", "revoked_at"]
    exclude = ["key_hash"]
