"""Bayesian Knowledge Tracing: Aula's EM (`apps.learning.bkt.fit`) against pyBKT 1.4.3.

Data drawn from known parameters with `apps.learning.bkt.simulate` (seeded): every learner on
every skill, the same number of opportunities each (default 5,000 learners x 20 skills x 50
opportunities); each skill's true prior in U(0.1, 0.5), learn U(0.05, 0.3), slip U(0.05, 0.2),
guess U(0.1, 0.3). A random 20% of the learners are held out. Both sides fit the other 80%:

1. Aula: `fit` with its defaults (start at prior 0.3, learn 0.1, slip 0.1, guess 0.2, for every
   skill; EM over every sequence of every skill at once until the mean log-likelihood per
   observation improves by less than 1e-7), the median of 3 timed fits after an untimed one;
   and again with a tolerance of about 1 nat per skill, about where pyBKT stops (below);
2. pyBKT: `Model(seed=..., num_fits=1, parallel=True).fit(data=df)` (a random start per skill,
   EM per skill, at most 100 iterations), and with its default num_fits=5 (five random starts
   per skill, the best kept); its C++ E step with OpenMP when it built. pyBKT stops a skill's
   EM when the total log-likelihood changes by less than 1e-3, but its E step hands that back
   as an integer (PyLong_FromLong), so in effect when the integer part stops changing: about
   1 nat per skill. It runs in its own environment, var/bench-pybkt/ (pyBKT 1.4.3 imports only
   with scikit-learn below 1.6), created when missing, as a subprocess of this script: the data
   goes over in an .npz file (rows user_id, skill_name, correct, order_id), the fitted
   parameters, predictions and times come back as JSON; an untimed fit on 50 learners first.

Printed for each: the fit's wall time (pyBKT's whole `fit`, and the part spent in its EM loop,
without its pandas preprocessing), EM iterations, the log-likelihood of the training data under
the fitted parameters (both by Aula's forward pass, `log_likelihood`, so comparable), and on
the held-out learners the AUC (rank-based, tied scores at their mean rank) and RMSE of
one-step-ahead predictions (Aula's by `predict`; pyBKT's by `Model.predict`, cross-checked
against `predict` on pyBKT's parameters); the same for the true parameters; and the speed-ups.

Run: `.venv/bin/python benchmarks/bkt_vs_pybkt.py` (`--help` for options; `--skip-pybkt` for
Aula alone, `--learners N` for another size, `--threads N` for torch's threads and pyBKT's
OMP_NUM_THREADS).
"""

import argparse
import inspect
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model

ROOT = Path(__file__).resolve().parent.parent
PYBKT_ENV = ROOT / "var" / "bench-pybkt"
PYBKT_VERSION = "1.4.3"
# pyBKT's setup.py compiles its C++ E step against the installed numpy (so: numpy first, no
# build isolation) and silently falls back to pure Python when that fails.
PYBKT_SETUP = [
    [
        "-m",
        "pip",
        "install",
        "--quiet",
        "numpy",
        "pandas",
        "scikit-learn<1.6",
        "requests",
        "setuptools",
        "wheel",
    ],
    [
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-build-isolation",
        "--no-binary",
        "pyBKT",
        f"pyBKT=={PYBKT_VERSION}",
    ],
]


# ---- the pyBKT side (runs in var/bench-pybkt's Python: numpy, pandas, pyBKT; no torch) ----


