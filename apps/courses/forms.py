"""Teachers' forms. They check the shape of what is typed; the services check the rest (and
again everything, for the API) and their errors land on the same fields."""

import json

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.courses.models import Assignment, Course, Exercise, Lesson, Skill
from runtime.datasets import dataset_names, source_catalogue


class ServiceForm(forms.ModelForm):
    """A form whose fields come from the model but whose whole-object checks are the service's:
    the model's full_clean (and its check constraints, worded for the database) is left to
    apps.courses.services, whose errors by field the view puts on this form."""

    def _post_clean(self):
        pass


DATETIME = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class CourseForm(ServiceForm):
    class Meta:
        model = Course
        fields = ["title", "slug", "summary", "artifact_retention_days"]
        help_texts = {
            "slug": "Lowercase letters, digits and hyphens; unique in your school.",
            "artifact_retention_days": gettext_lazy(
                "Learners' trained models are deleted this many days after their run. "
                "Empty: kept until deleted. A change applies to the models kept now too."
            ),
        }


def _skills_field() -> forms.ModelMultipleChoiceField:
    # Declared here rather than made from the model: the querysets of tenant-scoped models can
    # only be built inside a tenant's scope, so each form sets its own in __init__.
    return forms.ModelMultipleChoiceField(
        queryset=None, required=False, widget=forms.CheckboxSelectMultiple
    )


class LessonForm(ServiceForm):
    skills = _skills_field()

    class Meta:
        model = Lesson
        fields = ["title", "position", "body", "skills"]
        widgets = {"body": forms.Textarea(attrs={"rows": 14})}

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["skills"].queryset = Skill.objects.filter(tenant=tenant).order_by("name")
        self.fields["position"].required = False
        self.fields["position"].help_text = "Empty: after the last lesson."


class SkillForm(ServiceForm):
    prerequisites = _skills_field()

    class Meta:
        model = Skill
        fields = ["name", "slug", "description", "prerequisites"]
        help_texts = {
            "slug": "Lowercase letters, digits and hyphens; unique in your school.",
        }

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        others = Skill.objects.filter(tenant=tenant).order_by("name")
        if not self.instance._state.adding:
            others = others.exclude(pk=self.instance.pk)
        self.fields["prerequisites"].queryset = others
        self.fields[
            "prerequisites"
        ].help_text = "Skills a learner should master first; recommendations follow them."


class ExerciseForm(ServiceForm):
    skills = _skills_field()
    dataset = forms.ChoiceField(choices=())
    starter_spec = forms.CharField(
        required=False,
        widget=forms.HiddenInput,
        help_text="Made with the builder below.",
    )

    class Meta:
        model = Exercise
        fields = [
            "title",
            "dataset",
            "metric",
            "min_metric",
            "target_metric",
            "max_score",
            "param_budget",
            "param_penalty",
            "max_seconds",
            "max_epochs",
            "allow_spec",
            "allow_code",
            "instructions",
            "starter_code",
            "solution_code",
            "skills",
            "starter_spec",
        ]
        widgets = {
            "instructions": forms.Textarea(attrs={"rows": 10}),
            "starter_code": forms.Textarea(
                attrs={"rows": 12, "class": "code", "spellcheck": "false"}
            ),
            "solution_code": forms.Textarea(
                attrs={"rows": 12, "class": "code", "spellcheck": "false"}
            ),
        }
        help_texts = {
            "min_metric": "The metric that earns 0 points (0 to 1).",
            "target_metric": "The metric that earns full marks (0 to 1).",
            "max_seconds": "Training time a run may take, in seconds.",
            "solution_code": "Your reference solution: never shown to learners, and the tutor "
            "will not reveal it while the assignment is open.",
        }

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset"].choices = [
            (name, name) for name in dataset_names()
        ] + source_catalogue()  # the tenant's own ready versions, by title
        self.fields["skills"].queryset = Skill.objects.filter(tenant=tenant).order_by("name")
        if self.instance.starter_spec is not None:
            self.initial["starter_spec"] = json.dumps(self.instance.starter_spec)

    def get_context(self):
        # The page lists the form's own errors above it and the starter model's beside its
        # builder (courses/teach/exercise.html), not again at the top, where Django words a
        # hidden field's as "(Hidden field starter_spec) …".
        context = super().get_context()
        context["errors"] = self.error_class()
        return context

    def clean_starter_spec(self):
        raw = self.cleaned_data["starter_spec"].strip()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"The starter model is not valid JSON: {exc.msg}.") from exc


class AssignmentForm(ServiceForm):
    exercise = forms.ModelChoiceField(queryset=None)
    publish = forms.BooleanField(required=False, help_text="Learners see it once published.")

    class Meta:
        model = Assignment
        fields = [
            "exercise",
            "opens_at",
            "due_at",
            "closes_at",
            "max_attempts",
            "late_policy",
            "late_penalty",
            "tutor_solutions_allowed",
            "scores_shown",
        ]
        widgets = {"opens_at": DATETIME, "due_at": DATETIME, "closes_at": DATETIME}
        labels = {"tutor_solutions_allowed": "The tutor may give full solutions"}
        help_texts = {
            "late_penalty": "The share of the score a late submission loses (0 to 1).",
            "tutor_solutions_allowed": "Otherwise it gives hints while the assignment is open. "
            "It never reveals hidden test data.",
        }

    def __init__(self, *args, course, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["exercise"].queryset = Exercise.objects.filter(course=course).order_by("title")
        self.fields["scores_shown"].required = False  # left out: the default
        # Read and shown in the user's time zone (apps.core.middleware.UserTimeZoneMiddleware).
        zone = timezone.get_current_timezone_name()
        for name in ("opens_at", "due_at", "closes_at"):
            self.fields[name].input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
            self.fields[name].help_text = _("In your time zone, %(zone)s.") % {"zone": zone}
        self.fields["closes_at"].help_text += " " + _(
            "Late work is taken until then (empty: no end)."
        )
        if not self.instance._state.adding:  # (a new instance has its UUID already)
            self.fields["exercise"].disabled = True
            self.fields["publish"].initial = self.instance.published_at is not None

    def clean_scores_shown(self):
        """None when left out: a new assignment takes its dataset's default
        (models.scores_shown_default), an existing one keeps its own."""
        return self.cleaned_data.get("scores_shown") or None


class JoinCourseForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Join code"),
        max_length=40,
        strip=True,
        help_text=gettext_lazy("The 8 letters and digits your teacher gave you."),
    )


class EnrollForm(forms.Form):
    email = forms.EmailField(label="Learner's email")


class GradeOverrideForm(forms.Form):
    score = forms.DecimalField(max_digits=6, decimal_places=2, min_value=0)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
