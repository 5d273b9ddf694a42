"""Automated training runs: plan, search, evaluate, store, reproduce.

One function, :func:`execute_run`, does the work for the job (``training.run``), the CLI and "Reproduce",
so a run from the browser and from the command line give the same model for the same inputs.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import platform
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, TimeSeriesSplit, train_test_split
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sqlmodel import Session, col, select

from core import audit, datasets
from core.artifacts import ArtifactStore
from core.auth import require_role
from core.config import Settings
from core.data.profile import jsonable
from core.data.schema import ColumnType
from core.errors import InvalidInput, NotFound
from core.models import (
    DatasetVersion,
    Explanation,
    ExplanationPublic,
    Role,
    RunCertificate,
    RunCertificatePublic,
    RunEvaluation,
    RunEvaluationPublic,
    RunStatus,
    TrainingRun,
    TrainingRunPublic,
    User,
    UserPublic,
    utcnow,
)
from core.training import ensemble, evaluation, search
from core.training.candidates import CLASSIFICATION, Candidate, build_ensemble, build_pipeline, candidates_for
from core.training.features import model_types
from core.training.persistence import load_model, save_model

BUDGET_PRESETS = {"quick": 20, "standard": 60, "thorough": 300}
STABILITY_FOLDS = 3        # folds refitted to check that the top features agree
SEARCH_ROWS = 50_000       # the search cross-validates on at most this many rows; the winner sees all
TEST_SHARE = 0.2
ENSEMBLE_NAMES = {"value": "average_of_best", "log-odds": "average_of_best", "probability": "average_of_best_forests"}


@dataclass
class TrainingPlan:
    """What Steward will do with a target, and what the user should know first."""

    task: str
    primary_metric: str
    features: dict[str, str]
    excluded_identifiers: list[str]
    warnings: list[str] = field(default_factory=list)
    rows: int = 0


# ── planning ────────────────────────────────────────────────────────────────────────────────────────


def detect_task(kind: str, target: pd.Series, features: dict[str, str]) -> str:
    """binary, multiclass, regression, or text (classification carried by a free-text column)."""
    present = target.dropna()
    distinct = present.nunique()
    if kind == ColumnType.numeric and (distinct > 20 or not bool((present == present.round()).all())):
        return "regression"
    if any(k == ColumnType.text for k in features.values()):
        return "text"
    return "binary" if distinct == 2 else "multiclass"


def _labels(target: pd.Series, task: str) -> pd.Series:
    if task == "regression":
        return target.astype("float64")
    if str(target.dtype) == "boolean":
        return target.map({True: "true", False: "false"}).astype(object)
    if pd.api.types.is_float_dtype(target):
        return target.map(lambda v: None if pd.isna(v) else (str(int(v)) if float(v).is_integer() else str(v)))
    return target.astype("string").astype(object)


def _folds(config: dict[str, Any], rows: int) -> int:
    return int(config.get("folds") or (3 if rows > 100_000 else 5))


def _check_trainable(frame: pd.DataFrame, types: dict[str, str], target: str, task: str,
                     features: dict[str, str], folds: int) -> pd.Series:
    """Refuse what cannot be trained, in plain words; returns the usable labels."""
    if target not in frame.columns:
        raise InvalidInput(f"The dataset has no column {target!r}. Choose the column to predict.")
    if types[target] == ColumnType.identifier:
        raise InvalidInput(f"{target!r} is an identifier (different in every row), so there is nothing to learn. "
                           "Choose the column whose value you want to predict.")
    if not features:
        raise InvalidInput("No input columns are left (all were excluded, or are identifiers). Keep at least one.")
    labels = _labels(frame[target], task)
    known = labels.notna()
    if not known.any():
        raise InvalidInput(f"The target {target!r} is empty in every row. Choose a column that has values.")
    if known.sum() < folds * 2:
        raise InvalidInput(f"Only {int(known.sum())} rows have a value for {target!r}; training needs at least "
                           f"{folds * 2} (twice the {folds} cross-validation folds). Add more data.")
    if task in CLASSIFICATION:
        counts = labels[known].value_counts()
        if len(counts) < 2:
            raise InvalidInput(f"Every row has the same value of {target!r} ({counts.index[0]!r}): there is "
                               "nothing to tell apart. Add data with other outcomes.")
        rare = counts[counts < 2]
        if len(rare):
            raise InvalidInput(f"The class(es) {', '.join(map(repr, rare.index))} of {target!r} have only one row; "
                               "a model cannot learn or be tested on them. Add rows, or merge or remove those "
                               "classes.")
    return labels


def _leakage_warnings(frame: pd.DataFrame, labels: pd.Series, features: dict[str, str], task: str,
                      seed: int) -> list[str]:
    """Columns that predict the target almost perfectly on their own (known only after the outcome?)."""
    from core.training.features import ColumnTyper

    known = labels.notna()
    sample = frame[known].sample(min(int(known.sum()), 5000), random_state=seed)
    y = labels[sample.index]
    found = []
    for name, kind in features.items():
        # Text columns are checked by their exact values too: a copy of the outcome typed as text leaks it as well.
        prepared = ColumnTyper({name: kind}).fit(sample).transform(sample)[name]
        if kind in (ColumnType.numeric, ColumnType.datetime):
            x = prepared.fillna(prepared.median() if prepared.notna().any() else 0).to_frame()
        else:
            x = pd.Series(pd.factorize(prepared)[0], index=prepared.index).to_frame()
        tree = DecisionTreeRegressor(max_depth=4) if task == "regression" else DecisionTreeClassifier(max_depth=4)
        score = tree.fit(x, y).score(x, y)
        if score >= 0.99 and (task != "regression" or y.nunique() > 2):
            found.append(f"Column {name!r} predicts the target almost perfectly on its own (score {score:.3f}). "
                         "If its value is only known after the outcome, exclude it: it would leak the answer.")
    return found


def plan_training(*, session: Session, settings: Settings, version_id: int, target: str, task: str | None = None,
                  excluded: list[str] | tuple[str, ...] = (), seed: int = 42, folds: int | None = None) -> TrainingPlan:
    """Detect the task and list the warnings a user should read before training (nothing is stored)."""
    version = datasets.get_version(session=session, version_id=version_id)
    frame = datasets.load_frame(settings=settings, version=version)
    types = version.types
    if target not in types:
        raise InvalidInput(f"The dataset has no column {target!r}. Choose the column to predict.")
    features = model_types(types, target, excluded)
    chosen = task or detect_task(types[target], frame[target], features)
    if chosen not in evaluation.PRIMARY_METRIC:
        raise InvalidInput(f"Unknown task {chosen!r}. Choose binary, multiclass, regression or text.")
    fold_count = folds or _folds({}, len(frame))
    labels = _check_trainable(frame, types, target, chosen, features, fold_count)
    warnings: list[str] = []
    identifiers = [n for n, k in types.items() if k == ColumnType.identifier and n != target]
    if identifiers:
        warnings.append(f"Identifier columns are never used as inputs: {', '.join(identifiers)}.")
    missing = int(labels.isna().sum())
    if missing:
        warnings.append(f"{missing:,} rows have no value for {target!r}; they are left out of training.")
    if chosen in CLASSIFICATION:
        counts = labels.value_counts()
        small = counts[counts < fold_count * 2]
        if len(small):
            warnings.append(f"Some classes have very few rows ({', '.join(f'{k}: {v}' for k, v in small.items())}); "
                            "results for them will be unreliable.")
        share = counts.min() / counts.sum()
        if share < 0.05:
            warnings.append(f"The classes are very unbalanced: the smallest, {counts.idxmin()!r}, is {share:.1%} of "
                            "rows. Look at balanced accuracy and per-class results, not only accuracy.")
    warnings += _leakage_warnings(frame, labels, features, chosen, seed)
    return TrainingPlan(task=chosen, primary_metric=evaluation.PRIMARY_METRIC[chosen], features=features,
                        excluded_identifiers=identifiers, warnings=warnings, rows=len(frame))


# ── starting ────────────────────────────────────────────────────────────────────────────────────────


def _public(session: Session, run: TrainingRun) -> TrainingRunPublic:
    version = session.get(DatasetVersion, run.dataset_version_id)
    dataset = datasets.get_version(session=session, version_id=version.id)
    creator = session.get(User, run.created_by_id)
    return TrainingRunPublic(**run.model_dump(), dataset_name=dataset.dataset_name, dataset_number=version.number,
                             dataset_sha256=version.sha256, created_by_name=creator.username if creator else "?")


def create_run(
    *, session: Session, settings: Settings, actor: UserPublic, version_id: int, target: str,
    task: str | None = None, budget_seconds: float = BUDGET_PRESETS["standard"], metric: str | None = None,
    excluded: list[str] | tuple[str, ...] = (), seed: int = 42, cv: str = "stratified", cv_column: str | None = None,
    folds: int | None = None,
) -> TrainingRunPublic:
    """Check the request and record a queued run (``start_training`` or the CLI then executes it)."""
    require_role(actor, Role.builder, Role.admin)
    version = datasets.get_version(session=session, version_id=version_id)
    plan = plan_training(session=session, settings=settings, version_id=version_id, target=target, task=task,
                         excluded=excluded, seed=seed, folds=folds)
    metric = metric or plan.primary_metric
    if metric not in evaluation.METRICS[plan.task]:
        raise InvalidInput(f"{metric!r} is not a metric for {plan.task} tasks. Choose one of "
                           f"{', '.join(evaluation.METRICS[plan.task])}.")
    if cv not in ("stratified", "grouped", "time"):
        raise InvalidInput("Cross-validation is 'stratified', 'grouped' or 'time'.")
    if cv != "stratified" and cv_column not in version.types:
        raise InvalidInput("Grouped or time-ordered validation needs the column that holds the groups or the times. "
                           + ("Choose one." if cv_column is None else f"The dataset has no column {cv_column!r}."))
    if cv == "grouped":
        groups = datasets.load_frame(settings=settings, version=version)[cv_column].nunique()
        needed = folds or _folds({}, version.rows)
        if groups < needed:
            raise InvalidInput(f"Grouped validation needs at least {needed} different values in {cv_column!r}; "
                               f"it has {groups}. Choose another column or shuffled folds.")
    if budget_seconds <= 0:
        raise InvalidInput("The time budget must be a positive number of seconds.")
    run = TrainingRun(
        project_id=_project_of(session, session.get(DatasetVersion, version_id)), dataset_version_id=version_id,
        target=target,
        task=plan.task, primary_metric=metric, seed=seed, feature_types=plan.features, warnings=plan.warnings,
        candidates=[c.name for c in candidates_for(plan.task)], created_by_id=actor.id,
        config={"budget_seconds": float(budget_seconds), "excluded": list(excluded), "cv": cv,
                "cv_column": cv_column, "folds": folds, "test_share": TEST_SHARE, "search_rows": SEARCH_ROWS,
                "ensemble_members": ensemble.MAX_MEMBERS},
    )
    session.add(run)
    session.flush()
    audit.record_event(session, actor=actor, action="training.run.create", entity_type="training_run",
                       entity_id=run.id, details={"dataset_sha256": version.sha256, "target": target,
                                                  "task": plan.task, "metric": metric, "seed": seed})
    session.commit()
    return _public(session, run)


def _project_of(session: Session, version: DatasetVersion) -> int:
    from core.models import Dataset

    return session.get(Dataset, version.dataset_id).project_id


def start_training(*, session: Session, settings: Settings, runner, actor: UserPublic, **request) -> TrainingRunPublic:
    """Record a run and start it as a job; the page follows the job."""
    from core import jobs

    run = create_run(session=session, settings=settings, actor=actor, **request)
    job = jobs.create_job(session=session, actor=actor, kind="training.run", params={"run_id": run.id},
                          title=f"Training run {run.id} ({run.target})", project_id=run.project_id)
    row = session.get(TrainingRun, run.id)
    row.job_id = job.id
    session.add(row)
    session.commit()
    runner.start(job.id)
    return _public(session, row)


# ── execution ───────────────────────────────────────────────────────────────────────────────────────


def _splitter(config: dict[str, Any], task: str, seed: int, rows: int):
    folds = _folds(config, rows)
    if config.get("cv") == "grouped":
        return GroupKFold(n_splits=folds)
    if config.get("cv") == "time":
        return TimeSeriesSplit(n_splits=folds)
    if task in CLASSIFICATION:
        return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return KFold(n_splits=folds, shuffle=True, random_state=seed)


def _split(frame: pd.DataFrame, labels: pd.Series, run: TrainingRun) -> tuple[pd.Index, pd.Index]:
    known = frame.index[labels.notna()]
    if run.config.get("cv") == "time":
        order = frame.loc[known, run.config["cv_column"]].sort_values(kind="stable").index
        cut = int(len(order) * (1 - TEST_SHARE))
        return order[:cut], order[cut:]
    stratify = labels[known] if run.task in CLASSIFICATION else None
    train, test = train_test_split(known, test_size=TEST_SHARE, random_state=run.seed, stratify=stratify)
    return pd.Index(train), pd.Index(test)


def _warm_up_workers() -> None:
    from joblib import Parallel, delayed

    Parallel(n_jobs=search.WORKERS)(delayed(search.warm_up)() for _ in range(search.WORKERS))
    _stop_workers_at_exit()


@functools.cache
def _stop_workers_at_exit() -> None:
    """Stop joblib's workers when this process exits, not 5 minutes later.

    A job's worker process waits at exit for its child processes, and joblib's idle workers only leave after their
    300 s timeout: without this, ``JobRunner.shutdown`` hangs that long after any training job.
    """
    from multiprocessing.util import Finalize

    Finalize(None, _stop_workers, exitpriority=10)  # runs before multiprocessing joins the children


def _stop_workers() -> None:
    from joblib.externals.loky import reusable_executor

    executor = getattr(reusable_executor, "_executor", None)  # joblib's shared pool, when one was started
    if executor is not None:
        executor.shutdown(wait=True)


def prediction_hash(predictions: np.ndarray) -> str:
    """A fingerprint of test-set predictions (rounded, so harmless float noise does not change it)."""
    values = np.round(np.asarray(predictions, dtype="float64"), 10) if predictions.dtype.kind in "fc" else (
        np.asarray(predictions).astype(str))
    return hashlib.sha256(values.tobytes() if values.dtype.kind == "f" else "\x1f".join(values).encode()).hexdigest()


def environment() -> dict[str, Any]:
    """Python and library versions, and the Steward version and git commit when known."""
    packages = ["steward", "scikit-learn", "pandas", "numpy", "scipy", "skops", "shap"]
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": versions,
            "git_commit": _git_commit()}


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def execute_run(*, session: Session, settings: Settings, run_id: int, progress=None,
                only: list[str] | None = None, persist: bool = True) -> dict[str, Any]:
    """Search, choose, fit, evaluate and store. ``only`` re-evaluates exactly those candidates (reproduce)."""
    report = progress or (lambda _fraction, _message: None)
    run = session.get(TrainingRun, run_id)
    version = datasets.get_version(session=session, version_id=run.dataset_version_id)
    report(0.02, "Loading the data")
    frame = datasets.load_frame(settings=settings, version=version)
    folds = _folds(run.config, len(frame))
    labels = _check_trainable(frame, version.types, run.target, run.task, run.feature_types, folds)
    train_index, test_index = _split(frame, labels, run)
    features = list(run.feature_types)
    x_train, y_train = frame.loc[train_index, features], labels[train_index]
    x_test, y_test = frame.loc[test_index, features], labels[test_index]

    search_x, search_y = x_train, y_train
    if len(x_train) > SEARCH_ROWS and run.config.get("cv") == "time":
        search_x, search_y = x_train.iloc[-SEARCH_ROWS:], y_train.iloc[-SEARCH_ROWS:]  # the latest, still in order
    elif len(x_train) > SEARCH_ROWS:  # subsample inside the search; the winner is fitted on everything
        keep, _ = train_test_split(x_train.index, train_size=SEARCH_ROWS, random_state=run.seed,
                                   stratify=y_train if run.task in CLASSIFICATION else None)
        search_x, search_y = x_train.loc[keep], y_train[keep]
    groups = frame.loc[search_x.index, run.config["cv_column"]] if run.config.get("cv") == "grouped" else None
    splitter = _splitter(run.config, run.task, run.seed, len(frame))

    pool = candidates_for(run.task)
    todo = [c for c in pool if c.name in only] if only is not None else pool
    budget = float(run.config["budget_seconds"])
    report(0.04, "Starting the workers")
    _warm_up_workers()  # starting the two worker processes can take seconds; the budget is for models
    cv_folds = list(splitter.split(search_x, search_y, groups))
    classes = list(np.unique(search_y.to_numpy())) if run.task in CLASSIFICATION else None
    costs = search.CostModel(task=run.task, rows=int(np.mean([len(train) for train, _ in cv_folds])),
                             inputs=len(features), width=search.transformed_width(run.feature_types, search_x),
                             folds=len(cv_folds))
    started, leaderboard, finished, evaluated = time.monotonic(), [], [], []
    for index, candidate in enumerate(todo):
        elapsed = time.monotonic() - started
        timed = only is None and bool(finished)  # the first candidate always finishes; a re-run evaluates all
        if timed and elapsed + costs.estimate(candidate) > budget:
            break  # the budget stops the search before a candidate that would overrun it
        left = f", {max(budget - elapsed, 0):.0f} s left" if only is None else ""
        report(0.05 + 0.7 * index / len(todo), f"Evaluating {candidate.description} ({index + 1} of {len(todo)}{left})")
        try:
            result = search.cross_validate_candidate(
                candidate, build_pipeline(candidate, run.feature_types, run.seed), search_x, search_y, cv_folds,
                task=run.task, metric=run.primary_metric, classes=classes, deadline=started + budget if timed else None)
        except search.OutOfTime:
            break  # it was still running when the budget ran out: stopped, and not recorded as finished
        costs.record(candidate, result)
        evaluated.append(result)
        leaderboard.append(_leaderboard_row(candidate.name, candidate.description, result.scores, result.fit_seconds))
        finished.append(candidate.name)
        if persist:  # the page shows the leaderboard while the search goes on
            # New lists, not the same ones appended to: JSON columns only notice a new value.
            run.leaderboard, run.finished_candidates = list(leaderboard), list(finished)
            session.add(run)
            session.commit()

    if int(run.config.get("ensemble_members", 1)) > 1 and len(evaluated) > 1:  # runs from before ensembles: none
        report(0.78, "Trying averages of the best models on their cross-validation predictions")
        leaderboard += _ensemble_rows(run, evaluated, cv_folds, search_y, classes, pool, leaderboard)
    best = ensemble.choose(leaderboard, metric=run.primary_metric, rows_searched=len(search_y),
                           greater_is_better=evaluation.GREATER_IS_BETTER[run.primary_metric])
    report(0.8, f"Fitting the winner ({best['description']}) on all {len(x_train):,} training rows")
    model = _build_model(best, pool, run).fit(x_train, y_train)

    report(0.9, "Evaluating on the held-out test set")
    classes = [str(c) for c in model.classes_] if run.task in CLASSIFICATION else None
    predicted = model.predict(x_test)
    proba = model.predict_proba(x_test) if classes else None
    sensitive = {name: frame.loc[test_index, name] for name in version.sensitive_columns if name in frame.columns}
    result = evaluation.evaluate(run.task, y_test.to_numpy(), predicted, proba, classes, groups=sensitive,
                                 seed=run.seed)
    result["leaderboard_metric"] = run.primary_metric
    dummy = (DummyClassifier(strategy="prior") if classes else DummyRegressor()).fit(x_train, y_train)
    baseline = evaluation.compute_metrics(run.task, y_test.to_numpy(), dummy.predict(x_test),
                                          dummy.predict_proba(x_test) if classes else None, classes)

    outcome = {"leaderboard": leaderboard, "finished": finished, "chosen": best["candidate"], "classes": classes,
               "evaluation": result, "baseline": baseline,
               "prediction_hash": prediction_hash(proba if proba is not None else predicted),
               "coding_threshold": _default_coding_threshold(result)}
    if persist:
        report(0.93, "Explaining the model (SHAP) and checking that the explanation is stable across folds")
        outcome["explanation"] = _explain(model, best, pool, run, settings, x_test, classes, search_x, search_y,
                                          splitter, groups)
        store = ArtifactStore(settings.artifacts_path)
        test_set = x_test.assign(__target__=y_test.to_numpy(), __predicted__=predicted)
        for position, name in enumerate(classes or []):
            test_set[f"__proba__{name}"] = proba[:, position]
        outcome["model_sha256"] = save_model(store, model).sha256
        outcome["test_set_sha256"] = store.write_with(lambda path: test_set.to_parquet(path), suffix=".parquet").sha256
    return outcome


def _leaderboard_row(name: str, description: str, scores: list[float], fit_seconds: list[float],
                     **extra) -> dict[str, Any]:
    return {"candidate": name, "description": description, "mean": float(np.nanmean(scores)),
            "std": float(np.nanstd(scores)), "fit_seconds": float(np.mean(fit_seconds)),
            "folds": int(np.isfinite(scores).sum()), "scores": [jsonable(float(s)) for s in scores], **extra}


def _ensemble_rows(run: TrainingRun, evaluated: list[search.Evaluated], folds, search_y: pd.Series, classes,
                   pool: list[Candidate], leaderboard: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Leaderboard rows of the averaging ensembles worth trying, scored on the search's out-of-fold outputs.

    Averages are built on the run's metric, or, when it counts rows (accuracy, F1), on the log loss, which also
    goes into every row so that :func:`ensemble.choose` can break ties with it.
    """
    truth = [search_y.iloc[valid].to_numpy() for _train, valid in folds]
    by_name = {c.name: c for c in pool}
    fit_seconds = {e.name: float(np.mean(e.fit_seconds)) for e in evaluated}
    tie_break = run.primary_metric in ensemble.ROW_COUNTED
    building = "log_loss" if tie_break else run.primary_metric

    def scorer(metric: str):
        return lambda fold, scale, outputs: search.fold_score(run.task, metric, truth[fold], outputs, scale, classes)

    if tie_break:
        for row, found in zip(leaderboard, evaluated, strict=True):
            if found.scale is not None:
                row["log_loss"] = float(np.mean([scorer("log_loss")(fold, found.scale, out)
                                                 for fold, out in enumerate(found.outputs)]))
    outputs = {e.name: e for e in evaluated}
    rows = []
    for found in ensemble.select_ensembles(evaluated, score_fold=scorer(building),
                                           greater_is_better=evaluation.GREATER_IS_BETTER[building],
                                           max_members=int(run.config["ensemble_members"])):
        members, scale = found["members"], found["scale"]
        averaged = [ensemble.combine([outputs[m].outputs[fold] for m in members]) for fold in range(len(truth))]
        scores = [scorer(run.primary_metric)(fold, scale, out) for fold, out in enumerate(averaged)]
        description = f"Average of {len(members)} models: " + "; ".join(by_name[m].description for m in members)
        extra = {"log_loss": float(np.mean(found["scores"]))} if tie_break else {}
        rows.append(_leaderboard_row(ENSEMBLE_NAMES[scale], description, scores,
                                     [sum(fit_seconds[m] for m in members)], members=members, scale=scale, **extra))
    return rows


