"""Benchmark: Steward's automated training against HistGradientBoosting with default settings (issue: automl).

Run::

    .venv/bin/python bench/automl.py [--budget 60] [--only NAME ...] [--seeds N] [--big] [--json PATH]
    .venv/bin/python bench/automl.py --report PATH      # reprint the tables of a (possibly partial) --json file

For each dataset the CSV is written to a temporary folder, then three fresh processes run in a temporary store
(``STEWARD_HOME`` in a temp dir), so each one's peak memory is its own:

1. *prepare*: migrate the store, create the first administrator and a project, ingest the CSV (``ingest_file``);
2. *train*: ``create_run`` + ``run_training`` with the budget, exactly as the job does (the timed step: its wall
   time is "time used"; the process tree's memory is sampled from ``/proc`` while it runs);
3. *compare*: reproduce the run's split (``runs._split``, checked row by row against the stored test set,
   ``runs.load_test_set``), fit HistGradientBoosting with default settings on the same training rows with
   Steward's preprocessing (``build_pipeline`` of the ``gradient_boosting`` candidate, ``random_state=0``) and the
   prior/mean dummy, and score Steward, HGB and the dummy with ``evaluation.compute_metrics`` on the same test rows
   with the run's primary metric. This step runs with one OpenMP thread (``OMP_NUM_THREADS=1``): HGB's model does
   not depend on the number of threads, and two threads on a machine others keep busy make its fit many times
   slower.

``--seeds N`` repeats steps 2 and 3 with the run seeds 42, 43, ..., 42 + N - 1 (``create_run(seed=...)``; 42 is its
default, so ``--seeds 1`` is the single run it always was). The seed drives the run's train/test split, the CV
folds, the search subsample and the candidates' own randomness, so each seed is a new split and a new search; HGB
default and the dummy are refitted on each seed's training rows and scored on its test rows. The loop goes seed by
seed over all datasets (every dataset is ingested once, up front), so an interrupted run still holds complete
rounds in ``--json``. With N > 1 the summary gives per dataset the mean ± sample standard deviation over seeds
of Steward, HGB default and the dummy, the paired difference Steward − HGB (mean ± std over seeds, same test rows
per seed), how many seeds Steward was better / equal / worse than HGB, and the mean time used.

``--big`` runs only the 1,000,000 × 30 mixed set and reports search time against the budget, final-fit time,
total time and peak memory. Prints Markdown tables for bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
USER, PASSWORD = "bench", "benchmark password"

# name -> (source, target); "source" is a sample file, a scikit-learn loader or a generator.
DATASETS = {
    "labour_force": ("sample:labour_force.csv", "employed"),
    "job_descriptions": ("sample:job_descriptions.csv", "code"),
    "house_prices": ("sample:house_prices.csv", "price_eur"),
    "breast_cancer": ("sklearn:breast_cancer", "target"),
    "wine": ("sklearn:wine", "target"),
    "digits": ("sklearn:digits", "target"),
    "diabetes": ("sklearn:diabetes", "target"),
    "synthetic_200k": ("synthetic:200000", "outcome"),
}
BIG = ("big_1m", ("big:1000000", "outcome"))
FIRST_SEED = 42  # create_run's default seed


# ── data ────────────────────────────────────────────────────────────────────────────────────────────


def make_mixed(rows: int, *, numeric: int, categorical: list[int], seed: int) -> pd.DataFrame:
    """A seeded mixed-type frame with a binary ``outcome`` that depends non-linearly on the inputs.

    ``numeric`` float columns (every third one has 3–15 % missing values), one categorical column per entry of
    ``categorical`` (that many levels, skewed frequencies, ~2 % missing), and one yes/no column. The signal mixes
    a sine, a product, a threshold, category effects, a category × number interaction and "missing means
    something"; about 10 % label noise on top of the logistic draw keeps it far from separable.
    """
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"num_{i}": rng.normal(0, 1, rows) for i in range(numeric)})
    for i in range(0, numeric, 3):
        share = 0.03 + 0.12 * (i % 2)
        frame.loc[rng.random(rows) < share, f"num_{i}"] = np.nan
    effects = {}
    for j, levels in enumerate(categorical):
        weights = 1 / np.arange(1, levels + 1) ** 0.7
        codes = rng.choice(levels, rows, p=weights / weights.sum())
        effects[j] = rng.normal(0, 0.8, levels)[codes]
        column = pd.Series([f"c{j}_{k}" for k in range(levels)], dtype=object).to_numpy()[codes]
        column[rng.random(rows) < 0.02] = None
        frame[f"cat_{j}"] = column
    flag = rng.random(rows) < 0.4
    frame["flag"] = np.where(flag, "yes", "no")

    x = {i: frame[f"num_{i}"].fillna(0).to_numpy() for i in range(min(numeric, 6))}
    logit = (1.5 * np.sin(2 * x[1]) + 0.8 * x[2] * x[4] + 1.2 * (x[5] > 0.7) - 0.6
             + 1.0 * frame["num_0"].isna().to_numpy() + 0.5 * x[0]
             + effects[0] + 0.7 * effects[1] * np.tanh(x[2]) + 0.5 * flag * np.abs(x[4]))
    for j in range(2, len(categorical)):
        logit = logit + 0.3 * effects[j]
    y = rng.random(rows) < 1 / (1 + np.exp(-logit))
    flip = rng.random(rows) < 0.05
    frame["outcome"] = np.where(y ^ flip, "yes", "no")
    numbers = [f"num_{i}" for i in range(numeric)]
    frame[numbers] = frame[numbers].round(3)
    return frame


def write_dataset(name: str, source: str, path: Path) -> None:
    kind, _, value = source.partition(":")
    if kind == "sample":
        shutil.copyfile(SAMPLE / value, path)
    elif kind == "sklearn":  # bundled with scikit-learn: load_*, never fetch_* (no download)
        import sklearn.datasets

        getattr(sklearn.datasets, f"load_{value}")(as_frame=True).frame.to_csv(path, index=False)
    elif kind == "synthetic":  # 200k rows: 10 numeric, 4 categorical, 1 yes/no
        make_mixed(int(value), numeric=10, categorical=[4, 12, 30, 80], seed=2024).to_csv(path, index=False)
    elif kind == "big":  # 1M rows × 30 input columns: 21 numeric, 8 categorical, 1 yes/no
        make_mixed(int(value), numeric=21, categorical=[3, 5, 8, 12, 20, 30, 50, 200],
                   seed=1_000_000).to_csv(path, index=False)
    else:
        raise ValueError(f"unknown source {source!r} for {name}")


# ── the three child steps ───────────────────────────────────────────────────────────────────────────


def _store():
    from core.config import get_settings
    from core.db import create_store_engine

    get_settings.cache_clear()
    settings = get_settings()
    return settings, create_store_engine(settings.resolved_database_url)


def step_prepare(csv: Path) -> dict:
    from core import auth, datasets, projects
    from core.config import get_settings
    from core.db import migrate, session_scope

    get_settings.cache_clear()
    settings = get_settings()
    settings.ensure_home()
    migrate(settings.resolved_database_url)
    settings, engine = _store()
    with session_scope(engine) as session:
        admin = auth.create_first_admin(session=session, username=USER, password=PASSWORD)
        project = projects.create_project(session=session, actor=admin, name="bench")
        start = time.perf_counter()
        version, _ = datasets.ingest_file(session=session, settings=settings, actor=admin, project_id=project.id,
                                          dataset_name=csv.stem, path=csv, filename=csv.name)
        return {"version_id": version.id, "rows": version.rows, "columns": version.columns,
                "ingest_seconds": round(time.perf_counter() - start, 2)}


def step_train(version_id: int, target: str, budget: float, seed: int) -> dict:
    from core import auth
    from core.db import session_scope
    from core.training import runs

    settings, engine = _store()
    marks: list[tuple[float, float, str]] = []
    with session_scope(engine) as session:
        actor = auth.get_user_by_name(session=session, username=USER)
        run = runs.create_run(session=session, settings=settings, actor=actor, version_id=version_id,
                              target=target, budget_seconds=budget, seed=seed)
        start = time.perf_counter()
        run = runs.run_training(session=session, settings=settings, run_id=run.id, actor=actor,
                                progress=lambda f, m: marks.append((time.perf_counter() - start, f, m)))
        wall = time.perf_counter() - start
    # Exact, but of this process only. (RUSAGE_CHILDREN is no help for the workers: Linux carries the pre-exec
    # high-water mark of a forked child into it, so it reports this process's peak again.)
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def at(prefix: str) -> float | None:
        return next((t for t, _f, m in marks if m.startswith(prefix)), None)

    search_start, fit_start, eval_start = at("Evaluating "), at("Fitting the winner"), at("Evaluating on the held")
    return {
        "run_id": run.id, "seed": run.seed, "task": run.task, "metric": run.primary_metric,
        "wall_seconds": round(wall, 2),
        "prepare_seconds": round(search_start, 2),
        "search_seconds": round(fit_start - search_start, 2),
        "final_fit_seconds": round(eval_start - fit_start, 2),
        "evaluate_store_seconds": round(wall - eval_start, 2),
        "finished": list(run.finished_candidates), "candidates": list(run.candidates), "chosen": run.chosen_candidate,
        "leaderboard": [{k: row[k] for k in ("candidate", "mean", "std", "fit_seconds", "members") if k in row}
                        for row in run.leaderboard],
        "chosen_members": next((row.get("members") for row in run.leaderboard
                                if row["candidate"] == run.chosen_candidate), None),
        "steward_stored": run.evaluation["metrics"][run.primary_metric]["value"],
        "dummy_stored": run.baseline[run.primary_metric],
        "main_maxrss_mb": round(self_peak / 1024),
    }


def _hgb_default(run, types: dict[str, str]):
    """HistGradientBoosting with default settings on Steward's own preprocessing for the run's inputs."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    from core.training.candidates import build_pipeline, candidates_for
    from core.training.features import ColumnTyper, build_preprocessor

    pool = {c.name: c for c in candidates_for(run.task)}
    if "gradient_boosting" in pool:
        return build_pipeline(pool["gradient_boosting"], types, 0), "HGB default"
    # Text tasks have no tree candidate: HGB cannot take a sparse TF-IDF of 10^4+ columns usefully, so it gets
    # Steward's TF-IDF (the text candidates' words preprocessing) reduced to 100 dense SVD components.
    return Pipeline([("prepare", ColumnTyper(types)), ("preprocess", build_preprocessor(types, scale=True)),
                     ("svd", TruncatedSVD(n_components=100, random_state=0)),
                     ("model", HistGradientBoostingClassifier(random_state=0))]), "HGB default on SVD(100) of TF-IDF"


