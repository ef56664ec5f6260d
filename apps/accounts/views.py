"""Account pages: log in, log out, the home page listing the user's tenants, and the user's
preferences (their time zone)."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from apps.accounts.forms import EmailAuthenticationForm, PreferencesForm
from apps.accounts.lockout import address_throttled, throttled_response
from apps.accounts.services import user_preferences_set
from apps.core.forms import service_errors_to_form
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


@login_required
def preferences(request):
    form = PreferencesForm(request.POST or None, initial={"time_zone": request.user.time_zone})
    if request.method == "POST" and form.is_valid():
        try:
            user_preferences_set(user=request.user, time_zone=form.cleaned_data["time_zone"])
        except ValidationError as exc:
            service_errors_to_form(form, exc)
        else:
            zone = request.user.time_zone or "UTC"
            saved = _("Your preferences are saved: times are in %(zone)s.") % {"zone": zone}
            messages.success(request, saved)
            return redirect("preferences")
    return render(request, "accounts/preferences.html", {"form": form})