def _build_model(row: dict[str, Any], pool: list[Candidate], run: TrainingRun):
    """The unfitted pipeline of a leaderboard row: one candidate's, or an average of several."""
    by_name = {c.name: c for c in pool}
    if row.get("members"):
        return build_ensemble([by_name[m] for m in row["members"]], run.feature_types, run.seed, task=run.task,
                              scale=row["scale"])
    return build_pipeline(by_name[row["candidate"]], run.feature_types, run.seed)


def _explain(model, best: dict[str, Any], pool: list[Candidate], run: TrainingRun, settings: Settings,
             x_test: pd.DataFrame, classes, search_x, search_y, splitter, groups) -> dict[str, Any]:
    """The global explanation on the test set, text terms, and the top-10 overlap across CV folds."""
    from core import explain

    found = explain.explain_global(model, x_test, task=run.task, classes=classes, seed=run.seed,
                                   rows=settings.explain_rows, background_rows=settings.explain_background_rows)
    rankings = []
    folds = itertools.islice(splitter.split(search_x, search_y, groups), STABILITY_FOLDS)
    for fold, (train_rows, valid_rows) in enumerate(folds):
        fold_model = _build_model(best, pool, run).fit(search_x.iloc[train_rows], search_y.iloc[train_rows])
        fold_view = explain.explain_global(fold_model, search_x.iloc[valid_rows], task=run.task, classes=classes,
                                           seed=run.seed + fold, rows=min(settings.explain_rows, 200),
                                           background_rows=min(settings.explain_background_rows, 100))
        rankings.append(list(fold_view["overall"]))
    return {"global": found, "stability": explain.top_overlap(rankings),
            "text_terms": explain.text_terms(model, classes)}