def step_compare(run_id: int) -> dict:
    from sklearn.dummy import DummyClassifier, DummyRegressor

    from core import datasets
    from core.db import session_scope
    from core.models import TrainingRun
    from core.training import evaluation, runs
    from core.training.candidates import CLASSIFICATION

    settings, engine = _store()
    with session_scope(engine) as session:
        row = session.get(TrainingRun, run_id)
        run = runs.get_run(session=session, run_id=run_id)
        version = datasets.get_version(session=session, version_id=run.dataset_version_id)
        frame = datasets.load_frame(settings=settings, version=version)
        labels = runs._labels(frame[run.target], run.task)
        train_index, test_index = runs._split(frame, labels, row)  # the run's own seeded split
        stored = runs.load_test_set(settings=settings, run=run)
    if list(stored.index) != list(test_index) or list(stored["__target__"]) != list(labels[test_index]):
        raise SystemExit("the reproduced test split differs from the run's stored test set")
    features, metric, task, classes = list(run.feature_types), run.primary_metric, run.task, run.classes
    x_train, y_train = frame.loc[train_index, features], labels[train_index]
    x_test, y_test = frame.loc[test_index, features], labels[test_index].to_numpy()

    def score(predicted, proba, model_classes) -> float | None:
        return evaluation.compute_metrics(task, y_test, predicted, proba, model_classes)[metric]

    steward_proba = stored[[f"__proba__{c}" for c in classes]].to_numpy() if classes else None
    steward = score(stored["__predicted__"].to_numpy(), steward_proba, classes)

    model, label = _hgb_default(run, run.feature_types)
    start = time.perf_counter()
    model.fit(x_train, y_train)
    hgb_seconds = time.perf_counter() - start
    hgb_classes = [str(c) for c in model.classes_] if task in CLASSIFICATION else None
    hgb = score(model.predict(x_test), model.predict_proba(x_test) if hgb_classes else None, hgb_classes)

    dummy = (DummyClassifier(strategy="prior") if classes else DummyRegressor()).fit(x_train, y_train)
    dummy_classes = [str(c) for c in dummy.classes_] if classes else None
    baseline = score(dummy.predict(x_test), dummy.predict_proba(x_test) if classes else None, dummy_classes)
    return {"steward": steward, "hgb": hgb, "hgb_label": label, "hgb_fit_seconds": round(hgb_seconds, 2),
            "dummy": baseline, "train_rows": len(train_index), "test_rows": len(test_index),
            "greater_is_better": evaluation.GREATER_IS_BETTER[metric]}


