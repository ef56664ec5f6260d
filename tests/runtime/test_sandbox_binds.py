"""What of the runtime is bound into the sandbox, read from the real bwrap argument list: only an
allow-list of files, none of which can generate or read a dataset's test labels, checked
statically (what the files import, transitively) and in a real sandbox (what the code sees)."""

import ast
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from runtime.datasets import DatasetInfo, DatasetSplits, Split
from runtime.sandbox import SandboxLimits, bubblewrap_available, command, run_code_submission, uids
from runtime.spec import AugmentSpec, OptimizerSpec, ScheduleSpec, TrainingSpec
from runtime.trainer import ComputeBudget

RUNTIME_DIR = command.RUNTIME_DIR
IN_SANDBOX = "/aula/runtime/"
# bwrap options that bind a source at a destination.
BIND_OPTIONS = {
    "--bind",
    "--bind-try",
    "--ro-bind",
    "--ro-bind-try",
    "--dev-bind",
    "--dev-bind-try",
}

# Modules that generate or read datasets (torchvision imports its datasets on import).
FORBIDDEN_MODULES = ("runtime.datasets", "sklearn.datasets", "torchvision")
# Modules whose file loaders read data files, and those loaders.
LOADER_MODULES = {
    "numpy": {"load", "loadtxt", "genfromtxt", "fromfile", "memmap"},
    "torch": {"load"},
    "pickle": {"load", "loads"},
}
# The one load allowed: the harness reads the job directory the parent wrote (the training and
# validation splits and the test inputs, never a test label; see job.write_inputs).
ALLOWED_LOADS = {("runtime.sandbox.child", "_load", "torch.load")}
# What the sandbox imports, besides the bootstrap's: its harness, privileges.py (loaded by its
# path as root) and the modules child._resolve imports to rebuild the parent's dataclasses.
ENTRY_MODULES = (
    "runtime.sandbox.child",
    "runtime.sandbox.privileges",
    "runtime.trainer",
    "runtime.spec.document",
)


def binds(argv: list[str]) -> list[tuple[str, str]]:
    """(source, destination) of every bind in a bwrap command line, up to the command."""
    end = argv.index("--") if "--" in argv else len(argv)
    return [(argv[i + 1], argv[i + 2]) for i in range(end) if argv[i] in BIND_OPTIONS]


def runtime_binds(argv: list[str]) -> dict[str, str]:
    """The runtime files bound into the sandbox: their path relative to runtime/ -> the source."""
    return {dest[len(IN_SANDBOX) :]: src for src, dest in binds(argv) if dest.startswith("/aula/")}


@pytest.fixture(scope="module")
def argv(tmp_path_factory) -> list[str]:
    """The bwrap command line a run gets, as the runner builds it."""
    job = tmp_path_factory.mktemp("job")
    (job / "in").mkdir()
    with uids.sandbox_ids() as ids:
        launch = command.bubblewrap_launch("bwrap", job, ids, SandboxLimits())
    for fd in (*launch.data_fds, launch.result_r, launch.result_w):
        os.close(fd)
    return launch.argv


# --- the static check ---------------------------------------------------------------------------


def module_of(relative: str) -> str:
    """runtime/sandbox/child.py -> runtime.sandbox.child; a package's __init__.py -> the package."""
    parts = Path("runtime", relative).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def read_runtime(relative: str) -> str | None:
    """The source of a runtime file (relative to runtime/), None if there is none."""
    path = RUNTIME_DIR / relative
    return path.read_text(encoding="utf-8") if path.is_file() else None


def file_of(module: str, read: Callable[[str], str | None] = read_runtime) -> str | None:
    """The runtime file (relative to runtime/) of a module of the runtime, if it is one."""
    parts = module.split(".")
    if parts[0] != "runtime":
        return None
    base = Path(*parts[1:])
    candidates = (
        [base / "__init__.py"]
        if len(parts) == 1
        else [base.with_suffix(".py"), base / "__init__.py"]
    )
    return next((str(c) for c in candidates if read(str(c)) is not None), None)


