"""Learning records in the Django admin, read-only: statements, observations, mastery and the
fitted parameters are written by the services; tutor settings by the tenant's administrators
(their key never appears here)."""

from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.learning.models import (
    Mastery,
    Observation,
    SkillParams,
    Statement,
    TutorExchange,
    TutorSettings,
)


@admin.register(Statement)
class StatementAdmin(ReadOnlyAdmin):
    list_display = ["timestamp", "tenant", "actor", "verb", "object_type", "object_name"]
    list_filter = ["verb", "object_type"]
    search_fields = ["actor__email", "object_name", "object_id"]


@admin.register(Observation)
class ObservationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "tenant", "user", "skill", "correct"]


@admin.register(Mastery)
class MasteryAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "user", "skill", "probability", "observations", "updated_at"]


@admin.register(SkillParams)
class SkillParamsAdmin(ReadOnlyAdmin):
    list_display = ["skill", "tenant", "prior", "learn", "slip", "guess", "fitted_at"]


@admin.register(TutorSettings)
class TutorSettingsAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "endpoint_url", "model", "tokens_per_month", "updated_at"]
    exclude = ["api_key_encrypted"]


@admin.register(TutorExchange)
class TutorExchangeAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "tenant", "user", "backend", "refused", "completion_tokens"]
    list_filter = ["backend", "refused"]
