"""Django admin for platform administrators. TenantMiddleware disables scopes under /admin/ for
staff, so tenant-owned rows of every tenant are listed here."""

from django.contrib import admin

from apps.tenants.models import Invitation, Membership, Tenant


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__email", "tenant__slug"]
    list_select_related = ["user", "tenant"]
    autocomplete_fields = ["user"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "tenant", "role", "expires_at", "accepted_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["email"]
    list_select_related = ["tenant"]
    readonly_fields = ["token_digest", "invited_by", "accepted_by", "accepted_at"]
