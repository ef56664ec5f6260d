from django.urls import path

from apps.tenants import apis, audit_apis

urlpatterns = [
    path("t/<slug:tenant_slug>/", apis.TenantDetailApi.as_view(), name="api-tenant"),
    path("t/<slug:tenant_slug>/members/", apis.MemberListApi.as_view(), name="api-members"),
    path(
        "t/<slug:tenant_slug>/members/<uuid:membership_id>/",
        apis.MemberDetailApi.as_view(),
        name="api-member",
    ),
    path(
        "t/<slug:tenant_slug>/invitations/",
        apis.InvitationListApi.as_view(),
        name="api-invitations",
    ),
    path(
        "t/<slug:tenant_slug>/invitations/<uuid:invitation_id>/",
        apis.InvitationDetailApi.as_view(),
        name="api-invitation",
    ),
    path("invitations/accept/", apis.InvitationAcceptApi.as_view(), name="api-invitation-accept"),
    path("platform/tenants/", apis.PlatformTenantListApi.as_view(), name="api-platform-tenants"),
    path(
        "platform/tenants/<slug:slug>/",
        apis.PlatformTenantDetailApi.as_view(),
        name="api-platform-tenant",
    ),
    path("t/<slug:tenant_slug>/audit/", audit_apis.TenantAuditListApi.as_view(), name="api-audit"),
    path(
        "platform/audit/",
        audit_apis.PlatformAuditListApi.as_view(),
        name="api-platform-audit",
    ),
]
