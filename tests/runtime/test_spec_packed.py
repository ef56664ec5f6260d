"""Recurrent layers on padded token ids (runtime/spec/modules.py): a text dataset's model reads
packed sequences, so a text gives the same output however far it is padded, "all" is zero at the
padding, bidirectional layers start their backward pass at the text's own last token; the
`sequences` dataset (no padding: id 0 is a real token there) is built and computed as before;
the packed model exports to ONNX and onnxruntime gives PyTorch's numbers."""

import numpy as np
import pytest
import torch

from runtime.artifacts.check import check_onnx
from runtime.artifacts.export import ServingModel, export_onnx
from runtime.artifacts.predict import OnnxModel
from runtime.datasets import dataset_info
from runtime.ingest.stored import TextDatasetInfo
from runtime.spec import build_model, check_spec, parse_spec
from runtime.spec.modules import Recurrent, SpecModel, token_lengths

TRAINING = {"optimizer": {"type": "adam", "lr": 0.01}, "epochs": 1, "batch_size": 2}
VOCAB = 50


def texts_info(steps: int) -> TextDatasetInfo:
    return TextDatasetInfo(
        name="upload:" + "0" * 32,
        title="Texts",
        kind="tokens",
        task="multiclass",
        input_shape=(steps,),
        num_classes=3,
        class_names=("a", "b", "c"),
        vocab_size=VOCAB,
        sizes=(10, 2, 2),
        requires_download=False,
    )


def spec(kind: str, *, bidirectional=False, output="last", num_layers=1) -> dict:
    layers = [
        {"type": "embedding", "embedding_dim": 6},
        {
            "type": kind,
            "hidden_size": 5,
            "bidirectional": bidirectional,
            "output": output,
            "num_layers": num_layers,
        },
    ]
    if output == "all":
        layers.append({"type": "flatten"})
    layers.append({"type": "linear", "out_features": 3})
    return {"version": 1, "layers": layers, "training": TRAINING}