def _default_coding_threshold(result: dict[str, Any]) -> float | None:
    tradeoff = result.get("diagnostics", {}).get("coding_tradeoff")
    return evaluation.threshold_for_accuracy(tradeoff, 0.95) if tradeoff else None


def finish_run(*, session: Session, run_id: int, outcome: dict[str, Any], actor: UserPublic | None) -> None:
    """Store a successful run's results (one transaction, with its audit event)."""
    run = session.get(TrainingRun, run_id)
    run.leaderboard, run.finished_candidates = list(outcome["leaderboard"]), list(outcome["finished"])
    run.chosen_candidate, run.classes = outcome["chosen"], outcome["classes"]
    run.evaluation, run.baseline = outcome["evaluation"], outcome["baseline"]
    run.model_sha256, run.test_set_sha256 = outcome["model_sha256"], outcome["test_set_sha256"]
    run.prediction_hash, run.coding_threshold = outcome["prediction_hash"], outcome["coding_threshold"]
    run.decision_threshold = 0.5 if run.task == "binary" else None
    env = environment()
    run.environment = env
    run.code_version = f"steward {env['packages']['steward']}" + (f" @ {env['git_commit'][:12]}" if env["git_commit"]
                                                                   else "")
    run.status, run.finished_at = RunStatus.succeeded, utcnow()
    session.add(run)
    explained = outcome["explanation"]
    session.add(Explanation(
        run_id=run.id, method=explained["global"]["method"], scale=explained["global"]["scale"],
        rows_explained=explained["global"]["rows_explained"], seed=run.seed,
        additivity_max_error=explained["global"]["additivity_max_error"], additive=explained["global"]["additive"],
        result=explained["global"], stability=explained["stability"], text_terms=explained["text_terms"]))
    audit.record_event(session, actor=actor, action="training.run.succeeded", entity_type="training_run",
                       entity_id=run.id, details={"chosen": run.chosen_candidate, "model_sha256": run.model_sha256,
                                                  "prediction_hash": run.prediction_hash})
    session.commit()