# ── the parent: processes, memory sampling, tables ──────────────────────────────────────────────────


class TreeMemory(threading.Thread):
    """Samples the summed RSS and PSS of a process and all its descendants (joblib workers) every 0.2 s.

    RSS counts pages shared between processes (e.g. joblib's memory-mapped arrays) once per process, so its sum
    is an upper bound; PSS divides shared pages between the processes that share them.
    """

    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_pss = 0  # kB
        self.most_processes = 0
        self.loads: list[float] = []  # the machine's 1-minute load average, as it went
        self.stopped = threading.Event()

    @staticmethod
    def _descendants(root: int) -> list[int]:
        children = defaultdict(list)
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    stat = Path(f"/proc/{entry.name}/stat").read_text()
                except OSError:
                    continue
                children[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry.name))
        found, todo = [], [root]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    @staticmethod
    def _field(path: str, name: str) -> int:
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(name):
                    return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return 0

    def run(self) -> None:
        while not self.stopped.is_set():
            pids = self._descendants(self.pid)
            self.peak_rss = max(self.peak_rss, sum(self._field(f"/proc/{p}/status", "VmRSS:") for p in pids))
            self.peak_pss = max(self.peak_pss, sum(self._field(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids))
            self.most_processes = max(self.most_processes, len(pids))
            self.loads.append(os.getloadavg()[0])
            self.stopped.wait(self.interval)


def child(step: str, *args: str, env: dict, sample: bool = False) -> tuple[dict, TreeMemory | None]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    process = subprocess.Popen([sys.executable, __file__, f"--{step}", str(out), *args], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeMemory(process.pid) if sample else None
    if sampler:
        sampler.start()
    _stdout, stderr = process.communicate()
    if sampler:
        sampler.stopped.set()
        sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{step} failed:\n{stderr[-4000:]}")
    result = json.loads(out.read_text())
    out.unlink()
    return result, sampler


def prepare_one(name: str, source: str) -> tuple[Path, dict, dict]:
    """Write the CSV, ingest it into a fresh temporary store; returns (work folder, environment, figures)."""
    work = Path(tempfile.mkdtemp(prefix=f"steward-automl-{name}-"))
    try:
        csv = work / f"{name}.csv"
        start = time.perf_counter()
        write_dataset(name, source, csv)
        made = time.perf_counter() - start
        env = {**os.environ, "STEWARD_HOME": str(work / "home"), "STEWARD_MAX_UPLOAD_MB": "2048",
               "PYTHONWARNINGS": "ignore"}
        prepared, _ = child("prepare", str(csv), env=env)
        csv.unlink()
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return work, env, {"dataset": name, **prepared, "csv_seconds": round(made, 1)}


def train_one(env: dict, prepared: dict, target: str, budget: float, seed: int, compare: bool = True) -> dict:
    """One run (``create_run`` with ``seed`` + ``run_training``) in the prepared store, then the comparison."""
    trained, memory = child("train", str(prepared["version_id"]), target, str(budget), str(seed), env=env,
                            sample=True)
    result = {**prepared, **trained, "tree_peak_rss_mb": round(memory.peak_rss / 1024),
              "tree_peak_pss_mb": round(memory.peak_pss / 1024), "most_processes": memory.most_processes,
              "load_min": round(min(memory.loads, default=0), 2), "load_max": round(max(memory.loads, default=0), 2)}
    if compare:  # one OpenMP thread: HGB's fit does not depend on it, and two threads on a busy machine crawl
        compared, _ = child("compare", str(trained["run_id"]), env={**env, "OMP_NUM_THREADS": "1"})
        result.update(compared)
    return result


def chosen_label(result: dict) -> str:
    """The chosen candidate, with an average's members (short names)."""
    members = result.get("chosen_members")
    if not members:
        return result["chosen"]
    short = {"gradient_boosting": "gb", "gradient_boosting_slow": "gb_slow", "gradient_boosting_deep": "gb_deep",
             "random_forest": "rf", "extra_trees": "et", "logistic_regression": "lr",
             "logistic_regression_strong": "lr_strong", "ridge": "ridge", "text_words_characters": "words+chars",
             "text_words_weak_regularisation": "words_c10"}
    return "avg(" + " + ".join(short.get(m, m) for m in members) + ")"


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4f}"


def compared(result: dict) -> str:
    """"better", "equal" or "worse" for Steward against HGB default on this run's test rows ("n/a" without both)."""
    steward, hgb = result["steward"], result["hgb"]
    if steward is None or hgb is None:
        return "n/a"
    difference = (steward - hgb) * (1 if result["greater_is_better"] else -1)
    if abs(difference) <= 1e-9 * max(1.0, abs(hgb)):
        return "equal"
    return "better" if difference > 0 else "worse"


def verdict(result: dict) -> str:
    outcome = compared(result)
    return "**worse**" if outcome == "worse" else outcome


def table(results: list[dict], budget: float) -> str:
    lines = [f"| dataset | rows | task | metric | Steward | HGB default | dummy | Steward vs HGB | time used "
             f"(budget {budget:g} s) | search / final fit | finished candidates | chosen | peak memory |",
             "| --- | ---: | --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | ---: |"]
    for r in results:
        hgb = _fmt(r["hgb"]) + (" ¹" if r["hgb_label"] != "HGB default" else "")
        lines.append(
            f"| {r['dataset']} | {r['rows']:,} | {r['task']} | {r['metric']} | {_fmt(r['steward'])} | {hgb} | "
            f"{_fmt(r['dummy'])} | {verdict(r)} | {r['wall_seconds']:.1f} s | {r['search_seconds']:.1f} s / "
            f"{r['final_fit_seconds']:.1f} s | {len(r['finished'])}/{len(r['candidates'])} | {chosen_label(r)} | "
            f"{r['tree_peak_rss_mb']:,} MiB |")
    return "\n".join(lines)


def _mean_std(values: list[float], large: bool) -> str:
    """Mean ± sample standard deviation (ddof 1; just the value for a single one)."""
    number = "{:,.0f}" if large else "{:.4f}"
    if len(values) == 1:
        return number.format(values[0])
    return f"{number.format(float(np.mean(values)))} ± {number.format(float(np.std(values, ddof=1)))}"


def seeds_table(results: list[dict], budget: float) -> str:
    """One row per dataset over all its seeds: means ± std, paired Steward − HGB, better/equal/worse counts."""
    by_dataset: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_dataset[r["dataset"]].append(r)
    lines = ["| dataset | rows | test rows | metric | seeds | Steward | HGB default | dummy | Steward's advantage "
             "over HGB, paired ² | Steward vs HGB: better / equal / worse | time used, mean (budget "
             f"{budget:g} s) | chosen (seeds) |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | :---: | ---: | --- |"]
    for name, runs in by_dataset.items():
        first = runs[0]
        large = abs(float(np.mean([r["dummy"] for r in runs]))) >= 1000
        sign = 1 if first["greater_is_better"] else -1
        paired = [sign * (r["steward"] - r["hgb"]) for r in runs if r["steward"] is not None and r["hgb"] is not None]
        counts = [sum(compared(r) == outcome for r in runs) for outcome in ("better", "equal", "worse")]
        difference = _mean_std(paired, large).replace("-", "−") if paired else "n/a"
        if paired and not difference.startswith("−"):
            difference = "+" + difference
        chosen = defaultdict(int)
        for r in runs:
            chosen[chosen_label(r)] += 1
        metric = first["metric"] + ("" if first["greater_is_better"] else " (lower is better)")
        hgb = _mean_std([r["hgb"] for r in runs], large) + (" ¹" if first["hgb_label"] != "HGB default" else "")
        worse = f"**{counts[2]}**" if counts[2] else "0"
        steward, dummy = _mean_std([r["steward"] for r in runs], large), _mean_std([r["dummy"] for r in runs], large)
        lines.append(
            f"| {name} | {first['rows']:,} | {first['test_rows']:,} | {metric} | {len(runs)} | "
            f"{steward} | {hgb} | {dummy} | "
            f"{difference} | {counts[0]} / {counts[1]} / {worse} | "
            f"{np.mean([r['wall_seconds'] for r in runs]):.1f} s | "
            + ", ".join(f"{c} ×{n}" for c, n in sorted(chosen.items(), key=lambda item: -item[1])) + " |")
    return "\n".join(lines)


def seed_details(results: list[dict]) -> str:
    """Every run on one line: the figures behind the summary."""
    lines = ["| dataset | seed | Steward | HGB default | dummy | Steward vs HGB | chosen | finished | time used "
             "| search | load |", "| --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in sorted(results, key=lambda r: (list(DATASETS).index(r["dataset"]) if r["dataset"] in DATASETS else 99,
                                            r["seed"])):
        lines.append(f"| {r['dataset']} | {r['seed']} | {_fmt(r['steward'])} | {_fmt(r['hgb'])} | "
                     f"{_fmt(r['dummy'])} | {verdict(r)} | {chosen_label(r)} | {len(r['finished'])}/"
                     f"{len(r['candidates'])} | {r['wall_seconds']:.1f} s | {r['search_seconds']:.1f} s | "
                     f"{r.get('load_min', 0):.1f}–{r.get('load_max', 0):.1f} |")
    return "\n".join(lines)