def padded(rows: list[list[int]], steps: int) -> torch.Tensor:
    ids = torch.zeros(len(rows), steps, dtype=torch.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    return ids


TEXTS = [[5, 9, 2, 7, 7, 3, 11], [4], [8, 8, 13, 21, 34, 2, 3, 5, 40, 44]]  # 7, 1 and 10 tokens


def built(document: dict, steps: int) -> SpecModel:
    torch.manual_seed(0)
    return build_model(document, texts_info(steps)).eval()


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_a_text_gives_the_same_last_step_padded_to_64_or_to_10(kind, bidirectional, num_layers):
    document = spec(kind, bidirectional=bidirectional, num_layers=num_layers)
    long, short = built(document, 64), built(document, 10)
    short.load_state_dict(long.state_dict())
    recurrent = long[:2]  # embedding and the recurrent layer: the "last" output itself
    assert isinstance(recurrent, SpecModel) and recurrent.pad_id == 0
    with torch.no_grad():
        at_64 = recurrent(padded(TEXTS, 64))
        at_10 = short[:2](padded(TEXTS, 10))
        one_by_one = torch.cat([recurrent(padded([text], 64)) for text in TEXTS])
    width = 10 if bidirectional else 5
    assert at_64.shape == (3, width)
    torch.testing.assert_close(at_64, at_10, rtol=0, atol=1e-6)
    torch.testing.assert_close(at_64, one_by_one, rtol=0, atol=1e-6)  # the batch's order
    # "last" is the text's own last token: the recurrent layer on the text alone, unpadded.
    embedding, layer = long[0], long[1]
    for row, text in enumerate(TEXTS):
        with torch.no_grad():
            alone = layer(embedding(torch.tensor([text])))
        torch.testing.assert_close(at_64[row : row + 1], alone, rtol=0, atol=1e-6)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_every_step_is_zero_at_the_padding(bidirectional):
    model = built(spec("gru", bidirectional=bidirectional, output="all"), 12)
    with torch.no_grad():
        steps = model[:2](padded(TEXTS, 12))
        alone = model[1](model[0](torch.tensor([TEXTS[0]])))
    assert steps.shape == (3, 12, 10 if bidirectional else 5)
    for row, text in enumerate(TEXTS):
        assert steps[row, len(text) :].abs().max().item() == 0.0
        assert steps[row, : len(text)].abs().min().item() > 0.0
    torch.testing.assert_close(steps[0:1, : len(TEXTS[0])], alone, rtol=0, atol=1e-6)


def test_lengths_count_the_ids_that_are_not_padding_and_are_at_least_one():
    ids = padded([[3, 4, 5], [], [9] * 8], 8)
    assert token_lengths(ids, 0).tolist() == [3, 1, 8]


def test_the_embedding_of_a_text_dataset_keeps_the_padding_at_zero():
    model = built(spec("lstm"), 64)
    assert model[0].padding_idx == 0
    assert model[0].weight[0].abs().max().item() == 0.0


def test_the_spec_check_reports_the_shapes_of_a_text_model():
    document = spec("gru", bidirectional=True, output="all", num_layers=2)
    report = check_spec(document, texts_info(64))
    assert [(layer.type, layer.output_shape) for layer in report.layers] == [
        ("embedding", (64, 6)),
        ("gru", (64, 10)),
        ("flatten", (640,)),
        ("linear", (3,)),
    ]
    assert report.input_shape == (64,) and report.output_shape == (3,)


def test_the_sequences_dataset_has_no_padding_and_is_computed_as_before():
    info = dataset_info("sequences")  # id 0 is the token "A", in every sequence
    assert getattr(info, "pad_id", None) is None
    document = spec("lstm", bidirectional=True)
    document["layers"][-1]["out_features"] = 6
    torch.manual_seed(0)
    model = build_model(document, info).eval()
    assert isinstance(model, SpecModel) and model.pad_id is None
    x = torch.randint(0, 16, (4, 20))
    x[:, -1] = 0  # "A" last: a padding rule would have cut it off
    with torch.no_grad():
        steps, _ = model[1].rnn(model[0](x))
        got = model[:2](x)
    torch.testing.assert_close(got, torch.cat((steps[:, -1, :5], steps[:, 0, 5:]), dim=-1))
    assert model[0].padding_idx is None


def test_a_model_without_a_recurrent_layer_reads_the_padding_as_before():
    document = {
        "version": 1,
        "layers": [
            {"type": "embedding", "embedding_dim": 4},
            {"type": "flatten"},
            {"type": "linear", "out_features": 3},
        ],
        "training": TRAINING,
    }
    model = build_model(document, texts_info(8))
    assert model.pad_id is None  # no lengths computed; the padding's vector is zero
    assert model[0].padding_idx == 0


def test_a_residual_block_hands_the_lengths_to_its_recurrent_layer():
    document = {
        "version": 1,
        "layers": [
            {"type": "embedding", "embedding_dim": 5},
            {"type": "residual", "layers": [{"type": "gru", "hidden_size": 5, "output": "all"}]},
            {"type": "lstm", "hidden_size": 4},
            {"type": "linear", "out_features": 3},
        ],
        "training": TRAINING,
    }
    long, short = built(document, 64), built(document, 9)
    short.load_state_dict(long.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(
            long(padded(TEXTS[:2], 64)), short(padded(TEXTS[:2], 9)), rtol=0, atol=1e-6
        )
    assert isinstance(long[1].body[0], Recurrent) and long[1].takes_lengths


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("output", ["last", "all"])
def test_the_packed_model_exports_and_onnxruntime_gives_pytorchs_numbers(
    kind, bidirectional, output
):
    info = texts_info(16)
    document = spec(kind, bidirectional=bidirectional, output=output)
    model = built(document, 16)
    training = parse_spec(document).training
    data = export_onnx(model, info=info, training=training)
    summary = check_onnx(data, info=info)
    assert kind.upper() in summary.operators
    ids = padded([[5, 9, 2], [4], list(range(2, 18)), [7, 7, 7, 7, 7]], 16)
    with torch.no_grad():
        expected = ServingModel(model, info=info, training=training)(ids).numpy()
    got = OnnxModel(data).probabilities(ids.numpy())
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    # The exported graph pads as the model does: the same text padded differently, the same.
    again = OnnxModel(data).probabilities(padded([[5, 9, 2]], 16).numpy())
    np.testing.assert_allclose(again[0], got[0], rtol=0, atol=1e-6)