def fail_run(*, session: Session, run_id: int, reason: str, status: str = RunStatus.failed) -> None:
    session.rollback()
    run = session.get(TrainingRun, run_id)
    run.status, run.error, run.finished_at = status, reason, utcnow()
    session.add(run)
    audit.record_event(session, actor=None, action=f"training.run.{status}", entity_type="training_run",
                       entity_id=run.id, details={"error": reason})
    session.commit()


def run_training(*, session: Session, settings: Settings, run_id: int, actor: UserPublic | None,
                 progress=None) -> TrainingRunPublic:
    """Execute a recorded run to its end and record the outcome, whatever it is."""
    from core.errors import DomainError
    from core.jobs import JobCancelled

    run = session.get(TrainingRun, run_id)
    run.status, run.started_at = RunStatus.running, utcnow()
    session.add(run)
    session.commit()
    try:
        outcome = execute_run(session=session, settings=settings, run_id=run_id, progress=progress)
    except JobCancelled:
        fail_run(session=session, run_id=run_id, reason="Cancelled by the user.", status=RunStatus.cancelled)
        raise
    except DomainError as error:
        fail_run(session=session, run_id=run_id, reason=str(error))
        raise
    except Exception as error:
        fail_run(session=session, run_id=run_id, reason=f"Training stopped because of an unexpected problem "
                                                        f"({type(error).__name__}: {error}).")
        raise
    finish_run(session=session, run_id=run_id, outcome=outcome, actor=actor)
    return _public(session, session.get(TrainingRun, run_id))


