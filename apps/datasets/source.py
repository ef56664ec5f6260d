"""Ready versions as the runtime's datasets: `upload:<key>` is found by `dataset_info` and
`load_dataset` (runtime/datasets.py's registered sources) everywhere a built-in name is.

A name resolves only inside the scope of the tenant that owns the version (the scoped manager
filters by it): another tenant's key is unknown, as if it did not exist. The Arrow file is
copied once from the datasets storage into a local cache (checked against its sha256) and read
back once per process; the splits are drawn with the assignment's secret on each load.
"""

import hashlib
import os
import threading
from pathlib import Path

from django.conf import settings
from django_scopes.exceptions import ScopeError

from apps.datasets.models import SOURCE_PREFIX, DatasetVersion, VersionState
from runtime.datasets import DatasetInfo, DatasetSource, DatasetSplits, UnknownDataset
from runtime.datasets import register_source as source_register
from runtime.ingest.stored import (
    Stored,
    info_from_fields,
    stored_info,
    stored_read,
    stored_splits,
    stored_tokenizer,
)
from runtime.text import TextTokenizer

_stored: dict[str, Stored] = {}  # by sha256, the last KEPT_IN_MEMORY read
KEPT_IN_MEMORY = 8
_lock = threading.Lock()


class StoredCorrupt(Exception):
    """The stored Arrow file of a version is missing or not its bytes."""


def version_of(name: str) -> DatasetVersion:
    """The ready version `name` names, in the current tenant's scope; UnknownDataset else."""
    key = name.split(":", 1)[1] if ":" in name else ""
    try:
        version = (
            DatasetVersion.objects.select_related("dataset")
            .filter(key=key, state=VersionState.READY)
            .first()
            if len(key) == 32
            else None
        )
    except (ScopeError, ValueError):  # no tenant scope: no tenant's data
        version = None
    if version is None:
        raise UnknownDataset(name)
    return version


def title_of(version: DatasetVersion) -> str:
    return f"{version.dataset.title} (v{version.number})"


def _local_copy(version: DatasetVersion) -> Path:
    from apps.datasets.services import datasets_storage

    folder = Path(settings.DATASET_CACHE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{version.data_sha256}.arrow"
    if path.exists():
        return path
    partial = folder / f".{version.data_sha256}.{os.getpid()}.{threading.get_ident()}"
    digest = hashlib.sha256()
    try:
        with datasets_storage().open(version.data_name, "rb") as source, open(partial, "wb") as out:
            while block := source.read(1 << 20):
                digest.update(block)
                out.write(block)
    except FileNotFoundError as exc:
        partial.unlink(missing_ok=True)
        raise StoredCorrupt(f"The file of dataset version {version.id} is missing.") from exc
    if digest.hexdigest() != version.data_sha256:
        partial.unlink(missing_ok=True)
        raise StoredCorrupt(f"The file of dataset version {version.id} is not its bytes.")
    os.replace(partial, path)
    return path


def version_file(version: DatasetVersion) -> Path:
    """The local copy of a ready version's Arrow file (copied once, checked against its
    sha256; StoredCorrupt when it is missing or not its bytes), for readers of a few rows."""
    return _local_copy(version)


def stored_of(version: DatasetVersion) -> Stored:
    with _lock:
        stored = _stored.get(version.data_sha256)
        if stored is None:
            stored = stored_read(_local_copy(version))
            while len(_stored) >= KEPT_IN_MEMORY:
                _stored.pop(next(iter(_stored)))
            _stored[version.data_sha256] = stored
        return stored


def info(name: str) -> DatasetInfo:
    version = version_of(name)
    fields = version.summary["info"]
    return info_from_fields({**fields, "name": name, "title": title_of(version)})


def tokenizer_kind(version: DatasetVersion) -> str:
    """The kind of tokeniser a text version's options chose ("word" unless they say)."""
    return version.options.get("tokenizer") or "word"


# The tokeniser of each (version, secret) last split here, as its JSON, so that the runner that
# has just loaded a text dataset stores the very tokeniser its model was trained with.
_tokenizers: dict[tuple[str, str], str] = {}


def _secret_key(version: DatasetVersion, secret: bytes) -> tuple[str, str]:
    return version.data_sha256, hashlib.sha256(secret).hexdigest()


def load(name: str, secret: bytes | None) -> DatasetSplits:
    if secret is None:
        raise ValueError(f"{name} is split with an assignment's secret; none was given")
    version = version_of(name)
    stored = stored_of(version)
    split = stored_splits(
        stored,
        name=name,
        title=title_of(version),
        secret=secret,
        tokenizer=tokenizer_kind(version),
    )
    if split.tokenizer is not None:
        with _lock:
            _tokenizers.pop(_secret_key(version, secret), None)
            _tokenizers[_secret_key(version, secret)] = split.tokenizer.to_json()
            while len(_tokenizers) > KEPT_IN_MEMORY:
                _tokenizers.pop(next(iter(_tokenizers)))
    return split.splits


def text_tokenizer(name: str, secret: bytes) -> TextTokenizer | None:
    """The tokeniser the text dataset `name` is encoded with under `secret` (trained on that
    secret's train part), None for a dataset that is not an uploaded text. The one `load` just
    used when this process loaded it, else trained again the same way (the same tokeniser)."""
    if not name.startswith(f"{SOURCE_PREFIX}:"):
        return None
    version = version_of(name)
    with _lock:
        kept = _tokenizers.get(_secret_key(version, secret))
    if kept is not None:
        return TextTokenizer.from_json(kept)
    stored = stored_of(version)
    if stored.kind != "text":
        return None
    return stored_tokenizer(stored, secret=secret, tokenizer=tokenizer_kind(version))


def summary_info(version: DatasetVersion, path: Path) -> dict:
    """The runtime's description of the version just ingested at `path`, as JSON."""
    info = stored_info(stored_read(path), name=version.source_name, title=title_of(version))
    fields = vars(info).copy()  # a text dataset's pad_id too
    for name in ("input_shape", "class_names", "sizes"):
        fields[name] = list(fields[name])
    return fields


def catalogue() -> list[tuple[str, str]]:
    try:
        versions = list(
            DatasetVersion.objects.filter(state=VersionState.READY)
            .select_related("dataset")
            .order_by("dataset__title", "-number")
        )
    except ScopeError:
        return []
    return [(version.source_name, title_of(version)) for version in versions]


def connect() -> None:
    source_register(DatasetSource(prefix=SOURCE_PREFIX, info=info, load=load, catalogue=catalogue))
