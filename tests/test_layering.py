"""The layering contracts (pyproject.toml, [tool.importlinter]) hold, and each of them breaks when
a forbidden import is added: a copy of the tree gets one offending module per contract, and
lint-imports must fail on exactly that contract, naming the offending import."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

RUNTIME = "The runtime is plain PyTorch"
LAYERS = "The apps are layered"
TASKS = "Worker glue (each app's tasks.py) is imported by nothing"


def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
    )


def contract_lines(output: str) -> dict[str, str]:
    """The contract summary lines: name prefix -> KEPT or BROKEN."""
    found = {}
    text = " ".join(output.split())  # long names wrap over lines
    for name in (RUNTIME, LAYERS, TASKS):
        at = text.index(name)
        kept, broken = text.find(" KEPT", at), text.find(" BROKEN", at)
        candidates = [i for i in (kept, broken) if i != -1]
        found[name] = "KEPT" if min(candidates) == kept else "BROKEN"
    return found


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """The packages lint-imports reads, and its configuration, copied."""
    root = tmp_path_factory.mktemp("layering")
    for package in ("apps", "config", "runtime"):
        shutil.copytree(
            ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_tree_keeps_every_contract():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert contract_lines(result.stdout) == {RUNTIME: "KEPT", LAYERS: "KEPT", TASKS: "KEPT"}


@pytest.mark.parametrize(
    ("path", "source", "broken", "named"),
    [
        (
            "runtime/offending.py",
            "import django.conf\n",
            RUNTIME,
            "runtime.offending -> django (l.1)",
        ),
        (
            "apps/courses/offending.py",
            "from apps.jobs import models\n",
            LAYERS,
            "apps.courses.offending -> apps.jobs.models (l.1)",
        ),
        (
            "apps/jobs/offending.py",
            "from apps.jobs import tasks\n",
            TASKS,
            "apps.jobs.offending -> apps.jobs.tasks (l.1)",
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tree, path, source, broken, named):
    offending = tree / path
    offending.write_text(source)
    try:
        result = lint(tree)
    finally:
        offending.unlink()
    assert result.returncode == 1, result.stdout
    expected = {RUNTIME: "KEPT", LAYERS: "KEPT", TASKS: "KEPT"} | {broken: "BROKEN"}
    assert contract_lines(result.stdout) == expected
    assert named in " ".join(result.stdout.split())