def training_job(ctx) -> dict[str, Any]:
    """Job ``training.run``."""
    from core.config import get_settings

    with ctx.session() as session:
        run = run_training(session=session, settings=get_settings(), run_id=ctx.params["run_id"], actor=ctx.actor,
                           progress=ctx.progress)
    return {"run_id": run.id, "chosen": run.chosen_candidate}


# ── reading back ────────────────────────────────────────────────────────────────────────────────────


def _abandoned_by(session: Session, job_id: int | None):
    """The job, when it ended (failed or cancelled) without finishing what it was started for."""
    from core.models import Job, JobStatus

    job = session.get(Job, job_id) if job_id is not None else None
    return job if job is not None and job.status in (JobStatus.failed, JobStatus.cancelled) else None


def _settle(session: Session, run: TrainingRun) -> TrainingRun:
    """End a queued or running run whose job has ended: its worker crashed or the server restarted mid-run.

    The job function records the run's outcome before the job's, so an ended job with an unfinished run means the
    function never got there; without this the run would show "running" forever.
    """
    job = _abandoned_by(session, run.job_id) if run.status in (RunStatus.queued, RunStatus.running) else None
    if job is None:
        return run
    cancelled = job.status == "cancelled"
    run.status = RunStatus.cancelled if cancelled else RunStatus.failed
    run.error = "Cancelled by the user." if cancelled else (job.error or "The training job stopped.")
    run.finished_at = utcnow()
    session.add(run)
    audit.record_event(session, actor=None, action=f"training.run.{run.status}", entity_type="training_run",
                       entity_id=run.id, details={"error": run.error, "job": job.id})
    session.commit()
    return run


