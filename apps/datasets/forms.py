"""The teachers' forms for datasets. They lay out what is typed; the checks are the API's: a
new version's values go through the API's VersionInputSerializer and then
services.version_create, whose errors land on the same fields, so a page and the API refuse
the same things in the same words."""

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.utils.translation import gettext_lazy as _

from apps.courses.forms import ServiceForm
from apps.datasets.apis import VersionInputSerializer
from apps.datasets.models import Dataset, SourceFormat, TableKind

# The API's fields, whose bounds and choices the page's fields show.
_API_FIELDS = VersionInputSerializer().fields
_RESIZE = _API_FIELDS["resize_to"].child
DELIMITER_WORDS = {",": _("Comma"), "\t": _("Tab"), ";": _("Semicolon")}


class DatasetForm(ServiceForm):
    class Meta:
        model = Dataset
        fields = ["title", "slug", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {
            "slug": _("Lowercase letters, digits and hyphens; unique in your school."),
        }


class VersionForm(forms.Form):
    """A new version: the file's name and size (the page's script fills them from the file
    chosen, whose bytes it then uploads in chunks), its format and how to read it."""

    # The API's names of the fields the page names otherwise. Errors about the file are the
    # form's own: the page shows them above the form, beside the file picker.
    service_field_names = {
        "file_name": NON_FIELD_ERRORS,
        "size": NON_FIELD_ERRORS,
        "resize_to": "resize_height",
    }

    file_name = forms.CharField(required=False, widget=forms.HiddenInput)
    size = forms.IntegerField(required=False, widget=forms.HiddenInput)
    format = forms.ChoiceField(
        label=_("Format"), choices=SourceFormat.choices, widget=forms.RadioSelect
    )
    kind = forms.ChoiceField(
        label=_("The table holds"),
        choices=[("", _("Choose…")), *TableKind.choices],
        required=False,
    )
    label_column = forms.CharField(
        label=_("Label column"),
        max_length=_API_FIELDS["label_column"].max_length,
        required=False,
        help_text=_("The header of the column that holds each row's class."),
    )
    text_column = forms.CharField(
        label=_("Text column"),
        max_length=_API_FIELDS["text_column"].max_length,
        required=False,
        help_text=_("Text tables: the header of the column that holds the texts."),
    )
    delimiter = forms.ChoiceField(
        label=_("Delimiter"),
        choices=[
            ("", _("Found from the first line")),
            *((value, DELIMITER_WORDS[value]) for value in _API_FIELDS["delimiter"].choices),
        ],
        required=False,
    )
    tokenizer = forms.ChoiceField(
        label=_("Tokeniser"),
        choices=[
            ("", _("Words (the default)")),
            ("word", _("Words: a Chinese character each")),
            ("bpe", _("Pieces of words (BPE)")),
            ("char", _("Characters")),
        ],
        required=False,
        help_text=_("Text tables: how the texts become tokens."),
    )
    resize_height = forms.IntegerField(
        label=_("Resize to height (pixels)"),
        min_value=_RESIZE.min_value,
        max_value=_RESIZE.max_value,
        required=False,
    )
    resize_width = forms.IntegerField(
        label=_("Resize to width (pixels)"),
        min_value=_RESIZE.min_value,
        max_value=_RESIZE.max_value,
        required=False,
        help_text=_("Empty: every image must have the same size."),
    )

    def clean(self):
        values = super().clean()
        if self.errors:
            return values
        if not values.get("file_name") or not values.get("size"):
            raise forms.ValidationError(_("Choose the file to upload."))
        height, width = values.get("resize_height"), values.get("resize_width")
        if (height is None) != (width is None):
            self.add_error(
                "resize_width" if width is None else "resize_height",
                _("Give both the height and the width, or neither."),
            )
            return values
        payload = {
            name: values[name]
            for name in (
                "file_name",
                "size",
                "format",
                "kind",
                "label_column",
                "text_column",
                "tokenizer",
            )
            if values.get(name) not in (None, "")
        }
        if values.get("delimiter"):
            payload["delimiter"] = values["delimiter"]
        if height is not None:
            payload["resize_to"] = [height, width]
        serializer = VersionInputSerializer(data=payload)
        if not serializer.is_valid():
            for name, errors in serializer.errors.items():
                field = {"resize_to": "resize_height"}.get(name, name)
                self.add_error(
                    field
                    if field in self.fields and field not in self.service_field_names
                    else None,
                    _flat(errors),
                )
            return values
        self.api_values = dict(serializer.validated_data)
        return values


def _flat(errors) -> list[str]:
    """DRF's errors of a field (a list, or a dict by list index) as messages."""
    if isinstance(errors, dict):
        return [message for value in errors.values() for message in _flat(value)]
    return [str(message) for message in errors]
