"""A trained-model row for a test world, with no file behind it: for tests that walk every
endpoint and never get as far as running the model (tests/test_api_input.py)."""

from django_scopes import scopes_disabled

from apps.trained_models.models import ArtifactBlob, TrainedModel


def world_model_row(world) -> TrainedModel:
    """A model of `world`'s graded XOR submission; its ONNX blob names no stored file."""
    with scopes_disabled():
        blob = ArtifactBlob.objects.create(
            tenant=world.tenant, sha256="0" * 64, kind="onnx", size=1
        )
        return TrainedModel.objects.create(
            tenant=world.tenant,
            submission=world.submission,
            learner=world.submission.learner,
            course=world.course,
            exercise=world.exercise,
            dataset=world.exercise.dataset,
            onnx=blob,
            parameter_count=1,
        )