def print_tables(results: list[dict], budget: float, big: bool) -> None:
    if big:
        print(big_table(results[0], budget))
        return
    if len({r.get("seed", FIRST_SEED) for r in results}) > 1:
        print(seeds_table(results, budget))
        print()
        print(seed_details(results))
    else:
        print(table(results, budget))
    if any(r["hgb_label"] != "HGB default" for r in results):
        print("\n¹ HistGradientBoosting default on a TruncatedSVD(100) of Steward's TF-IDF (text has no tree "
              "candidate).")
    if len({r.get("seed", FIRST_SEED) for r in results}) > 1:
        print("² Per seed, Steward's test score minus HGB's on the same test rows, signed so that + means Steward "
              "is better (for RMSE: HGB's minus Steward's); mean ± sample std over seeds.")


def big_table(r: dict, budget: float) -> str:
    rows = [
        ("rows × input columns", f"{r['rows']:,} × {r['columns'] - 1}"),
        ("ingest (not part of training)", f"{r['ingest_seconds']:.1f} s"),
        ("load + checks + split + worker start", f"{r['prepare_seconds']:.1f} s"),
        ("search (on a 50,000-row subsample)", f"{r['search_seconds']:.1f} s (budget {budget:g} s)"),
        ("final fit of the winner on all training rows", f"{r['final_fit_seconds']:.1f} s ({chosen_label(r)})"),
        ("test evaluation + storing model and test set", f"{r['evaluate_store_seconds']:.1f} s"),
        ("total wall time of run_training", f"{r['wall_seconds']:.1f} s"),
        ("candidates finished", f"{len(r['finished'])}/{len(r['candidates'])}: {', '.join(r['finished'])}"),
        ("machine load (1-minute average) during training", f"{r.get('load_min', 0):.1f}–{r.get('load_max', 0):.1f}"),
        ("peak memory, process tree RSS (sampled)", f"{r['tree_peak_rss_mb']:,} MiB"),
        ("peak memory, process tree PSS (sampled)", f"{r['tree_peak_pss_mb']:,} MiB"),
        ("peak memory, main process alone (ru_maxrss, exact)", f"{r['main_maxrss_mb']:,} MiB"),
        (f"test {r['metric']}: Steward / dummy", f"{_fmt(r['steward_stored'])} / {_fmt(r['dummy_stored'])}"),
    ]
    if "hgb" in r:
        rows.append((f"test {r['metric']}: HGB default (fit {r['hgb_fit_seconds']:.0f} s)", _fmt(r["hgb"])))
    return "\n".join(["| | |", "| --- | ---: |", *(f"| {a} | {b} |" for a, b in rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=60.0, help="search budget in seconds (default 60)")
    parser.add_argument("--only", nargs="+", choices=list(DATASETS), help="run only these datasets")
    parser.add_argument("--seeds", type=int, default=1,
                        help=f"runs per dataset, with the run seeds {FIRST_SEED}, {FIRST_SEED + 1}, ... (default 1)")
    parser.add_argument("--big", action="store_true", help="run only the 1,000,000 × 30 set")
    parser.add_argument("--no-compare", action="store_true", help="with --big: skip the HGB default fit")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file (after every run)")
    parser.add_argument("--report", type=Path, help="only reprint the tables of a --json file (complete or not)")
    args = parser.parse_args()
    if args.report:
        saved = json.loads(args.report.read_text())
        print_tables(saved["results"], saved["budget"], saved.get("big", False))
        return
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    started = time.strftime("%Y-%m-%d %H:%M")
    load = os.getloadavg()
    seeds = list(range(FIRST_SEED, FIRST_SEED + args.seeds))
    print(f"# bench/automl.py, {started}, budget {args.budget:g} s, seeds {', '.join(map(str, seeds))}, load "
          f"average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs", flush=True)
    chosen = [BIG] if args.big else [(n, DATASETS[n]) for n in (args.only or DATASETS)]
    stores: dict[str, tuple[Path, dict, dict]] = {}
    results = []
    try:
        for name, (source, _target) in chosen:  # ingest every dataset once; each seed is a new run on it
            stores[name] = prepare_one(name, source)
        for seed in seeds:  # seed by seed, so that an interrupted run holds complete rounds
            for name, (_source, target) in chosen:
                _work, env, prepared = stores[name]
                result = train_one(env, prepared, target, args.budget, seed,
                                   compare=not (args.big and args.no_compare))
                results.append(result)
                print(f"{name} seed {seed}: {json.dumps(result)}", flush=True)
                if args.json:
                    args.json.write_text(json.dumps({"started": started, "budget": args.budget, "seeds": seeds,
                                                     "big": args.big, "results": results}, indent=1))
    finally:
        for work, _env, _prepared in stores.values():
            shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print(f"# finished {time.strftime('%Y-%m-%d %H:%M')}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print()
    print_tables(results, args.budget, args.big)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] in ("--prepare", "--train", "--compare"):
        step, out, rest = sys.argv[1][2:], Path(sys.argv[2]), sys.argv[3:]
        if step == "prepare":
            figures = step_prepare(Path(rest[0]))
        elif step == "train":
            figures = step_train(int(rest[0]), rest[1], float(rest[2]), int(rest[3]))
        else:
            figures = step_compare(int(rest[0]))
        out.write_text(json.dumps(figures))
    else:
        main()
