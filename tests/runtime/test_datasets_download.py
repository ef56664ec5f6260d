"""The downloaded datasets (cifar10, mnist, fashion_mnist), without the internet: tiny fakes in
the exact on-disk formats they download in (CIFAR-10's binary version, MNIST's idx files), the
errors when files are missing, and the `download_datasets` management command."""

import gzip
import io
import struct
import tarfile
import urllib.error
import urllib.request
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from django.conf import settings
from django.core.management import call_command, get_commands
from django.core.management.base import CommandError
from django.test import override_settings

from apps.jobs.management.commands.download_datasets import Command
from runtime.datasets import (
    DatasetDownloadFailed,
    DatasetMissing,
    clear_dataset_cache,
    dataset_info,
    default_data_dir,
    download_dataset,
    load_dataset,
)

CIFAR_PER_BATCH = 1020  # 5 batches: 5100 training images, of which the last 5000 validate
CIFAR_TEST = 200
MNIST_TRAIN = 5100
MNIST_TEST = 100


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_dataset_cache()
    yield
    clear_dataset_cache()


# --- Fakes in the downloads' formats --------------------------------------------------------------


def cifar_image(i: int) -> np.ndarray:
    """Image i as the CIFAR batches store it: 3072 bytes, 1024 per channel (R, G, B), each
    channel's 32 rows in order. Red is i % 256, green i // 256, blue 7, except a marker at row 1,
    column 2 of the blue channel (255), so a wrong reshape or transpose shows."""
    image = np.empty((3, 32, 32), dtype=np.uint8)
    image[0], image[1], image[2] = i % 256, i // 256, 7
    image[2, 1, 2] = 255
    return image.reshape(-1)


def write_cifar10(root: Path) -> None:
    """The folder the binary archive unpacks to: five training batches and a test batch, each of
    records of one label byte and the image's 3072 bytes."""
    base = root / "cifar-10-batches-bin"
    base.mkdir(parents=True)
    index = 0

    def batch(path: Path, count: int, first_label: int) -> None:
        nonlocal index
        records = [
            bytes([(first_label + k) % 10]) + cifar_image(index + k).tobytes() for k in range(count)
        ]
        index += count
        path.write_bytes(b"".join(records))

    for number in range(1, 6):
        batch(base / f"data_batch_{number}.bin", CIFAR_PER_BATCH, first_label=0)
    batch(base / "test_batch.bin", CIFAR_TEST, first_label=3)
    (base / "batches.meta.txt").write_text("\n".join(dataset_info("cifar10").class_names) + "\n")


