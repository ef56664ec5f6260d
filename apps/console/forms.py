from decimal import ROUND_HALF_UP, Decimal

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from apps.quotas.models import Period

SECONDS_PER_HOUR = 3600
# Quota fields kept in GPU-seconds (the model, the service, the API) that the form takes in hours.
HOURS_FIELDS = {
    "gpu_seconds": "gpu_hours",
    "learner_gpu_seconds_per_day": "learner_gpu_hours_per_day",
}


BYTES_PER_GIB = 2**30


def _hours_field(label, **kwargs) -> forms.DecimalField:
    # Thousandths of an hour (3.6 s); the form rounds to whole GPU-seconds.
    return forms.DecimalField(
        label=label, min_value=Decimal("0.001"), max_digits=18, decimal_places=3, **kwargs
    )


def seconds_as_hours(seconds: int | None) -> Decimal | None:
    if seconds is None:
        return None
    return (Decimal(seconds) / SECONDS_PER_HOUR).quantize(Decimal("0.001")).normalize()


def hours_as_seconds(hours: Decimal | None) -> int | None:
    if hours is None:
        return None
    return int((hours * SECONDS_PER_HOUR).to_integral_value(rounding=ROUND_HALF_UP))


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
    # The service's errors go beside the fields that take hours and GiB.
    service_field_names = {**HOURS_FIELDS, "storage_bytes": "storage_gib"}
    period = forms.ChoiceField(choices=Period.choices)
    gpu_hours = _hours_field(_("GPU hours per period"))
    max_running_jobs = forms.IntegerField(
        label="Jobs running at once", min_value=1, max_value=2**31 - 1
    )
    max_queued_jobs = forms.IntegerField(label="Jobs waiting", min_value=1, max_value=2**31 - 1)
    max_seconds_per_job = forms.IntegerField(
        label="Seconds per job at most", min_value=1, max_value=2**31 - 1
    )
    learner_gpu_hours_per_day = _hours_field(
        _("GPU hours per learner per day"),
        max_value=Decimal(2**31 - 1) / SECONDS_PER_HOUR,
        required=False,
        help_text=_("For example 0.25 for 15 minutes. Empty: no daily limit."),
    )
    pools = forms.MultipleChoiceField(
        label="Worker pools", widget=forms.CheckboxSelectMultiple, choices=()
    )
    storage_gib = forms.DecimalField(
        label=_("Model storage (GiB)"),
        min_value=Decimal(0),
        max_value=Decimal(2**62) / BYTES_PER_GIB,
        max_digits=18,
        decimal_places=3,
        help_text=_("Trained models (ONNX and safetensors files) the school may keep."),
    )
    predictions_per_day = forms.IntegerField(
        label=_("Predictions per day"),
        min_value=0,
        max_value=2**31 - 1,
        help_text=_("Samples the prediction API answers per day (UTC)."),
    )

    def __init__(self, *args, quota_initial=None, **kwargs):
        """`quota_initial`: the quota's values as the service has them (GPU-seconds)."""
        if quota_initial is not None:
            initial = dict(quota_initial)
            storage = initial.pop("storage_bytes", None)
            kwargs["initial"] = {
                HOURS_FIELDS.get(name, name): seconds_as_hours(value)
                if name in HOURS_FIELDS
                else value
                for name, value in initial.items()
            }
            if storage is not None:
                kwargs["initial"]["storage_gib"] = (
                    (Decimal(storage) / BYTES_PER_GIB).quantize(Decimal("0.001")).normalize()
                )
        super().__init__(*args, **kwargs)
        self.fields["pools"].choices = [(pool, pool) for pool in settings.WORKER_POOLS]

    def quota_values(self) -> dict:
        """The cleaned form as quota_set takes it: hours back in GPU-seconds."""
        values = dict(self.cleaned_data)
        for seconds_name, hours_name in HOURS_FIELDS.items():
            values[seconds_name] = hours_as_seconds(values.pop(hours_name))
        values["storage_bytes"] = int(
            (values.pop("storage_gib") * BYTES_PER_GIB).to_integral_value(rounding=ROUND_HALF_UP)
        )
        return values