def pybkt_worker(data_path: str, out_path: str, num_fits: int, seed: int) -> None:
    import numpy as np
    import pandas as pd
    import pyBKT
    from pyBKT.fit import E_step, EM_fit
    from pyBKT.models import Model

    data = np.load(data_path)
    names = [str(s) for s in data["skill_names"]]

    def frame(prefix: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "user_id": data[f"{prefix}_user"],
                "skill_name": np.asarray(names, dtype=object)[data[f"{prefix}_skill"]],
                "correct": data[f"{prefix}_correct"],
                "order_id": data[f"{prefix}_order"],
            }
        )

    train, test = frame("train"), frame("test")
    # Count EM iterations and time the EM loop, per call (one per skill and random start).
    calls: list[tuple[int, float]] = []
    em_fit = EM_fit.EM_fit

    def counted(*args, **kwargs):
        started = time.perf_counter()
        model, log_likelihoods = em_fit(*args, **kwargs)
        calls.append((len(log_likelihoods), time.perf_counter() - started))
        return model, log_likelihoods

    # Warm-up on the first 50 learners (first calls: OpenMP, pandas); not timed or counted.
    Model(seed=seed, num_fits=1, parallel=True).fit(data=train[train["user_id"] < 50])
    EM_fit.EM_fit = counted
    model = Model(seed=seed, num_fits=num_fits, parallel=True)
    started = time.perf_counter()
    model.fit(data=train)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    predicted = model.predict(data=test).sort_index()
    predict_s = time.perf_counter() - started
    params = {
        skill: {
            "prior": float(fitted["prior"]),
            "learn": float(fitted["learns"][0]),
            "forget": float(fitted["forgets"][0]),
            "guess": float(fitted["guesses"][0]),
            "slip": float(fitted["slips"][0]),
        }
        for skill, fitted in model.fit_model.items()
    }
    result = {
        "version": getattr(pyBKT, "__version__", PYBKT_VERSION),
        "build": "C++" if E_step.__file__.endswith((".so", ".pyd")) else "pure Python",
        "e_step": E_step.__file__,
        "num_fits": num_fits,
        "fit_s": fit_s,
        "em_s": sum(s for _, s in calls),
        "em_calls": len(calls),
        "iterations": [n for n, _ in calls],
        "predict_s": predict_s,
        "params": params,
        "predictions": predicted["correct_predictions"].to_numpy().tolist(),
        "omp_threads": os.environ.get("OMP_NUM_THREADS", "(default)"),
    }
    Path(out_path).write_text(json.dumps(result))


def pybkt_python(create: bool) -> Path | None:
    python = PYBKT_ENV / "bin" / "python"
    if python.exists() or not create:
        return python if python.exists() else None
    base = shutil.which("python3.11") or sys.executable
    commands = [[base, "-m", "venv", str(PYBKT_ENV)]]
    commands += [[str(python), *step] for step in PYBKT_SETUP]
    print(f"creating {PYBKT_ENV.relative_to(ROOT)} for pyBKT {PYBKT_VERSION}:", flush=True)
    for command in commands:
        print("  " + " ".join(command), flush=True)
        subprocess.run(command, check=True)  # noqa: S603
    return python


def pybkt_setup_commands() -> str:
    env = PYBKT_ENV.relative_to(ROOT)
    lines = [f"python3.11 -m venv {env}"]
    for step in PYBKT_SETUP:
        lines.append(
            f"{env}/bin/python " + " ".join(f'"{a}"' if "<" in a or "=" in a else a for a in step)
        )
    return "\n".join(lines)


# ---- the Aula side ----


def auc(y, p) -> float:
    """Area under the ROC curve: the Mann-Whitney statistic, tied scores given their mean rank."""
    import numpy as np

    y = np.asarray(y, dtype=bool)
    p = np.asarray(p, dtype=np.float64)
    order = np.argsort(p, kind="mergesort")
    ordered = p[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(p)]
    mean_rank = (starts + 1 + ends) / 2  # ranks from 1; a tie's mean
    ranks = np.empty(len(p))
    ranks[order] = mean_rank[np.cumsum(first) - 1]
    positives = int(y.sum())
    negatives = len(y) - positives
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def rmse(y, p) -> float:
    import numpy as np

    return float(np.sqrt(np.mean((np.asarray(p, dtype=np.float64) - np.asarray(y)) ** 2)))


