"""The built-in templates: each spec checks on its datasets, and each code form trains in the
real sandbox and is scored by the evaluator."""

from dataclasses import replace

import pytest

from runtime.datasets import DatasetSplits, Split, dataset_info, load_dataset
from runtime.evaluate import metrics_from_predictions
from runtime.sandbox import check_code, run_code_submission
from runtime.spec import check_spec, parse_spec
from runtime.templates import TEMPLATES
from runtime.trainer import ComputeBudget

EXPECTED_PARAMS = {"cifar-cnn": 62006, "rnn-sequences": 21638, "xor": 9}


@pytest.mark.parametrize("slug", sorted(TEMPLATES))
def test_each_spec_checks_on_every_dataset_it_names(slug):
    template = TEMPLATES[slug]
    spec = parse_spec(template.spec)
    for name in (template.dataset, *template.other_datasets):
        report = check_spec(spec, dataset_info(name))
        assert report.total_params == EXPECTED_PARAMS[slug], name


@pytest.mark.parametrize("slug", sorted(TEMPLATES))
def test_each_code_form_passes_the_static_checks(slug):
    assert check_code(TEMPLATES[slug].code) == []


def _subset(data: DatasetSplits, train: int, test: int) -> DatasetSplits:
    def part(split: Split, size: int) -> Split:
        return Split(split.x[:size], split.y[:size])

    return replace(
        data, train=part(data.train, train), val=part(data.val, 200), test=part(data.test, test)
    )


@pytest.mark.parametrize(
    "slug, train_size, epochs, at_least",
    [("xor", 800, 60, 1.0), ("rnn-sequences", 3000, 2, 0.9), ("cifar-cnn", 2000, 1, 0.0)],
)
def test_each_code_form_trains_in_the_sandbox(slug, train_size, epochs, at_least):
    template = TEMPLATES[slug]
    data = _subset(load_dataset(template.dataset), train_size, 200)
    training = replace(parse_spec(template.spec).training, epochs=epochs)
    result = run_code_submission(
        code=template.code, data=data, training=training, budget=ComputeBudget(max_seconds=90)
    )
    assert (result.status, result.message) == ("succeeded", ""), result.output
    metrics = metrics_from_predictions(
        data.test.y, result.predictions, class_names=data.info.class_names
    )
    assert metrics["test_samples"] == 200
    assert metrics["accuracy"] >= at_least
