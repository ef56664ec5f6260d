from django.db import migrations, models


def built_in_assignments_live(apps, schema_editor):
    """Assignments on built-in datasets showed their grades at once (their test split had one
    part); now that it has two, they keep doing so: practice (models.scores_shown_default)."""
    Assignment = apps.get_model("courses", "Assignment")
    Assignment.objects.exclude(exercise__dataset__contains=":").update(scores_shown="grade_live")


class Migration(migrations.Migration):
    dependencies = [
        ("courses", "0006_assignment_scores_shown"),
    ]

    operations = [
        migrations.AlterField(
            model_name="assignment",
            name="scores_shown",
            field=models.CharField(
                choices=[
                    ("grade_live", "Every score at once (practice)"),
                    ("public_live", "Public score at once, private score after the due date"),
                    ("at_end", "Both scores after the due date"),
                ],
                default="grade_live",
                max_length=16,
                verbose_name="learners see",
            ),
        ),
        migrations.RunPython(built_in_assignments_live, migrations.RunPython.noop),
    ]
