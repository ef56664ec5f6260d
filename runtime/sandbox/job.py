"""The job of one run: a private directory holding what the sandbox may read (the train and
validation splits, the test inputs in an order drawn for the run, the code, job.json), never a
test label."""

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from runtime.sandbox.checks import SUBMISSION_FILENAME
from runtime.sandbox.command import ARTIFACT_FILES, RUNTIME_DIR, RUNTIME_FILES
from runtime.sandbox.limits import SandboxLimits


@contextlib.contextmanager
def job_directory(ids, isolation: str) -> Iterator[Path]:
    """A private directory: in/ (what the sandbox may read), out/ (the empty files the harness
    exports the model into, the sandbox's to write) and, limits-only, src/ and tmp/."""
    root = Path(tempfile.mkdtemp(prefix="aula-sandbox-"))  # 0700, ours
    try:
        (root / "in").mkdir(mode=0o755)
        os.chmod(root / "in", 0o755)  # noqa: S103 (inside a 0700 directory)
        out = root / "out"
        out.mkdir(mode=0o755)  # ours: the sandbox may write into its files, not add or swap one
        os.chmod(out, 0o755)  # noqa: S103 (inside a 0700 directory)
        for name in ARTIFACT_FILES:
            path = out / name
            path.touch(mode=0o600)
            if ids is not None:
                os.chown(path, *ids)
        if isolation == "limits_only":
            _link_runtime(root / "src")
            scratch = root / "tmp"
            scratch.mkdir(mode=0o700)
            if ids is not None:
                os.chown(scratch, *ids)
                os.chmod(root, 0o711)  # noqa: S103 (traversable, not listable)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _link_runtime(source: Path) -> None:
    """source/runtime: the sandbox's allow-list of runtime files (command.RUNTIME_FILES), as
    links, so that the code imports the same modules with or without bubblewrap."""
    for name in RUNTIME_FILES:
        link = source / "runtime" / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(RUNTIME_DIR / name)
    for directory in (source, *(p for p in source.rglob("*") if p.is_dir() and not p.is_symlink())):
        os.chmod(directory, 0o755)  # noqa: S103 (inside a 0700 directory)


def write_inputs(
    job: Path, *, code, data, training, budget, limits: SandboxLimits, artifacts_dir: str
):
    """Only inputs: the test split's labels are never written, and its inputs go in an order
    drawn for this run (returned), so that labels known by position (a public test set pasted
    into the code) are worthless. `artifacts_dir`: where the sandbox sees out/."""
    import torch

    count = int(data.test.x.shape[0])
    order = torch.randperm(count, generator=torch.Generator().manual_seed(secrets.randbits(63)))

    def alone(tensor):  # a copy with its own storage: a view would save its whole base
        return tensor.detach().to("cpu").clone().contiguous()

    inputs = job / "in"
    tensors = {
        "train_x": alone(data.train.x),
        "train_y": alone(data.train.y),
        "val_x": alone(data.val.x),
        "val_y": alone(data.val.y),
        "test_x": alone(data.test.x.detach().to("cpu")[order]),
    }
    torch.save(tensors, inputs / "data.pt")
    document = {
        "threads": limits.thread_count,
        "memory_bytes": limits.memory_bytes,
        "info": _describe(data.info),
        "training": _describe(training),
        "budget": _describe(budget),
        "artifacts": {name: f"{artifacts_dir}/{name}" for name in ARTIFACT_FILES},
    }
    (inputs / "job.json").write_text(json.dumps(document), encoding="utf-8")
    (inputs / SUBMISSION_FILENAME).write_text(code, encoding="utf-8")
    for path in inputs.iterdir():
        os.chmod(path, 0o644)
    return order


def _describe(value):
    if value is None:
        return None
    kind = type(value)
    fields = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else vars(value)
    return {"type": f"{kind.__module__}.{kind.__qualname__}", "fields": _plain(fields)}


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value):
        return _plain(dataclasses.asdict(value))
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
