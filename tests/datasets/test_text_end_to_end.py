"""A text dataset from upload to prediction through the real stack: the shipped Chinese and
English corpus (runtime/corpora/topics-zh-en.csv) uploaded through the API as a teacher would,
ingested by a real Celery worker, assigned, a spec (embedding, GRU, linear: packed sequences)
and PyTorch code trained and graded by the worker on the private part, the tokeniser trained on
the assignment's train part kept in each model's card; then the prediction API and the try page
take a Chinese and an English sentence and answer what PyTorch answers for the model's weights
and that tokeniser. And the version's tokeniser option, checked where the options are."""

import json
from pathlib import Path

import pytest
import torch
from django.core.exceptions import ValidationError
from django_scopes import scope, scopes_disabled
from safetensors.torch import load as safetensors_load

from apps.courses.models import Exercise
from apps.datasets.models import Dataset
from apps.datasets.services import version_create
from apps.datasets.source import text_tokenizer
from apps.jobs.grading import grade_compute
from apps.jobs.models import Grade
from apps.trained_models.models import TrainedModel
from apps.trained_models.services import artifact_open
from runtime.artifacts.export import ServingModel
from runtime.datasets import PRIVATE_PART, load_dataset
from runtime.spec import build_model, parse_spec
from runtime.text import TextTokenizer, tokenizer_card, tokenizer_from_card
from tests.conftest import api_client_for, page_client_for
from tests.datasets.support import first_upload_ingested, job_ended, teacher_client, upload
from tests.factories import AssignmentFactory

pytestmark = pytest.mark.django_db(transaction=True)

CORPUS = Path(__file__).resolve().parents[2] / "runtime" / "corpora" / "topics-zh-en.csv"
CLASSES = ["food", "sport", "study", "weather"]
SENTENCES = [
    "明天会下大雨，出门记得带伞",  # noqa: RUF001 (Chinese punctuation)
    "We played football in the park after school",
]

SPEC = {
    "version": 1,
    "layers": [
        {"type": "embedding", "embedding_dim": 16},
        {"type": "gru", "hidden_size": 16},
        {"type": "linear", "out_features": 4},
    ],
    "training": {
        "optimizer": {"type": "adam", "lr": 0.01},
        "epochs": 10,
        "batch_size": 16,
        "seed": 0,
    },
}

# Learner code gets the padded ids (0 pads, ids below 8000) and finds the lengths itself.
CODE = """
import torch
import torch.nn as nn


class Bag(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.embedding = nn.Embedding(8000, 16, padding_idx=0)
        self.out = nn.Linear(16, classes)

    def forward(self, ids):
        real = (ids != 0).unsqueeze(-1).float()
        mean = (self.embedding(ids) * real).sum(1) / real.sum(1).clamp(min=1.0)
        return self.out(mean)


def build_model(input_shape, num_classes):
    return Bag(num_classes)
"""


def _pytorch_probabilities(model: TrainedModel, kind: str, info, tokenizer: TextTokenizer):
    """What PyTorch gives for SENTENCES with the model's stored weights and `tokenizer`."""
    training = parse_spec(SPEC).training
    if kind == "spec":
        module = build_model(SPEC, info)
    else:
        namespace: dict = {}
        exec(compile(CODE, "submission.py", "exec"), namespace)  # the learner's code, here
        module = namespace["build_model"](info.input_shape, info.num_classes)
    with scopes_disabled():
        weights = safetensors_load(artifact_open(model.weights))
    module.load_state_dict(weights)
    ids, _lengths = tokenizer.encode(SENTENCES)
    with torch.no_grad():
        return ServingModel(module.eval(), info=info, training=training)(torch.from_numpy(ids))