def truth_params(n_skills: int, generator):
    import torch

    from apps.learning.bkt import BKTParams

    def between(low, high):
        return low + (high - low) * torch.rand(n_skills, generator=generator, dtype=torch.float64)

    return BKTParams(
        prior=between(0.1, 0.5),
        learn=between(0.05, 0.3),
        slip=between(0.05, 0.2),
        guess=between(0.1, 0.3),
    )


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--learners", type=int, default=5_000)
    parser.add_argument("--skills", type=int, default=20)
    parser.add_argument("--opportunities", type=int, default=50)
    parser.add_argument("--holdout", type=float, default=0.2, help="share of learners held out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="Aula fits timed (median)")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads; OMP_NUM_THREADS for pyBKT (0: defaults)",
    )
    parser.add_argument("--skip-pybkt", action="store_true", help="Aula alone")
    parser.add_argument(
        "--no-pybkt-defaults",
        action="store_true",
        help="pyBKT with num_fits=1 only, not also with its default 5",
    )
    parser.add_argument(
        "--no-create",
        action="store_true",
        help=f"no creating {PYBKT_ENV.relative_to(ROOT)} when missing",
    )
    parser.add_argument(
        "--worker", nargs=4, metavar=("DATA", "OUT", "NUM_FITS", "SEED"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        data_path, out_path, num_fits, seed = args.worker
        pybkt_worker(data_path, out_path, int(num_fits), int(seed))
        return

    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch

    from apps.learning.bkt import BKTParams, fit, log_likelihood, predict, simulate

    default_tolerance = inspect.signature(fit).parameters["tolerance"].default

    if args.threads:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(args.seed)
    k, t_len = args.skills, args.opportunities
    truth = truth_params(k, generator)
    correct, mask, skill = simulate(
        truth, learners=args.learners, opportunities=t_len, generator=generator
    )
    # simulate's sequences are skill-major: sequence n is learner n % learners on skill n // it.
    learner = torch.arange(len(skill)) % args.learners
    held_out = torch.zeros(args.learners, dtype=torch.bool)
    held = round(args.learners * args.holdout)
    held_out[torch.randperm(args.learners, generator=generator)[:held]] = True
    test_rows = held_out[learner]
    train = (correct[~test_rows], mask[~test_rows], skill[~test_rows])
    test = (correct[test_rows], mask[test_rows], skill[test_rows])
    train_obs, test_obs = int(train[1].sum()), int(test[1].sum())

    print(
        f"{args.learners:,} learners x {k} skills x {t_len} opportunities (seed {args.seed}): "
        f"{args.learners - held:,} learners fitted ({train_obs:,} observations), "
        f"{held:,} held out ({test_obs:,} observations)"
    )
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads); "
        f"load average {_load()}"
    )

    def evaluate(params: BKTParams) -> dict:
        p = predict(params, *test)
        y = test[0][test[1]].numpy()
        scores = p[test[1]].numpy()
        return {
            "ll": log_likelihood(params, *train),
            "auc": auc(y, scores),
            "rmse": rmse(y, scores),
            "scores": scores,
        }

    # Warm-up (first calls: thread pool, allocator); not timed.
    fit(*train, k, max_iterations=1)

    def timed_fit(tolerance: float) -> tuple[float, list[float], object]:
        times, result = [], None
        for _ in range(max(1, args.repeats)):
            started = time.perf_counter()
            result = fit(*train, k, tolerance=tolerance)
            times.append(time.perf_counter() - started)
        return statistics.median(times), times, result

    rows = []
    # fit's own default; and about pyBKT's stopping rule: pyBKT hands its E step's total
    # log-likelihood back as an integer (PyLong_FromLong) and stops a skill's EM when that
    # integer no longer changes (|change| < 1e-3), i.e. at about 1 nat per skill per
    # iteration; here, K nats over all skills.
    tolerances = [(f"Aula fit (tolerance {default_tolerance:g})", default_tolerance)]
    tolerances.append((f"Aula fit (tolerance {k / train_obs:.1e}: ~1 nat/skill)", k / train_obs))
    aula_s = {}
    for label, tolerance in tolerances:
        seconds, times, result = timed_fit(tolerance)
        aula_s[f"tolerance {tolerance:.1e}"] = seconds
        r = evaluate(result.params)
        assert abs(r["ll"] - result.log_likelihood) < 1e-9 * abs(r["ll"])
        errors = {
            name: float((getattr(result.params, name) - getattr(truth, name)).abs().max())
            for name in ("prior", "learn", "slip", "guess")
        }
        rows.append((label, seconds, f"{result.iterations} (converged: {result.converged})", r))
        print(
            f"{label}: {len(times)} fits, {', '.join(f'{s:.2f}' for s in times)} s; largest "
            "error against the truth: "
            + ", ".join(f"{name} {error:.3f}" for name, error in errors.items()),
            flush=True,
        )

    pybkt_runs = []
    if not args.skip_pybkt:
        python = pybkt_python(create=not args.no_create)
        if python is None:
            print(
                f"pyBKT: no environment at {PYBKT_ENV.relative_to(ROOT)}; create it with\n"
                + pybkt_setup_commands()
            )
        else:
            pybkt_runs = run_pybkt(python, args, train, test, k)
    for run in pybkt_runs:
        params = BKTParams(
            *(
                torch.tensor(
                    [run["params"][f"s{i:02d}"][name] for i in range(k)], dtype=torch.float64
                )
                for name in ("prior", "learn", "slip", "guess")
            )
        )
        mine = evaluate(params)
        theirs = np.asarray(run["predictions"])
        y = test[0][test[1]].numpy()
        label = f"pyBKT num_fits={run['num_fits']}"
        forgets = max(v["forget"] for v in run["params"].values())
        print(
            f"{label}: {run['build']} build ({run['e_step']}); whole fit {run['fit_s']:.2f} s, "
            f"of which EM {run['em_s']:.2f} s over {run['em_calls']} EM runs; predict "
            f"{run['predict_s']:.2f} s; largest forget {forgets:g}; its predict against "
            f"Aula's predict on its parameters: max |diff| "
            f"{float(np.abs(theirs - mine['scores']).max()):.2e}",
            flush=True,
        )
        iterations = run["iterations"]
        per_fit = f"{sum(iterations)} in all, {min(iterations)} to {max(iterations)} per skill" + (
            " and start" if run["num_fits"] > 1 else ""
        )
        ours = {"ll": mine["ll"], "auc": auc(y, theirs), "rmse": rmse(y, theirs)}
        rows.append((label, run["fit_s"], per_fit, ours))
        rows.append(("  (EM loop only)", run["em_s"], "", None))
        rows.append((f"  (Aula's predict, {label}'s params)", None, "", mine))
    rows.append(("true parameters", None, "", evaluate(truth)))

    print()
    print(
        f"{'':<50} {'fit s':>8} {'train LL':>14} {'LL/obs':>8} {'AUC':>9} {'RMSE':>8}  iterations"
    )
    for label, seconds, iterations, r in rows:
        s = f"{seconds:8.2f}" if seconds is not None else f"{'':>8}"
        if r is None:
            print(f"{label:<50} {s}")
            continue
        print(
            f"{label:<50} {s} {r['ll']:14,.1f} {r['ll'] / train_obs:8.5f} {r['auc']:9.6f} "
            f"{r['rmse']:8.5f}  {iterations}"
        )
    for run in pybkt_runs:
        for name, seconds in aula_s.items():
            print(
                f"speed-up, Aula ({name}) against pyBKT num_fits={run['num_fits']}: "
                f"{run['fit_s'] / seconds:.1f}x whole fit, "
                f"{run['em_s'] / seconds:.1f}x its EM loop only"
            )
    print(f"load average at the end {_load()}")


