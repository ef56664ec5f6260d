from django import forms


class TutorSettingsForm(forms.Form):
    endpoint_url = forms.URLField(
        required=False,
        assume_scheme="https",
        max_length=500,
        label="Endpoint URL",
        help_text="An OpenAI-compatible chat-completions API, e.g. https://llm.example.org/v1. "
        "It must be on a public address unless the platform administrator allowed its host. "
        "Empty: the built-in tutor answers from your lessons.",
    )
    model = forms.CharField(required=False, max_length=200, help_text="The model it serves.")
    api_key = forms.CharField(
        required=False,
        max_length=500,
        label="API key",
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted and never shown again. Leave empty to keep the current key.",
    )
    remove_api_key = forms.BooleanField(required=False, label="Remove the stored key")
    tokens_per_month = forms.IntegerField(
        min_value=0, max_value=10**9, help_text="Tokens the endpoint may use each month."
    )

    def api_key_change(self) -> str | None:
        """What tutor_settings_set takes: None keeps the key, "" removes it."""
        if self.cleaned_data["remove_api_key"]:
            return ""
        return self.cleaned_data["api_key"] or None