def imports_of(relative: str, tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, nested ones included; `from a import b` gives
    both a and a.b (b may be a module)."""
    module = module_of(relative)
    package = module if relative.endswith("__init__.py") else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def loads_of(tree: ast.AST) -> list[tuple[int, str, str]]:
    """(line, enclosing function, "module.loader") of every call of a data-file loader."""
    aliases = {}  # local name -> loader module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in LOADER_MODULES:
                    aliases[alias.asname or alias.name] = alias.name
    found = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id in aliases:
                name = aliases[owner.id]
                if node.func.attr in LOADER_MODULES[name]:
                    found.append((node.lineno, function, f"{name}.{node.func.attr}"))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, "")
    return found


def mentions_data_dir(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, ast.alias):
            names = [node.asname or node.name]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [node.value]
        if any("DATA_DIR" in name for name in names):
            lines.append(getattr(node, "lineno", 0))
    return lines


def dataset_access(start: list[str], read: Callable[[str], str | None] = read_runtime):
    """Walks the runtime files `start` (relative to runtime/) and every runtime file they import,
    directly or transitively, bound or not. Returns (problems, loads, reached): what could
    generate or read a dataset (a forbidden import, a loader call not in ALLOWED_LOADS, DATA_DIR),
    every loader call as (module, function, loader), and the runtime files reached."""
    problems, loads, reached = [], set(), set()
    queue = list(start)
    while queue:
        relative = queue.pop()
        if relative in reached:
            continue
        reached.add(relative)
        module = module_of(relative)
        tree = ast.parse(read(relative), filename=relative)
        parts = module.split(".")  # importing a module runs its packages' __init__.py first
        queue += [file_of(".".join(parts[:depth]), read) for depth in range(1, len(parts))]
        for line, imported in imports_of(relative, tree):
            if any(imported == f or imported.startswith(f + ".") for f in FORBIDDEN_MODULES):
                problems.append(f"runtime/{relative}:{line} imports {imported}")
            if imported.rpartition(".")[2] in LOADER_MODULES.get(imported.rpartition(".")[0], ()):
                problems.append(f"runtime/{relative}:{line} imports {imported}")
            parts = imported.split(".")
            for depth in range(1, len(parts) + 1):  # a.b.c runs a/__init__.py, a/b/__init__.py
                found = file_of(".".join(parts[:depth]), read)
                if found is not None and found not in reached:
                    queue.append(found)
        for line, function, loader in loads_of(tree):
            loads.add((module, function, loader))
            if (module, function, loader) not in ALLOWED_LOADS:
                problems.append(f"runtime/{relative}:{line} calls {loader} in {function}()")
        problems += [
            f"runtime/{relative}:{line} names DATA_DIR" for line in mentions_data_dir(tree)
        ]
    return problems, loads, reached


def test_only_files_of_the_allow_list_are_bound(argv):
    bound = runtime_binds(argv)
    assert "sandbox/child.py" in bound and "trainer.py" in bound
    assert "datasets.py" not in bound
    for relative, source in bound.items():
        assert source == str(RUNTIME_DIR / relative)
        assert Path(source).is_file() and not Path(source).is_symlink(), source
    # No directory holding the runtime is bound wholesale: only the Python installation, /usr,
    # the job's inputs and these files come from the host.
    for source, _ in binds(argv):
        resolved = Path(os.path.realpath(source))
        assert resolved != RUNTIME_DIR and resolved not in RUNTIME_DIR.parents, source
        if RUNTIME_DIR in resolved.parents:
            assert str(resolved.relative_to(RUNTIME_DIR)) in bound, source
    made = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--dir"]
    assert {"/aula", "/aula/runtime", "/aula/runtime/sandbox", "/aula/runtime/spec"} <= set(made)


def test_no_bound_file_can_generate_or_read_a_dataset(argv):
    bound = sorted(runtime_binds(argv))
    problems, loads, reached = dataset_access(bound)
    assert problems == []
    assert loads == ALLOWED_LOADS  # the job's own data.pt, read by the harness
    # What they import is bound too (the child finds its modules), and nothing more is bound
    # than what the sandbox imports.
    assert reached == set(bound)
    _, _, needed = dataset_access([file_of(module) for module in ENTRY_MODULES])
    assert needed == set(bound)


def test_the_static_check_flags_dataset_access():
    """The check can fail: samples that reach datasets, directly, transitively or by loading."""
    samples = {  # files that are not in runtime/: the walk reads them from here
        "sandbox/sample.py": "from runtime import errors\nfrom .. import datasets\n",
        "sandbox/indirect.py": "import runtime.sandbox.helper\n",
        "sandbox/helper.py": "def digits():\n    from sklearn.datasets import load_digits\n",
        "sandbox/loads.py": "import numpy as np\n\ndef read(p):\n    return np.load(p)\n",
        "sandbox/torch_loads.py": "import torch as t\n\ndef _load(p):\n    return t.load(p)\n",
        "sandbox/data_dir.py": "import os\n\nWHERE = os.environ['DATA_DIR']\n",
        "sandbox/vision.py": "from torchvision import transforms\n",
    }

    start = sorted(set(samples) - {"sandbox/helper.py"})  # reached through indirect.py only
    problems, loads, reached = dataset_access(
        start, lambda relative: samples.get(relative) or read_runtime(relative)
    )
    ours = {p for p in problems if not p.startswith("runtime/datasets.py:")}
    assert ours == {
        "runtime/sandbox/sample.py:2 imports runtime.datasets",
        "runtime/sandbox/helper.py:2 imports sklearn.datasets",
        "runtime/sandbox/helper.py:2 imports sklearn.datasets.load_digits",
        "runtime/sandbox/loads.py:4 calls numpy.load in read()",
        "runtime/sandbox/torch_loads.py:4 calls torch.load in _load()",
        "runtime/sandbox/data_dir.py:3 names DATA_DIR",
        "runtime/sandbox/vision.py:1 imports torchvision",
        "runtime/sandbox/vision.py:1 imports torchvision.transforms",
    }
    assert "sandbox/helper.py" in reached
    assert "datasets.py" in reached  # followed into: it loads its data files, and names DATA_DIR
    assert any(p.startswith("runtime/datasets.py:") and "DATA_DIR" in p for p in problems)
    # The one allowed load is the harness's own: a _load elsewhere is flagged (above).
    assert ("runtime.sandbox.torch_loads", "_load", "torch.load") in loads


# --- in a real sandbox --------------------------------------------------------------------------

PROBE = r"""
import importlib.util, json, os, sys


def attempt(action):
    try:
        action()
        return "ok"
    except Exception as error:
        return type(error).__name__


def build_model(input_shape, num_classes):
    import runtime.sandbox, runtime.spec, runtime.trainer  # what the harness has imported

    seen = {
        "modules": sorted(m for m in sys.modules
                          if m.split(".")[0] in ("sklearn", "torchvision")
                          or m.startswith("runtime.datasets")),
        "runtime.datasets": attempt(lambda: importlib.import_module("runtime.datasets")),
        "runtime.sandbox.runner": attempt(
            lambda: importlib.import_module("runtime.sandbox.runner")),
        "run_code_submission": attempt(lambda: runtime.sandbox.run_code_submission),
        "digits": attempt(lambda: __import__("sklearn.datasets").datasets.load_digits()),
        "files": sorted(os.path.join(top, name)
                        for top, _, names in os.walk("/aula") for name in names),
    }
    sklearn = importlib.util.find_spec("sklearn").submodule_search_locations[0]
    data = os.path.join(sklearn, "datasets", "data")
    seen["sklearn_data"] = sorted(os.listdir(data)) if os.path.isdir(data) else "missing"
    seen["digits_file"] = os.path.exists(os.path.join(data, "digits.csv.gz"))
    print("BINDS " + json.dumps(seen))
    raise RuntimeError("probe finished")
"""


def tiny_data() -> DatasetSplits:
    x = torch.randn(24, 4, generator=torch.Generator().manual_seed(0))
    y = torch.arange(24) % 2
    info = DatasetInfo(
        name="tiny",
        title="Tiny",
        kind="vector",
        task="multiclass",
        input_shape=(4,),
        num_classes=2,
        class_names=("0", "1"),
        vocab_size=None,
        sizes=(8, 8, 8),
        requires_download=False,
    )
    return DatasetSplits(info, Split(x[:8], y[:8]), Split(x[8:16], y[8:16]), Split(x[16:], y[16:]))


@pytest.mark.skipif(not bubblewrap_available(), reason="bubblewrap is missing")
def test_in_the_sandbox_no_dataset_can_be_regenerated_or_read(argv, monkeypatch):
    launched = []
    real = command.bubblewrap_launch

    def recording(*args, **kwargs):
        launch = real(*args, **kwargs)
        launched.append(launch.argv)
        return launch

    monkeypatch.setattr(command, "bubblewrap_launch", recording)
    training = TrainingSpec(
        optimizer=OptimizerSpec(type="adam", lr=0.01),
        schedule=ScheduleSpec(),
        loss=None,
        epochs=1,
        batch_size=8,
        augment=AugmentSpec(),
    )
    result = run_code_submission(
        code=PROBE,
        data=tiny_data(),
        training=training,
        budget=ComputeBudget(max_seconds=30),
        limits=SandboxLimits(wall_seconds=60),
    )
    assert (result.status, result.kind, result.isolation) == ("failed", "exception", "bubblewrap")
    line = next(line for line in result.output.splitlines() if line.startswith("BINDS "))
    seen = json.loads(line[len("BINDS ") :])
    (run_argv,) = launched
    bound = runtime_binds(run_argv)
    assert bound == runtime_binds(argv)
    assert seen["files"] == sorted(IN_SANDBOX + relative for relative in bound)
    assert seen["runtime.datasets"] == "ModuleNotFoundError"
    assert seen["runtime.sandbox.runner"] == "ModuleNotFoundError"
    assert seen["run_code_submission"] == "ModuleNotFoundError"  # the parent's side is not there
    assert seen["modules"] == []  # nothing the harness imported loads a dataset module
    assert seen["sklearn_data"] in ([], "missing")  # scikit-learn's bundled datasets are hidden
    assert seen["digits_file"] is False
    assert seen["digits"] in ("FileNotFoundError", "ModuleNotFoundError", "OSError")