def run_pybkt(python: Path, args, train, test, k: int) -> list[dict]:
    """Both pyBKT fits in var/bench-pybkt's Python, on the same sequences as rows: user_id
    (the sequence's learner), skill_name, correct, order_id (a learner's skills interleaved,
    opportunity by opportunity)."""
    import numpy as np

    def rows(correct, mask, skill, first_user):
        n, t_len = correct.shape
        user = np.repeat(np.arange(n) % (n // k) + first_user, t_len).reshape(n, t_len)
        opportunity = np.tile(np.arange(t_len), (n, 1))
        skills = np.repeat(skill.numpy(), t_len).reshape(n, t_len)
        order = (user * t_len + opportunity) * k + skills
        m = mask.numpy()
        return user[m], skills[m], correct.numpy()[m].astype(np.int64), order[m]

    arrays = {"skill_names": np.array([f"s{i:02d}" for i in range(k)])}
    n_train = len(train[2]) // k
    for prefix, part, first_user in (("train", train, 0), ("test", test, n_train)):
        user, skills, correct, order = rows(*part, first_user)
        arrays |= {
            f"{prefix}_user": user,
            f"{prefix}_skill": skills,
            f"{prefix}_correct": correct,
            f"{prefix}_order": order,
        }
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    runs = []
    with tempfile.TemporaryDirectory(prefix="bkt-bench-") as tmp:
        data_path = Path(tmp) / "data.npz"
        np.savez(data_path, **arrays)
        for num_fits in (1,) if args.no_pybkt_defaults else (1, 5):
            out_path = Path(tmp) / f"out-{num_fits}.json"
            command = [
                str(python),
                str(Path(__file__).resolve()),
                "--worker",
                str(data_path),
                str(out_path),
                str(num_fits),
                str(args.seed),
            ]
            print(f"pyBKT num_fits={num_fits}: running in {python} ...", flush=True)
            subprocess.run(command, check=True, env=env, cwd=tmp)  # noqa: S603
            runs.append(json.loads(out_path.read_text()))
    return runs


if __name__ == "__main__":
    main()
