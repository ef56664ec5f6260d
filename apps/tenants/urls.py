from django.urls import path

from apps.tenants import views

# The tenant's home (the learner's dashboard) is routed by apps/learning/urls.py.
urlpatterns = [
    path("t/<slug:tenant_slug>/members/", views.member_list, name="tenant-members"),
    path("t/<slug:tenant_slug>/members/invite/", views.member_invite, name="tenant-member-invite"),
    path(
        "t/<slug:tenant_slug>/members/<uuid:membership_id>/role/",
        views.member_role_set,
        name="tenant-member-role",
    ),
    path(
        "t/<slug:tenant_slug>/members/<uuid:membership_id>/remove/",
        views.member_remove,
        name="tenant-member-remove",
    ),
    path(
        "t/<slug:tenant_slug>/invitations/<uuid:invitation_id>/revoke/",
        views.invitation_revoke,
        name="tenant-invitation-revoke",
    ),
    path("invite/<str:token>/", views.invitation_accept, name="invitation-accept"),
]
