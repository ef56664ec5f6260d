"""Aula's trainer against the PyTorch CIFAR-10 tutorial's pipeline, on the same data and model.

Both train the tutorial's CNN (the `cifar-cnn` template) on the same CIFAR-shaped images for the
same samples, epochs and batch size, with the same augmentation (random crop with padding 4,
horizontal flip, normalise 0.5) and SGD (lr 0.001, momentum 0.9):

1. reference: torchvision transforms on PIL images, a DataLoader with 2 worker processes
   (the tutorial's pipeline, with the template's augmentation added to its transform);
2. Aula: `runtime.trainer.train` (data on the device as uint8, whole-batch augmentation).

Prints images per second for both and their ratio.
Run: `.venv/bin/python benchmarks/train_vs_seed.py` (`--help` for options;
`--dataset cifar10 --data-dir DIR` uses the real CIFAR-10 when present).
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.datasets import Split, load_dataset
from runtime.spec import build_model, parse_spec
from runtime.templates import TEMPLATES
from runtime.trainer import choose_device, train


class _PilImages(Dataset):
    """The tutorial's view of the data: one PIL image per item, transformed on access."""

    def __init__(self, images_hwc, labels, transform):
        self.images, self.labels, self.transform = images_hwc, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def reference_run(x, y, *, model, epochs, batch_size, device) -> float:
    """The tutorial's loop; returns seconds."""
    import torchvision.transforms as T

    transform = T.Compose(
        [
            T.RandomCrop(32, padding=4),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ]
    )
    images = x.permute(0, 2, 3, 1).contiguous().numpy()  # HWC uint8, as CIFAR-10 is stored
    loader = DataLoader(
        _PilImages(images, y.numpy(), transform),
        batch_size=batch_size,
        shuffle=True,
        num_workers=2,
    )
    model.to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    started = time.perf_counter()
    for _ in range(epochs):
        for inputs, labels in loader:
            inputs, labels = inputs.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = criterion(model(inputs), labels)
            loss.backward()
            optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def aula_run(x, y, *, spec, info, epochs, batch_size, device) -> float:
    """Aula's trainer on the template's spec; returns seconds."""
    model = build_model(
        spec,
        input_shape=info.input_shape,
        kind=info.kind,
        task=info.task,
        num_classes=info.num_classes,
        vocab_size=info.vocab_size,
    )
    training = spec.training.__class__(
        **{**spec.training.__dict__, "epochs": epochs, "batch_size": batch_size}
    )
    empty = Split(x[:0], y[:0])  # no validation pass: the reference has none either
    started = time.perf_counter()
    outcome = train(
        model, training=training, train=Split(x, y), val=empty, info=info, device=device
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    assert outcome.status == "completed", outcome
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="shapes", help="shapes (default) or cifar10")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each; the median counts")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    args = parser.parse_args()

    device = choose_device(args.device)
    data = load_dataset(args.dataset, data_dir=args.data_dir)
    x, y = data.train.x[: args.samples], data.train.y[: args.samples]
    template = TEMPLATES["cifar-cnn"]
    spec = parse_spec(template.spec)
    images = args.epochs * len(y)

    cpu = platform.processor() or platform.machine()
    threads = torch.get_num_threads()
    print(f"machine: {cpu}, {os.cpu_count()} CPUs, torch {torch.__version__}, {threads} threads")
    print(f"device: {device}")
    if device.type == "cuda":
        print(f"gpu: {torch.cuda.get_device_name()}")
    shape = "x".join(str(size) for size in x.shape[1:])
    print(
        f"data: {args.dataset} train split, {len(y)} images of {shape}, {args.epochs} epochs, "
        f"batch {args.batch_size}, {args.repeats} repeats (median)"
    )

    reference, aula = [], []
    for repeat in range(args.repeats):
        torch.manual_seed(repeat)
        # The tutorial's own Net class: the template's code form (trusted, ours).
        namespace: dict = {}
        exec(template.code, namespace)  # noqa: S102
        reference_model = namespace["build_model"](data.info.input_shape, data.info.num_classes)
        sizes = {"epochs": args.epochs, "batch_size": args.batch_size, "device": device}
        reference.append(reference_run(x, y, model=reference_model, **sizes))
        aula.append(aula_run(x, y, spec=spec, info=data.info, **sizes))
    reference_rate = images / statistics.median(reference)
    aula_rate = images / statistics.median(aula)
    print(f"reference (PIL transforms, DataLoader, 2 workers): {reference_rate:10,.0f} images/s")
    print(f"aula trainer (batched on {device.type}):{'':17}{aula_rate:10,.0f} images/s")
    print(f"ratio: {aula_rate / reference_rate:.2f}x")


if __name__ == "__main__":
    main()