def idx_file(array: np.ndarray) -> bytes:
    """The IDX format of the MNIST files: magic 0x0000 08 <ndim> (unsigned bytes), each dimension
    as a big-endian int32, then the bytes."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def mnist_images(count: int, offset: int) -> np.ndarray:
    images = np.zeros((count, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = (np.arange(count) + offset) % 256
    images[:, 3, 5] = 200  # row 3, column 5
    return images


def write_mnist(root: Path, folder: str = "MNIST") -> None:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    files = {
        "train-images-idx3-ubyte": mnist_images(MNIST_TRAIN, 0),
        "train-labels-idx1-ubyte": np.arange(MNIST_TRAIN) % 10,
        "t10k-images-idx3-ubyte": mnist_images(MNIST_TEST, 100),
        "t10k-labels-idx1-ubyte": (np.arange(MNIST_TEST) + 1) % 10,
    }
    for name, array in files.items():
        (raw / name).write_bytes(idx_file(array))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("datasets").resolve()
    write_cifar10(root)
    write_mnist(root, "MNIST")
    write_mnist(root, "FashionMNIST")
    return root


# --- Loading --------------------------------------------------------------------------------------


def test_cifar10_becomes_uint8_nchw_with_the_last_5000_training_images_as_validation(data_dir):
    data = load_dataset("cifar10", data_dir=data_dir)
    assert data.info.sizes == (5 * CIFAR_PER_BATCH - 5000, 5000, CIFAR_TEST)
    assert dataset_info("cifar10").sizes == (45000, 5000, 10000)  # the real files' sizes
    assert data.info.input_shape == (3, 32, 32)
    for split in (data.train, data.val, data.test):
        assert split.x.dtype == torch.uint8 and split.y.dtype == torch.int64
        assert split.x.shape[1:] == (3, 32, 32) and split.x.is_contiguous()
        assert bool((split.x[:, 2, 1, 2] == 255).all()) and bool((split.x[:, 2, 2, 1] == 7).all())
    # global training index i: red i % 256, green i // 256
    train_index = data.train.x[:, 0, 0, 0].long() + 256 * data.train.x[:, 1, 0, 0].long()
    val_index = data.val.x[:, 0, 0, 0].long() + 256 * data.val.x[:, 1, 0, 0].long()
    assert train_index.tolist() == list(range(100))
    assert val_index.tolist() == list(range(100, 5100))
    assert data.train.y[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert data.val.y[:3].tolist() == [100 % CIFAR_PER_BATCH % 10, 1, 2]
    test_index = data.test.x[:, 0, 0, 0].long() + 256 * data.test.x[:, 1, 0, 0].long()
    assert test_index.tolist() == list(range(5100, 5100 + CIFAR_TEST))
    assert data.test.y[:3].tolist() == [3, 4, 5]


def test_cifar10_in_the_python_version_alone_is_missing_and_never_unpickled(tmp_path):
    """What torchvision downloads (pickled batches) is not read: a pickle there that would
    create a file when loaded creates nothing, and the dataset is reported missing."""
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    marker = tmp_path / "unpickled"
    payload = (
        b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."  # os.system("touch ...")
    )
    for name in [f"data_batch_{n}" for n in range(1, 6)] + ["test_batch"]:
        (base / name).write_bytes(payload)
    with pytest.raises(DatasetMissing, match="is not in DATA_DIR"):
        load_dataset("cifar10", data_dir=tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_mnist_style_datasets_become_uint8_n1hw(name, data_dir):
    data = load_dataset(name, data_dir=data_dir)
    assert data.info.sizes == (MNIST_TRAIN - 5000, 5000, MNIST_TEST)
    assert data.info.class_names == dataset_info(name).class_names
    for split in (data.train, data.val, data.test):
        assert split.x.dtype == torch.uint8 and split.y.dtype == torch.int64
        assert split.x.shape[1:] == (1, 28, 28) and split.x.is_contiguous()
        assert bool((split.x[:, 0, 3, 5] == 200).all()) and bool((split.x[:, 0, 5, 3] == 0).all())
    assert data.train.x[:, 0, 0, 0].tolist() == list(range(100))
    assert data.val.x[:3, 0, 0, 0].tolist() == [100, 101, 102]
    assert data.val.y[:3].tolist() == [0, 1, 2]
    assert data.test.x[:3, 0, 0, 0].tolist() == [100, 101, 102]
    assert data.test.y[:3].tolist() == [1, 2, 3]


def test_downloaded_datasets_are_cached_per_data_directory(data_dir, tmp_path):
    first = load_dataset("mnist", data_dir=data_dir)
    assert load_dataset("mnist", data_dir=str(data_dir)).train.x is first.train.x
    with pytest.raises(DatasetMissing):
        load_dataset("mnist", data_dir=tmp_path)  # another directory: not the cached data


@pytest.mark.parametrize("name", ["cifar10", "mnist", "fashion_mnist"])
def test_a_missing_dataset_names_the_command_that_downloads_it(name, tmp_path):
    with pytest.raises(DatasetMissing) as caught:
        load_dataset(name, data_dir=tmp_path)
    assert str(caught.value) == (
        f"The {name} dataset is not in DATA_DIR ({tmp_path.resolve()}). "
        f"Download it with: python manage.py download_datasets {name}"
    )
    assert caught.value.command == f"python manage.py download_datasets {name}"


def test_without_a_data_dir_the_default_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    assert default_data_dir() == tmp_path / "data"
    with pytest.raises(DatasetMissing, match=r"not in DATA_DIR \(.*/data\)"):
        load_dataset("cifar10")
    monkeypatch.delenv("DATA_DIR")
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    assert default_data_dir() == tmp_path / "var" / "datasets"


def test_a_partly_downloaded_cifar10_is_missing(data_dir, tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin").unlink()
    with pytest.raises(DatasetMissing, match="is not in DATA_DIR"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_a_truncated_file_is_reported_as_corrupted(tmp_path):
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-bin" / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DatasetMissing) as caught:
        load_dataset("cifar10", data_dir=tmp_path)
    message = str(caught.value)
    assert message.startswith(
        f"The cifar10 dataset in DATA_DIR ({tmp_path.resolve()}) is incomplete or corrupted ("
    )
    assert message.endswith(
        "Delete its folder there and download it again with: "
        "python manage.py download_datasets cifar10"
    )

    write_mnist(tmp_path)
    labels = tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    labels.write_bytes(idx_file(np.zeros((10,), dtype=np.uint8)))
    with pytest.raises(DatasetMissing, match=r"corrupted \(5100 training images but 10 labels\)"):
        load_dataset("mnist", data_dir=tmp_path)
    labels.write_bytes(idx_file(np.full((MNIST_TRAIN,), 10, dtype=np.uint8)))
    with pytest.raises(DatasetMissing, match=r"corrupted \(training labels outside 0..9\)"):
        load_dataset("mnist", data_dir=tmp_path)


def test_too_few_training_images_for_the_validation_split_is_corrupted(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, count in (("train", 5000), ("t10k", 10)):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(idx_file(mnist_images(count, 0)))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_file(np.zeros(count)))
    with pytest.raises(DatasetMissing, match=r"\(5000 training and 10 test images\)"):
        load_dataset("mnist", data_dir=tmp_path)


def test_a_gzipped_download_not_yet_extracted_is_missing(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_file(mnist_images(2, 0))))
    with pytest.raises(DatasetMissing, match="is not in DATA_DIR"):
        load_dataset("mnist", data_dir=tmp_path)


# --- Downloading ----------------------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch):
    def urlopen(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("cifar10", "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"),
        ("mnist", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        ("fashion_mnist", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
    ],
)
def test_downloading_without_internet_says_what_failed(name, url, tmp_path, offline):
    with pytest.raises(DatasetDownloadFailed) as caught:
        download_dataset(name, tmp_path)
    message = str(caught.value)
    assert message.startswith(f"Could not download the {name} dataset from ")
    assert url in message
    assert "Temporary failure in name resolution" in message
    assert "\n" not in message


def test_downloading_a_generated_dataset_does_nothing(tmp_path, offline):
    assert download_dataset("shapes", tmp_path / "d") == (tmp_path / "d").resolve()
    assert not (tmp_path / "d").exists()


def test_downloading_fetches_with_torchvision_and_checks_the_result(tmp_path, monkeypatch):
    calls = []

    def fake_download(self):  # what torchvision's MNIST.download leaves behind
        calls.append((type(self).__name__, self.root))
        if not (Path(self.root) / "MNIST").exists():
            write_mnist(Path(self.root))

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fake_download)
    assert download_dataset("mnist", tmp_path) == tmp_path.resolve()
    assert calls == [("MNIST", str(tmp_path.resolve()))] * 2  # train and test
    assert load_dataset("mnist", data_dir=tmp_path).info.sizes == (100, 5000, MNIST_TEST)


def _fake_cifar10_download(monkeypatch, make_archive) -> list:
    """torchvision's download_url replaced by one that writes `make_archive(path)` where the
    archive would arrive; the calls it got."""
    import torchvision.datasets.utils

    calls = []

    def download_url(url, root, filename=None, md5=None):
        calls.append((url, root, md5))
        make_archive(Path(root) / url.rsplit("/", 1)[1])

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", download_url)
    return calls


def test_downloading_cifar10_unpacks_its_binary_archive_and_checks_it(tmp_path, monkeypatch):
    source = tmp_path / "source"
    write_cifar10(source)

    def archive(path):
        with tarfile.open(path, "w:gz") as tar:
            tar.add(source / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")

    calls = _fake_cifar10_download(monkeypatch, archive)
    folder = tmp_path / "data"
    assert download_dataset("cifar10", folder) == folder.resolve()
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    assert calls == [(url, str(folder.resolve()), "c32a1d4ab5d03f1284b67883e8d87530")]
    assert sorted(p.name for p in folder.iterdir()) == ["cifar-10-batches-bin"]  # archive gone
    assert load_dataset("cifar10", data_dir=folder).info.sizes == (100, 5000, CIFAR_TEST)
    assert download_dataset("cifar10", folder) == folder.resolve()
    assert len(calls) == 1  # already there: not downloaded again


def test_a_cifar10_archive_with_a_path_outside_its_folder_is_refused(tmp_path, monkeypatch):
    def archive(path):
        with tarfile.open(path, "w:gz") as tar:
            info = tarfile.TarInfo("../escaped.bin")
            info.size = 3
            tar.addfile(info, io.BytesIO(b"bad"))

    _fake_cifar10_download(monkeypatch, archive)
    folder = tmp_path / "data"
    with pytest.raises(DatasetDownloadFailed, match="is outside the destination"):
        download_dataset("cifar10", folder)
    assert not (tmp_path / "escaped.bin").exists()


# --- The management command -----------------------------------------------------------------------


def run_command(*args, **options) -> str:
    out = StringIO()
    call_command(Command(), *args, stdout=out, **options)
    return out.getvalue()


def test_the_command_reports_what_is_already_there(data_dir):
    output = run_command("--data-dir", str(data_dir))
    assert output.splitlines() == [
        f"cifar10: already in {data_dir} (100 training, 5000 validation, 200 test images).",
        f"mnist: already in {data_dir} (100 training, 5000 validation, 100 test images).",
        f"fashion_mnist: already in {data_dir} (100 training, 5000 validation, 100 test images).",
    ]


def test_the_command_skips_generated_datasets(tmp_path, offline):
    assert run_command("shapes", "digits", data_dir=str(tmp_path)).splitlines() == [
        "shapes: generated in memory, nothing to download.",
        "digits: generated in memory, nothing to download.",
    ]


def test_the_command_downloads_and_reports(tmp_path, monkeypatch):
    monkeypatch.setattr(
        torchvision.datasets.MNIST,
        "download",
        lambda self: self._check_exists() or write_mnist(Path(self.root)),
    )
    assert run_command("mnist", data_dir=str(tmp_path)).splitlines() == [
        f"mnist: downloading into {tmp_path.resolve()} ...",
        f"mnist: downloaded to {tmp_path.resolve()} "
        "(100 training, 5000 validation, 100 test images).",
    ]


def test_the_command_without_internet_fails_clearly(tmp_path, offline):
    with pytest.raises(CommandError) as caught:
        run_command("cifar10", data_dir=str(tmp_path))
    message = str(caught.value)
    assert message.startswith(
        "Could not download the cifar10 dataset from "
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz: "
    )
    assert "Temporary failure in name resolution" in message
    assert message.endswith(
        f"Check this machine's internet access (or copy the files into {tmp_path.resolve()}) "
        "and run the command again."
    )


def test_the_command_rejects_unknown_names(tmp_path):
    with pytest.raises(CommandError) as caught:
        run_command("cifar100", "imagenet", data_dir=str(tmp_path))
    assert str(caught.value) == (
        "Unknown datasets: cifar100, imagenet. Known datasets: digits, xor, moons, spirals, "
        "sequences, shapes, cifar10, mnist, fashion_mnist."
    )


def test_the_command_defaults_to_the_data_dir_setting(data_dir):
    with override_settings(DATA_DIR=data_dir):
        assert run_command("mnist") == (
            f"mnist: already in {data_dir} (100 training, 5000 validation, 100 test images).\n"
        )


def test_the_jobs_app_provides_the_command(tmp_path):
    get_commands.cache_clear()
    try:
        with override_settings(INSTALLED_APPS=settings.INSTALLED_APPS):
            assert get_commands()["download_datasets"] == "apps.jobs"
            out = StringIO()
            call_command("download_datasets", "xor", data_dir=str(tmp_path), stdout=out)
            assert out.getvalue() == "xor: generated in memory, nothing to download.\n"
    finally:
        get_commands.cache_clear()
