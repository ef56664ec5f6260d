from django import forms
from django.conf import settings

from apps.quotas.models import Period


class TenantCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(
        max_length=63, help_text="Lowercase letters, digits and hyphens: the tenant's address."
    )
    admin_email = forms.EmailField(
        required=False,
        label="First administrator's email",
        help_text="Optional: they get an invitation as the tenant's administrator.",
    )


class QuotaForm(forms.Form):
    period = forms.ChoiceField(choices=Period.choices)
    gpu_seconds = forms.IntegerField(label="GPU-seconds per period", min_value=1, max_value=2**62)
    max_running_jobs = forms.IntegerField(
        label="Jobs running at once", min_value=1, max_value=2**31 - 1
    )
    max_queued_jobs = forms.IntegerField(label="Jobs waiting", min_value=1, max_value=2**31 - 1)
    max_seconds_per_job = forms.IntegerField(
        label="Seconds per job at most", min_value=1, max_value=2**31 - 1
    )
    learner_gpu_seconds_per_day = forms.IntegerField(
        label="GPU-seconds per learner per day",
        min_value=1,
        max_value=2**31 - 1,
        required=False,
        help_text="Empty: no daily limit.",
    )
    pools = forms.MultipleChoiceField(
        label="Worker pools", widget=forms.CheckboxSelectMultiple, choices=()
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["pools"].choices = [(pool, pool) for pool in settings.WORKER_POOLS]
