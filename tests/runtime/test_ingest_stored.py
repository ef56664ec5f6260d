"""Ingested versions read back and split with a secret (runtime/ingest/stored.py): what was
ingested comes back value for value in the runtime's layout; the four parts cover every row
once, follow the secret, and the hidden ones are told apart only by `test_part`; a text
dataset's tokeniser knows only the training texts."""

import io
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from runtime import datasets
from runtime.datasets import PRIVATE_PART, PUBLIC_PART, DatasetSource, load_dataset
from runtime.datasets import register_source as source_register
from runtime.ingest.images import images_ingest
from runtime.ingest.splits import SplitPlan
from runtime.ingest.stored import TEXT_VOCABULARY, stored_info, stored_read, stored_splits
from runtime.ingest.tables import table_ingest

SECRET = bytes(range(32))
OTHER = bytes(range(1, 33))


def _csv(tmp_path, rows: int = 200):
    lines = ["a,b,label"] + [f"{i},{i * 0.5},{'yes' if i % 3 else 'no'}" for i in range(rows)]
    out = tmp_path / "table.arrow"
    table_ingest(io.BytesIO("\n".join(lines).encode()), out, kind="tabular", label_column="label")
    return out


def test_a_table_comes_back_as_numbers_with_its_labels(tmp_path):
    stored = stored_read(_csv(tmp_path, rows=6))
    assert stored.kind == "vector"
    assert stored.class_names == ("no", "yes")
    assert stored.x.dtype == np.float32
    assert stored.x.tolist() == [[i, i * 0.5] for i in range(6)]
    assert stored.labels.tolist() == ["no", "yes", "yes", "no", "yes", "yes"]


def test_images_come_back_channels_first_pixel_for_pixel(tmp_path):
    rng = np.random.default_rng(0)
    pictures = {
        f"{c}/{i}.png": rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
        for c in "ab"
        for i in range(2)
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, pixels in pictures.items():
            png = io.BytesIO()
            Image.fromarray(pixels).save(png, format="PNG")
            archive.writestr(name, png.getvalue())
    out = tmp_path / "images.arrow"
    buffer.seek(0)
    images_ingest(buffer, out)
    stored = stored_read(out)
    assert stored.kind == "image" and stored.x.shape == (4, 3, 5, 7)
    by_label = {}
    for x, label in zip(stored.x, stored.labels, strict=True):
        by_label.setdefault(label, []).append(x.transpose(1, 2, 0).tobytes())
    assert sorted(by_label) == ["a", "b"]
    for label, got in by_label.items():
        wanted = [p.tobytes() for name, p in pictures.items() if name.startswith(label)]
        assert sorted(got) == sorted(wanted)


def test_the_parts_cover_every_row_once_and_follow_the_secret(tmp_path):
    stored = stored_read(_csv(tmp_path, rows=300))
    plan = SplitPlan(0.1, 0.1, 0.1)
    data = stored_splits(stored, name="upload:t", title="T", secret=SECRET, plan=plan).splits
    assert data.info.sizes == (210, 30, 60)
    assert data.info.task == "binary" and data.info.input_shape == (2,)
    rows = torch.cat([data.train.x, data.val.x, data.test.x])[:, 0].long().tolist()
    assert sorted(rows) == list(range(300))
    assert data.test_part.tolist().count(PUBLIC_PART) == 30
    assert data.test_part.tolist().count(PRIVATE_PART) == 30
    # Each label is the row's own: the split moved rows whole.
    for split in (data.train, data.val, data.test):
        expected = [0 if int(a) % 3 == 0 else 1 for a in split.x[:, 0]]
        assert split.y.tolist() == expected
    assert stored_info(stored, name="upload:t", title="T", plan=plan) == data.info
    again = stored_splits(stored, name="upload:t", title="T", secret=SECRET, plan=plan).splits
    assert torch.equal(again.test.x, data.test.x) and torch.equal(again.test_part, data.test_part)
    other = stored_splits(stored, name="upload:t", title="T", secret=OTHER, plan=plan).splits
    assert set(other.test.x[:, 0].tolist()) != set(data.test.x[:, 0].tolist())


def test_a_text_datasets_tokeniser_knows_only_the_training_texts(tmp_path):
    words = [f"word{i}" for i in range(400)]  # each row its own word: a hidden one is unknown
    lines = ["text,label"] + [f"{w} shared,{i % 2}" for i, w in enumerate(words)]
    out = tmp_path / "text.arrow"
    table_ingest(
        io.BytesIO("\n".join(lines).encode()),
        out,
        kind="text",
        label_column="label",
        text_column="text",
    )
    result = stored_splits(stored_read(out), name="upload:x", title="X", secret=SECRET)
    data, tokenizer = result.splits, result.tokenizer
    assert data.info.kind == "tokens" and data.info.vocab_size == TEXT_VOCABULARY
    assert tokenizer.vocabulary < TEXT_VOCABULARY
    assert data.train.x.dtype == torch.int64 and data.train.x.shape[1] == tokenizer.max_length
    vocabulary = set(tokenizer.tokenizer.get_vocab())
    known = {w for w in words if w in vocabulary}
    assert len(known) == data.info.sizes[0]  # the training rows' words, and no others
    assert (data.test.x[:, 0] == 1).all()  # every hidden row's own word is [UNK]


def test_a_registered_source_is_loaded_by_name_and_split_with_the_secret(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_SOURCES", {})  # registered for this test only
    stored = stored_read(_csv(tmp_path, rows=100))

    def info(name):
        return stored_splits(stored, name=name, title="T", secret=SECRET).splits.info

    def load(name, secret):
        return stored_splits(stored, name=name, title="T", secret=secret).splits

    source_register(DatasetSource(prefix="testsource", info=info, load=load))
    data = load_dataset("testsource:one", secret=OTHER)
    assert data.info.name == "testsource:one"
    expected = load(name="testsource:one", secret=OTHER)
    assert torch.equal(data.test.x, expected.test.x)
    with pytest.raises(ValueError, match="plain word"):
        source_register(DatasetSource(prefix="no:t", info=info, load=load))
