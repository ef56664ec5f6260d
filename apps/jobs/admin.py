"""Django admin for platform administrators: submissions, jobs and their logs, grades — read-only,
since jobs change only through their services (leases, the state machine, audited overrides)."""

from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.jobs.models import Grade, GradeRevision, Job, JobEvent, Submission


class JobEventInline(admin.TabularInline):
    model = JobEvent
    fields = ["seq", "attempt", "type", "payload", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["seq"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Submission)
class SubmissionAdmin(ReadOnlyAdmin):
    list_display = ["id", "learner", "assignment", "kind", "attempt", "is_late", "created_at"]
    list_filter = ["kind", "is_late", "tenant"]
    search_fields = ["learner__email"]
    list_select_related = ["learner", "assignment__exercise", "assignment__course"]


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = ["id", "state", "attempt", "workers_lost", "lease_owner", "created_at"]
    list_filter = ["state", "tenant"]
    inlines = [JobEventInline]


@admin.register(Grade)
class GradeAdmin(ReadOnlyAdmin):
    list_display = ["submission", "score", "max_score", "source", "created_at"]
    list_filter = ["source", "tenant"]
    list_select_related = ["submission__learner"]


@admin.register(GradeRevision)
class GradeRevisionAdmin(ReadOnlyAdmin):
    list_display = ["grade", "score", "source", "author", "created_at"]
    list_filter = ["source"]