def get_run(*, session: Session, run_id: int) -> TrainingRunPublic:
    run = session.get(TrainingRun, run_id)
    if run is None:
        raise NotFound(f"There is no training run {run_id}.")
    return _public(session, _settle(session, run))


def list_runs(*, session: Session, project_id: int) -> list[TrainingRunPublic]:
    query = select(TrainingRun).where(TrainingRun.project_id == project_id).order_by(col(TrainingRun.id).desc())
    return [_public(session, _settle(session, run)) for run in session.exec(query).all()]


def load_run_model(*, settings: Settings, run: TrainingRunPublic):
    if run.model_sha256 is None:
        raise InvalidInput(f"Run {run.id} has no model (it did not finish).")
    return load_model(ArtifactStore(settings.artifacts_path), run.model_sha256)


def load_test_set(*, settings: Settings, run: TrainingRunPublic) -> pd.DataFrame:
    path = ArtifactStore(settings.artifacts_path).verified_path(run.test_set_sha256)
    return pd.read_parquet(path)


# ── reproducibility ─────────────────────────────────────────────────────────────────────────────────


def start_reproduction(*, session: Session, runner, actor: UserPublic, run_id: int) -> RunCertificatePublic:
    """Re-execute a finished run as a job; the certificate says whether the predictions are identical."""
    from core import jobs

    run = get_run(session=session, run_id=run_id)
    if run.status != RunStatus.succeeded:
        raise InvalidInput(f"Run {run_id} did not finish successfully, so there is nothing to reproduce.")
    certificate = RunCertificate(run_id=run_id, original_hash=run.prediction_hash, created_by_id=actor.id or None)
    session.add(certificate)
    session.flush()
    if runner is not None:  # without a runner (the CLI) the caller reproduces in its own process, no job
        job = jobs.create_job(session=session, actor=actor, kind="training.reproduce",
                              params={"certificate_id": certificate.id}, title=f"Reproducing run {run_id}",
                              project_id=run.project_id)
        certificate.job_id = job.id
        session.add(certificate)
    audit.record_event(session, actor=actor, action="training.reproduce.start", entity_type="training_run",
                       entity_id=run_id, details={"certificate": certificate.id})
    session.commit()
    if runner is not None:
        runner.start(certificate.job_id)
    return RunCertificatePublic.model_validate(certificate, from_attributes=True)


def reproduce(*, session: Session, settings: Settings, certificate_id: int, actor: UserPublic | None,
              progress=None) -> RunCertificatePublic:
    """Re-run exactly the finished candidates of the original run and compare the outcome."""
    certificate = session.get(RunCertificate, certificate_id)
    run = session.get(TrainingRun, certificate.run_id)
    try:
        again = execute_run(session=session, settings=settings, run_id=run.id, progress=progress,
                            only=list(run.finished_candidates), persist=False)
    except Exception as error:
        session.rollback()
        certificate.status, certificate.finished_at = "failed", utcnow()
        certificate.differences = {"error": f"The re-run stopped: {error}"}
        session.add(certificate)
        session.commit()
        raise
    differences: dict[str, Any] = {}
    if again["chosen"] != run.chosen_candidate:
        differences["chosen"] = {"original": run.chosen_candidate, "reproduced": again["chosen"]}
    original_scores = {row["candidate"]: row["mean"] for row in run.leaderboard}
    changed = {row["candidate"]: {"original": original_scores.get(row["candidate"]), "reproduced": row["mean"]}
               for row in again["leaderboard"] if original_scores.get(row["candidate"]) != row["mean"]}
    if changed:
        differences["cross_validation"] = changed
    now_env = environment()
    if now_env["packages"] != run.environment.get("packages"):
        differences["environment"] = {"original": run.environment.get("packages"), "now": now_env["packages"]}
    passed = again["prediction_hash"] == run.prediction_hash
    certificate.status = "passed" if passed else "failed"
    certificate.reproduced_hash, certificate.differences = again["prediction_hash"], differences
    certificate.finished_at = utcnow()
    session.add(certificate)
    audit.record_event(session, actor=actor, action=f"training.reproduce.{certificate.status}",
                       entity_type="training_run", entity_id=run.id,
                       details={"certificate": certificate.id, "reproduced_hash": again["prediction_hash"]})
    session.commit()
    return RunCertificatePublic.model_validate(certificate, from_attributes=True)


