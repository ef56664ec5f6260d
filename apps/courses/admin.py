"""Django admin for platform administrators. TenantMiddleware disables scopes under /admin/ for
staff, so every tenant's courses are listed here. The admin's forms validate fields and
constraints only; the API's services check the rest (datasets, starter specs, dates)."""

from django.contrib import admin

from apps.courses.models import Assignment, Course, Enrollment, Exercise, Lesson, Skill


@admin.register(Skill)
class SkillAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "tenant", "created_at"]
    list_filter = ["tenant"]
    search_fields = ["name", "slug"]
    list_select_related = ["tenant"]


class LessonInline(admin.TabularInline):
    model = Lesson
    extra = 0
    fields = ["position", "title"]
    show_change_link = True


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "tenant", "published_at", "created_at"]
    list_filter = ["tenant"]
    search_fields = ["title", "slug"]
    list_select_related = ["tenant"]
    autocomplete_fields = ["teachers"]
    readonly_fields = ["created_by"]
    inlines = [LessonInline]


@admin.register(Lesson)
class LessonAdmin(admin.ModelAdmin):
    list_display = ["title", "course", "position", "tenant"]
    list_filter = ["tenant"]
    search_fields = ["title", "course__title"]
    list_select_related = ["course", "tenant"]
    autocomplete_fields = ["course", "skills"]


@admin.register(Exercise)
class ExerciseAdmin(admin.ModelAdmin):
    list_display = ["title", "course", "dataset", "metric", "min_metric", "target_metric"]
    list_filter = ["dataset", "tenant"]
    search_fields = ["title", "course__title"]
    list_select_related = ["course"]
    autocomplete_fields = ["course", "skills"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["exercise", "course", "opens_at", "due_at", "closes_at", "published_at"]
    list_filter = ["late_policy", "tenant"]
    search_fields = ["exercise__title", "course__title"]
    list_select_related = ["exercise", "course"]
    autocomplete_fields = ["course", "exercise"]


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ["user", "course", "tenant", "created_at"]
    list_filter = ["tenant"]
    search_fields = ["user__email", "course__title"]
    list_select_related = ["user", "course", "tenant"]
    autocomplete_fields = ["user", "course"]
