"""Account pages: log in, log out, and the home page listing the user's tenants."""

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from apps.accounts.forms import EmailAuthenticationForm
from apps.accounts.lockout import address_throttled, throttled_response
from apps.tenants.selectors import tenant_list_for_user


class LoginView(auth_views.LoginView):
    form_class = EmailAuthenticationForm
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        if address_throttled(request):
            return throttled_response(request)
        return super().post(request, *args, **kwargs)


@login_required
def home(request):
    tenants = list(tenant_list_for_user(user=request.user))
    if len(tenants) == 1 and not request.user.is_staff:
        return redirect("tenant-home", tenant_slug=tenants[0].slug)
    return render(request, "accounts/home.html", {"tenants": tenants})