def reproduction_job(ctx) -> dict[str, Any]:
    """Job ``training.reproduce``."""
    from core.config import get_settings

    with ctx.session() as session:
        certificate = reproduce(session=session, settings=get_settings(), certificate_id=ctx.params["certificate_id"],
                                actor=ctx.actor, progress=ctx.progress)
    return {"certificate_id": certificate.id, "status": certificate.status}


def latest_certificate(*, session: Session, run_id: int) -> RunCertificatePublic | None:
    found = session.exec(select(RunCertificate).where(RunCertificate.run_id == run_id)
                         .order_by(col(RunCertificate.id).desc())).first()
    job = _abandoned_by(session, found.job_id) if found is not None and found.status == "running" else None
    if job is not None:  # the re-run's worker crashed or the server restarted: it will never finish
        found.status, found.finished_at = "failed", utcnow()
        found.differences = {"error": f"The re-run stopped: {job.error or 'it was cancelled.'}"}
        session.add(found)
        session.commit()
    return RunCertificatePublic.model_validate(found, from_attributes=True) if found else None


# ── evaluation on other data ────────────────────────────────────────────────────────────────────────


def evaluate_on_file(*, session: Session, settings: Settings, actor: UserPublic, run_id: int, filename: str,
                     data: bytes) -> RunEvaluationPublic:
    """Evaluate a run's model on another labelled file, with the same metrics, intervals and subgroups."""
    from core.data.reading import ReadOptions, read_table
    from core.data.schema import apply_types

    run = get_run(session=session, run_id=run_id)
    version = datasets.get_version(session=session, version_id=run.dataset_version_id)
    raw = read_table(data, filename, limits=datasets.limits(settings), options=ReadOptions())
    needed = [run.target, *run.feature_types]
    missing = [name for name in needed if name not in raw.frame.columns]
    if missing:
        raise InvalidInput(f"The file lacks column(s) the model needs: {', '.join(missing)}.")
    wanted = {name: version.types[name] for name in dict.fromkeys(needed + version.sensitive_columns)
              if name in raw.frame.columns}
    frame = apply_types(raw.frame[list(wanted)], wanted, raw.decimal)
    return _evaluate_frame(session=session, settings=settings, actor=actor, run=run, frame=frame,
                           sensitive=[n for n in version.sensitive_columns if n in frame.columns],
                           source=Path(filename).name, source_sha256=hashlib.sha256(data).hexdigest())


def evaluate_on_version(*, session: Session, settings: Settings, actor: UserPublic, run_id: int,
                        version_id: int) -> RunEvaluationPublic:
    """Evaluate a run's model on a stored dataset version with the same target."""
    run = get_run(session=session, run_id=run_id)
    other = datasets.get_version(session=session, version_id=version_id)
    frame = datasets.load_frame(settings=settings, version=other)
    missing = [name for name in [run.target, *run.feature_types] if name not in frame.columns]
    if missing:
        raise InvalidInput(f"{other.dataset_name} version {other.number} lacks column(s) the model needs: "
                           f"{', '.join(missing)}.")
    return _evaluate_frame(session=session, settings=settings, actor=actor, run=run, frame=frame,
                           sensitive=other.sensitive_columns, source=f"{other.dataset_name} v{other.number}",
                           source_sha256=other.sha256)


def _evaluate_frame(*, session, settings, actor, run: TrainingRunPublic, frame: pd.DataFrame, sensitive: list[str],
                    source: str, source_sha256: str) -> RunEvaluationPublic:
    require_role(actor, Role.builder, Role.reviewer, Role.manager, Role.admin)
    labels = _labels(frame[run.target], run.task)
    known = labels.notna()
    if not known.any():
        raise InvalidInput(f"The target {run.target!r} is empty in every row, so the model cannot be evaluated.")
    model = load_run_model(settings=settings, run=run)
    x = frame.loc[known, list(run.feature_types)]
    y = labels[known].to_numpy()
    predicted = model.predict(x)
    proba = model.predict_proba(x) if run.classes else None
    groups = {name: frame.loc[known, name] for name in sensitive}
    result = evaluation.evaluate(run.task, y, predicted, proba, run.classes, groups=groups, seed=run.seed)
    row = RunEvaluation(run_id=run.id, source=source[:255], source_sha256=source_sha256, rows=int(known.sum()),
                        result=result, created_by_id=actor.id)
    session.add(row)
    session.flush()
    audit.record_event(session, actor=actor, action="training.run.evaluate", entity_type="training_run",
                       entity_id=run.id, details={"source": source, "sha256": source_sha256, "rows": row.rows})
    session.commit()
    return RunEvaluationPublic.model_validate(row, from_attributes=True)


def list_evaluations(*, session: Session, run_id: int) -> list[RunEvaluationPublic]:
    query = select(RunEvaluation).where(RunEvaluation.run_id == run_id).order_by(col(RunEvaluation.id).desc())
    return [RunEvaluationPublic.model_validate(row, from_attributes=True) for row in session.exec(query)]


