"""Tenant pages: its members and invitations, and accepting an invitation (the tenant's home,
the learner's dashboard, is apps/learning/views.py: it reads courses, runs and mastery).

TenantMiddleware has already checked membership (404 for outsiders); `role_required` adds the
role check, answering 404 so a page's existence is not revealed to roles that may not use it.
"""

from functools import wraps

from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core.forms import service_errors_to_form
from apps.tenants import services
from apps.tenants.forms import InvitationAcceptForm, InvitationForm, RoleForm
from apps.tenants.models import Role
from apps.tenants.selectors import invitation_list, membership_list

PAGE_SIZE = 50


def role_required(role: Role):
    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.tenant_access is None or not request.tenant_access.allows(role):
                raise Http404
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def _errors_to_messages(request, exc: ValidationError) -> None:
    for message in exc.messages:
        messages.error(request, message)


@role_required(Role.TEACHER)
def member_list(request, tenant_slug):
    is_admin = request.tenant_access.allows(Role.ADMIN)
    context = {
        "tenant": request.tenant,
        "members": Paginator(membership_list(tenant=request.tenant), PAGE_SIZE).get_page(
            request.GET.get("page")
        ),
        "invitations": invitation_list(tenant=request.tenant) if is_admin else [],
        "is_admin": is_admin,
        "invite_form": InvitationForm(),
        "roles": Role.choices,
    }
    return render(request, "tenants/members.html", context)


@require_POST
@role_required(Role.ADMIN)
def member_invite(request, tenant_slug):
    form = InvitationForm(request.POST)
    if form.is_valid():
        try:
            issued = services.invitation_create(
                tenant=request.tenant,
                invited_by=request.user,
                base_url=request.build_absolute_uri("/"),
                **form.cleaned_data,
            )
        except ValidationError as exc:
            _errors_to_messages(request, exc)
        else:
            messages.success(request, f"Invitation sent to {issued.invitation.email}.")
    else:
        for field, errors in form.errors.items():
            for error in errors:
                messages.error(request, f"{field}: {error}")
    return redirect("tenant-members", tenant_slug=tenant_slug)


@require_POST
@role_required(Role.ADMIN)
def member_role_set(request, tenant_slug, membership_id):
    membership = get_object_or_404(membership_list(tenant=request.tenant), pk=membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose one of the roles listed.")
    else:
        try:
            services.membership_role_set(
                actor=request.user, membership=membership, role=form.cleaned_data["role"]
            )
        except ValidationError as exc:
            _errors_to_messages(request, exc)
        else:
            messages.success(request, f"{membership.user.email} is now {membership.role}.")
    return redirect("tenant-members", tenant_slug=tenant_slug)


@require_POST
@role_required(Role.ADMIN)
def member_remove(request, tenant_slug, membership_id):
    membership = get_object_or_404(membership_list(tenant=request.tenant), pk=membership_id)
    try:
        services.membership_remove(actor=request.user, membership=membership)
    except ValidationError as exc:
        _errors_to_messages(request, exc)
    else:
        messages.success(request, f"{membership.user.email} was removed.")
    return redirect("tenant-members", tenant_slug=tenant_slug)


@require_POST
@role_required(Role.ADMIN)
def invitation_revoke(request, tenant_slug, invitation_id):
    invitation = get_object_or_404(invitation_list(tenant=request.tenant), pk=invitation_id)
    services.invitation_revoke(actor=request.user, invitation=invitation)
    messages.success(request, f"The invitation to {invitation.email} was revoked.")
    return redirect("tenant-members", tenant_slug=tenant_slug)


def invitation_accept(request, token):
    try:
        invitation = services.invitation_for_token(raw_token=token)
    except services.InvitationInvalid as exc:
        return render(request, "tenants/invitation_invalid.html", {"message": str(exc)}, status=404)
    form = InvitationAcceptForm(request.POST or None)
    needs_password = not request.user.is_authenticated
    if not needs_password:
        form.fields["password"].required = False
    if request.method == "POST" and form.is_valid():
        try:
            membership = services.invitation_accept(
                raw_token=token,
                user=request.user,
                password=form.cleaned_data.get("password") or None,
                full_name=form.cleaned_data.get("full_name", ""),
            )
        except services.InvitationInvalid as exc:
            return render(
                request, "tenants/invitation_invalid.html", {"message": str(exc)}, status=404
            )
        except ValidationError as exc:
            service_errors_to_form(form, exc)
        else:
            if not request.user.is_authenticated:
                login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to {membership.tenant.name}.")
            return redirect("tenant-home", tenant_slug=membership.tenant.slug)
    context = {"invitation": invitation, "form": form, "needs_password": needs_password}
    return render(request, "tenants/invitation_accept.html", context)