def test_the_corpus_is_uploaded_trained_graded_and_its_models_take_texts(
    celery_worker_process, pool, tenant_a
):
    teacher = teacher_client(tenant_a)
    upload(
        teacher,
        tenant_a,
        CORPUS.read_bytes(),
        slug="topics",
        chunk=4096,
        kind="text",
        label_column="topic",
        text_column="sentence",
    )
    version = first_upload_ingested(tenant_a)
    assert version.state == "ready", (version.problems, version.message)
    info_fields = version.summary["info"]
    assert (info_fields["kind"], info_fields["input_shape"], info_fields["vocab_size"]) == (
        "tokens",
        [64],
        8000,
    )
    assert (info_fields["pad_id"], info_fields["class_names"]) == (0, CLASSES)
    name = version.source_name

    created = teacher.post(
        f"/api/v1/t/{tenant_a.tenant.slug}/courses/{tenant_a.course.id}/exercises/",
        {
            "title": "Topics",
            "dataset": name,
            "min_metric": 0.25,
            "target_metric": 0.9,
            "allow_spec": True,
            "allow_code": True,
            "starter_spec": SPEC,
            "max_seconds": 300,
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    with scopes_disabled():
        exercise = Exercise.objects.get(id=created.json()["id"])
    assignment = AssignmentFactory(exercise=exercise)
    secret = bytes(assignment.split_secret)

    with scope(tenant=tenant_a.tenant.id):
        data = load_dataset(name, secret=secret)
        tokenizer = text_tokenizer(name, secret)
    private = int((data.test_part == PRIVATE_PART).sum())
    assert (private, len(data.test_part) - private) == (20, 20)
    assert data.info.sizes == (140, 20, 40)
    assert data.info.pad_id == 0 and tuple(data.train.x.shape) == (140, 64)
    assert tokenizer.kind == "word"
    assert tokenizer.tokens("明天会下雨") == ["明", "天", "会", "下", "雨"]  # no spaces needed

    learner = api_client_for(tenant_a.learner.user)
    jobs = {}
    for kind, body in (
        ("spec", {"kind": "spec", "spec": SPEC}),
        ("code", {"kind": "code", "code": CODE}),
    ):
        response = learner.post(
            f"/api/v1/t/{tenant_a.tenant.slug}/assignments/{assignment.id}/submissions/",
            body,
            format="json",
        )
        assert response.status_code == 201, response.content
        jobs[kind] = response.json()["job"]["id"]

    for kind, job_id in jobs.items():
        job = job_ended(job_id)
        assert job.state == "succeeded", (kind, job.failure_kind, job.message)
        with scopes_disabled():
            grade = Grade.objects.get(submission__job=job)
            model = TrainedModel.objects.select_related("onnx", "weights").get(submission__job=job)
        metrics = grade.metrics
        # The grade is the private part's: its 20 samples, its confusion matrix, its score.
        assert metrics["test_samples"] == 20
        assert sum(map(sum, metrics["confusion_matrix"])) == 20
        assert metrics["public"]["test_samples"] == 20
        assert metrics["class_names"] == CLASSES
        assert metrics["graded_on"] == "onnx"
        with scopes_disabled():
            expected = grade_compute(
                exercise=exercise, assignment=assignment, metrics=metrics, is_late=False
            )
        assert grade.score == expected.score

        # The tokeniser trained on this assignment's train part goes with the model.
        entry = model.card["tokenizer"]
        assert entry == tokenizer_card(tokenizer)
        assert (entry["kind"], entry["max_length"], entry["pad_id"]) == ("word", 64, 0)
        assert tokenizer_from_card(entry).to_json() == tokenizer.to_json()

        # The prediction API encodes texts with it and answers PyTorch's probabilities.
        predict = f"/api/v1/t/{tenant_a.tenant.slug}/models/{model.id}/predict"
        answer = learner.post(predict, {"texts": SENTENCES}, format="json")
        assert answer.status_code == 200, answer.content
        got = torch.tensor([p["probabilities"] for p in answer.json()["predictions"]])
        want = _pytorch_probabilities(model, kind, data.info, tokenizer)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
        # The same ids sent as numbers: the same answer.
        ids, _lengths = tokenizer.encode(SENTENCES)
        as_ids = learner.post(predict, {"inputs": ids.tolist()}, format="json")
        assert as_ids.status_code == 200, as_ids.content
        assert as_ids.json()["predictions"] == answer.json()["predictions"]

        # The try page: a form whose text is run the same way, its probabilities shown.
        page = f"/t/{tenant_a.tenant.slug}/models/{model.id}/try/"
        browser = page_client_for(tenant_a.learner.user)
        shown = browser.get(page)
        assert shown.status_code == 200 and 'id="try-text-form"' in shown.content.decode()
        tried = browser.post(page, {"text": SENTENCES[0]})
        assert tried.status_code == 200
        ranked = tried.context["try_ranked"]
        first = answer.json()["predictions"][0]
        assert ranked[0]["label"] == first["label"]
        assert sorted(row["p"] for row in ranked) == pytest.approx(
            sorted(first["probabilities"]), abs=1e-6
        )


def test_a_text_versions_tokeniser_is_one_of_the_kinds(tenant_a):
    with scopes_disabled():
        dataset = Dataset.objects.create(tenant=tenant_a.tenant, slug="texts", title="Texts")
        options = {"kind": "text", "label_column": "topic", "text_column": "sentence"}

        def create(**more):
            return version_create(
                dataset=dataset,
                created_by=tenant_a.teacher.user,
                file_name="texts.csv",
                size=100,
                format="csv",
                options={**options, **more},
            )

        assert create(tokenizer="bpe").options["tokenizer"] == "bpe"
        assert "tokenizer" not in create().options  # word, the default
        with pytest.raises(ValidationError) as refused:
            create(tokenizer="sentencepiece")
        assert refused.value.message_dict == {
            "tokenizer": ["Tokenise by 'word', 'bpe', 'char', not 'sentencepiece'."]
        }
        with pytest.raises(ValidationError) as refused:
            create(kind="tabular", text_column=None, tokenizer="char")
        assert refused.value.message_dict == {"tokenizer": ["Only a text table is tokenised."]}


def test_a_version_tokenised_by_characters_trains_a_character_tokeniser(tenant_a, tmp_path):
    """The option reaches the split: source.load hands it to stored_splits."""
    from runtime.ingest.stored import stored_read, stored_splits
    from runtime.ingest.tables import table_ingest

    with open(CORPUS, "rb") as source:
        table_ingest(
            source, tmp_path / "c.arrow", kind="text", label_column="topic", text_column="sentence"
        )
    stored = stored_read(tmp_path / "c.arrow")
    split = stored_splits(stored, name="upload:x", title="T", secret=bytes(32), tokenizer="char")
    assert split.tokenizer.kind == "char"
    assert split.tokenizer.tokens("rain 雨") == ["r", "a", "i", "n", "雨"]
    with pytest.raises(ValueError, match="tokenizer must be one of word, bpe, char"):
        stored_splits(stored, name="upload:x", title="T", secret=bytes(32), tokenizer="x")
    assert json.loads(split.tokenizer.to_json())["kind"] == "char"