def set_thresholds(*, session: Session, actor: UserPublic, run_id: int, decision_threshold: float | None = None,
                   coding_threshold: float | None = None) -> TrainingRunPublic:
    """Choose the binary decision threshold or the auto-coding threshold of a run."""
    require_role(actor, Role.builder, Role.admin)
    run = session.get(TrainingRun, run_id)
    if run is None:
        raise NotFound(f"There is no training run {run_id}.")
    for value in (decision_threshold, coding_threshold):
        if value is not None and not 0 <= value <= 1:
            raise InvalidInput("A threshold is a probability between 0 and 1.")
    before = {"decision": run.decision_threshold, "coding": run.coding_threshold}
    if decision_threshold is not None:
        run.decision_threshold = float(decision_threshold)
    if coding_threshold is not None:
        run.coding_threshold = float(coding_threshold)
    session.add(run)
    audit.record_event(session, actor=actor, action="training.run.thresholds", entity_type="training_run",
                       entity_id=run.id, details={"before": before, "after": {"decision": run.decision_threshold,
                                                                              "coding": run.coding_threshold}})
    session.commit()
    return _public(session, run)


def decision_threshold_effect(*, run: TrainingRunPublic, test: pd.DataFrame, threshold: float) -> dict[str, Any]:
    """What a binary model's decisions on its test set (``load_test_set``) would be at ``threshold``."""
    if run.task != "binary":
        raise InvalidInput("A decision threshold applies to yes/no (binary) models only.")
    positive = run.classes[1]
    return evaluation.threshold_effect(test["__target__"].to_numpy(), test[f"__proba__{positive}"].to_numpy(),
                                       positive, threshold)


# ── explanations ────────────────────────────────────────────────────────────────────────────────────


def get_explanation(*, session: Session, run_id: int) -> ExplanationPublic:
    found = session.exec(select(Explanation).where(Explanation.run_id == run_id)).first()
    if found is None:
        raise NotFound(f"Run {run_id} has no explanation (it did not finish).")
    return ExplanationPublic.model_validate(found, from_attributes=True)


def find_test_records(*, run: TrainingRunPublic, test: pd.DataFrame, order: str = "largest error",
                      search: str = "", limit: int = 50) -> pd.DataFrame:
    """Records of the test set (``load_test_set``) to explain: by largest error, most confident, or by a value."""
    features = list(run.feature_types)
    if search:
        text = test[features].astype("string").fillna("")
        test = test[text.apply(lambda column: column.str.contains(search, case=False, regex=False)).any(axis=1)]
    if run.task == "regression":
        score = (test["__target__"] - test["__predicted__"]).abs()
        key = score if order == "largest error" else -score
    else:
        proba = test[[f"__proba__{c}" for c in run.classes]].to_numpy()
        confidence = proba.max(axis=1)
        truth = test["__target__"].astype(str).map({c: i for i, c in enumerate(run.classes)}).fillna(-1).astype(int)
        true_probability = np.where(truth >= 0, proba[np.arange(len(test)), truth.clip(0)], 0.0)
        key = pd.Series(1 - true_probability if order == "largest error" else confidence, index=test.index)
    chosen = test.loc[key.sort_values(ascending=False, kind="stable").index[:limit]]
    return chosen[features + ["__target__", "__predicted__"]].rename(
        columns={"__target__": "actual", "__predicted__": "predicted"})


def explain_record(*, settings: Settings, run: TrainingRunPublic, model, test: pd.DataFrame,
                   record: pd.DataFrame) -> dict[str, Any]:
    """The local explanation of one record (a test-set row or one typed in); it stays in the app.

    ``model`` and ``test`` are the run's model and test set (``load_run_model``, ``load_test_set``): the caller
    loads them once, as they never change.
    """
    from core import explain

    missing = [name for name in run.feature_types if name not in record.columns]
    if missing:
        raise InvalidInput(f"The record lacks column(s) the model needs: {', '.join(missing)}.")
    background = test[list(run.feature_types)]
    return explain.explain_record(model, record[list(run.feature_types)],
                                  background.sample(min(len(background), settings.explain_background_rows),
                                                    random_state=run.seed),
                                  task=run.task, classes=run.classes, seed=run.seed)


def export_record_explanation(*, session: Session, actor: UserPublic, run_id: int,
                              explanation: dict[str, Any]) -> bytes:
    """A single record's explanation as JSON, for builders and administrators only, and audited.

    Record-level explanations otherwise stay inside the app (disclosure control).
    """
    import json

    require_role(actor, Role.builder, Role.admin)
    get_run(session=session, run_id=run_id)
    audit.record_event(session, actor=actor, action="explanation.record.export", entity_type="training_run",
                       entity_id=run_id, details={"predicted": str(explanation.get("predicted")),
                                                  "features": [s["feature"] for s in explanation.get("steps", [])]})
    session.commit()
    return json.dumps({"run_id": run_id, **explanation}, indent=2, default=str).encode()


def record_form_fields(*, run: TrainingRunPublic, test: pd.DataFrame) -> list[dict[str, Any]]:
    """What a form for typing in one record needs: each input column's type, choices and a typical value."""
    fields = []
    for name, kind in run.feature_types.items():
        column = test[name]
        if kind in (ColumnType.numeric, ColumnType.datetime) and pd.api.types.is_numeric_dtype(column):
            fields.append({"name": name, "kind": "number", "default": float(column.median())
                           if column.notna().any() else 0.0})
        elif kind in (ColumnType.categorical, ColumnType.boolean):
            choices = sorted(column.dropna().astype(str).unique().tolist())[:200]
            fields.append({"name": name, "kind": "choice", "choices": choices,
                           "default": str(column.mode().iloc[0]) if column.notna().any() else None})
        else:
            fields.append({"name": name, "kind": "text", "default": ""})
    return fields


def record_from_form(*, run: TrainingRunPublic, values: dict[str, Any]) -> pd.DataFrame:
    """One typed-in record in the canonical form the model expects."""
    from core.data.schema import apply_types

    raw = pd.DataFrame([{name: values.get(name) for name in run.feature_types}])
    return apply_types(raw.astype(object), dict(run.feature_types))
