"""A trained model stored as a run keeps it, without a worker: a spec model built for a dataset
(trained for a few epochs when asked), exported and checked by runtime/artifacts, and stored with
artifact_store for a new graded attempt of a world's learner."""

from django.conf import settings
from django_scopes import scope, scopes_disabled

from apps.jobs.artifacts import (
    artifact_of_spec_model,
    hidden_parts,
    metrics_of_artifact,
    public_metrics,
)
from apps.trained_models.services import artifact_store
from runtime.datasets import load_dataset
from runtime.spec import build_model, parse_spec
from runtime.trainer import seeded, train
from tests.factories import AssignmentFactory, ExerciseFactory, graded_submission

SPECS = {
    "digits": {
        "version": 1,
        "layers": [
            {"type": "linear", "out_features": 32},
            {"type": "relu"},
            {"type": "linear", "out_features": 10},
        ],
        "training": {"optimizer": {"type": "adam", "lr": 0.01}, "epochs": 5, "batch_size": 64},
    },
    "xor": {
        "version": 1,
        "layers": [
            {"type": "linear", "out_features": 16},
            {"type": "tanh"},
            {"type": "linear", "out_features": 1},
        ],
        "training": {"optimizer": {"type": "adam", "lr": 0.05}, "epochs": 20, "batch_size": 32},
    },
    "shapes": {
        "version": 1,
        "layers": [
            {"type": "conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
            {"type": "relu"},
            {"type": "maxpool2d", "kernel_size": 4},
            {"type": "flatten"},
            {"type": "linear", "out_features": 10},
        ],
        "training": {"optimizer": {"type": "adam", "lr": 0.01}, "epochs": 1, "batch_size": 64},
    },
}


def stored_model(
    world,
    *,
    dataset: str,
    trained: bool = True,
    spec: dict | None = None,
    assignment=None,
    learner=None,
    attempt: int = 1,
):
    """A TrainedModel of `world`'s learner (or `learner`) for a new exercise on `dataset` (or a
    new graded attempt on `assignment`, whose exercise is on `dataset`), with real files."""
    spec = spec or SPECS[dataset]
    if assignment is None:
        exercise = ExerciseFactory(course=world.course, dataset=dataset, starter_spec=spec)
        assignment = AssignmentFactory(exercise=exercise)
    # As the worker loads it: the test split drawn with the assignment's secret.
    data = load_dataset(dataset, data_dir=settings.DATA_DIR, secret=bytes(assignment.split_secret))
    training = parse_spec(spec).training
    model = seeded(training.seed, lambda: build_model(spec, data.info))
    if trained:
        train(model, training=training, train=data.train, val=data.val, info=data.info)
    submission = graded_submission(
        assignment=assignment, learner=learner or world.learner.user, attempt=attempt
    )
    with scopes_disabled():  # the spec it was trained from
        type(submission).objects.filter(pk=submission.pk).update(spec=spec)
    submission.spec = spec
    artifact = artifact_of_spec_model(model, info=data.info, training=training)
    assert artifact.onnx, artifact.not_kept
    graded, public = hidden_parts(data)  # the grade is the private part's, as the worker's
    metrics = metrics_of_artifact(artifact, test=graded, info=data.info, metrics={})
    metrics["public"] = public_metrics(artifact, public, data.info, predictions=None)
    job = submission.job
    with scope(tenant=world.tenant.id):
        return artifact_store(
            tenant_id=world.tenant.id,
            submission=submission,
            job=job,
            onnx=artifact.onnx,
            weights=artifact.weights,
            card=artifact.card(info=data.info, training=training, metrics=metrics, job=job),
            metrics=metrics,
            parameter_count=artifact.summary.parameter_count,
        )
