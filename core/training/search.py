"""The search's cross-validation: fold scores and out-of-fold outputs per candidate, and its time budget.

Every candidate is cross-validated on the same folds, in two worker processes. Each fold returns its validation
rows' predictions, so the run can score averaging ensembles of the best candidates without fitting anything again
(:mod:`core.training.ensemble`). Single candidates and ensembles are scored by one function,
:func:`fold_score`, with the definitions of :mod:`core.training.evaluation`.

The budget: before a candidate starts, :class:`CostModel` estimates its time from what the candidates finished so
far measured, per kind of model (linear, boosting, forest) and scaled by the work its kind does on these rows; a
candidate that would not fit in the time left is not started. A candidate already running when the budget runs
out is stopped (its worker processes are ended), so the search ends within the budget; the first candidate always
finishes, whatever the budget.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from core.data.schema import ColumnType
from core.training import evaluation
from core.training.candidates import Candidate
from core.training.ensemble import FoldOutputs, as_margins, margins_to_proba
from core.training.features import CATEGORICAL, MAX_ONE_HOT_CATEGORIES

WORKERS = 2
# A fold fit takes about FIXED × effort + SECONDS_PER_WORK × work seconds (see ``work``): a fixed cost per tree
# or iteration, which dominates on small data, plus one that grows with rows and columns. Measured on this
# project's 2-core machines on 256-40,000 rows; the budget rescales them by what the finished candidates took, so
# only their proportions matter, to guess a kind's time before the first of it has run.
FIXED_SECONDS = {"linear": 0.002, "boosting": 0.005, "forest": 0.005}
PREPARE_SECONDS = (0.05, 2e-6)  # preparing and preprocessing the rows: fixed, and per row and input column
SECONDS_PER_WORK = {"linear": 1.4e-8, "boosting": 1.4e-8, "forest": 1.4e-8}
GUESS_MARGIN = 1.5      # a guess across kinds is rough: keep room for it


def warm_up() -> None:
    """Runs once in each worker before the search: the imports the first candidate would otherwise pay for."""
    import core.training.candidates  # noqa: F401 - imports scikit-learn's models and pandas

    time.sleep(0.2)  # long enough that each of the two workers takes one of the two warm-up tasks


class OutOfTime(Exception):
    """The budget ran out while a candidate was being cross-validated; it was stopped and is not recorded."""


# ── one candidate's cross-validation ────────────────────────────────────────────────────────────────


def scale_of(candidate: Candidate, task: str) -> str:
    """The scale an ensemble averages this candidate's outputs on (that of its SHAP values)."""
    if task == "regression":
        return "value"
    return "probability" if candidate.kind == "forest" else "log-odds"


def _fit_fold(pipeline, x: pd.DataFrame, y: pd.Series, train: np.ndarray, valid: np.ndarray, task: str,
              margins: bool) -> dict[str, Any]:
    """Runs in a worker: fit on the fold's training rows, predict its validation rows."""
    start = time.perf_counter()
    pipeline.fit(x.iloc[train], y.iloc[train])
    fitted = time.perf_counter()
    rows = x.iloc[valid]
    found: dict[str, Any] = {"predicted": pipeline.predict(rows)}
    if task != "regression":
        found["classes"] = list(pipeline.classes_)
        found["proba"] = pipeline.predict_proba(rows)
        if margins:
            found["margins"] = as_margins(pipeline.decision_function(rows))
    iterations = getattr(pipeline.steps[-1][1], "n_iter_", None)
    found["iterations"] = None if iterations is None else float(np.max(iterations))
    found["fit_seconds"], found["seconds"] = fitted - start, time.perf_counter() - start
    return found


def _align(proba: np.ndarray, fold_classes: list, classes: list) -> np.ndarray:
    """Probability columns in the order of ``classes`` (0 for a class the fold's training rows lacked)."""
    out = np.zeros((proba.shape[0], len(classes)))
    for position, name in enumerate(fold_classes):
        out[:, classes.index(name)] = proba[:, position]
    return out


def fold_score(task: str, metric: str, y_valid: np.ndarray, outputs: np.ndarray, scale: str | None,
               classes: list | None, predicted: np.ndarray | None = None) -> float:
    """The metric on one fold from outputs on a scale (``"value"``, ``"log-odds"`` margins, ``"probability"``).

    ``predicted`` labels default to the most probable class, which is what every candidate's ``predict`` gives.
    """
    if task == "regression":
        value = evaluation.compute_metrics(task, y_valid, outputs)[metric]
    else:
        proba = margins_to_proba(outputs) if scale == "log-odds" else outputs
        if predicted is None:
            predicted = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
        value = evaluation.compute_metrics(task, y_valid, predicted, proba, classes)[metric]
    return math.nan if value is None else float(value)


@dataclass
class Evaluated(FoldOutputs):
    """A candidate's cross-validation, with what the budget needs to know about its cost."""

    wall_seconds: float = 0.0               # the whole cross-validation, as the budget sees it
    fold_seconds: float = 0.0               # one fold's fit and predictions, in a worker (mean over folds)
    iterations: float | None = None         # the most iterations a fold's fit made (linear models, boosting)


def _stop_workers_now() -> None:
    from joblib.externals.loky import reusable_executor

    executor = getattr(reusable_executor, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=False, kill_workers=True)


def cross_validate_candidate(candidate: Candidate, pipeline, x: pd.DataFrame, y: pd.Series,
                             folds: Sequence[tuple[np.ndarray, np.ndarray]], *, task: str, metric: str,
                             classes: list | None, deadline: float | None = None) -> Evaluated:
    """Fit and score ``pipeline`` on every fold in two workers; stopped with :class:`OutOfTime` at ``deadline``.

    ``deadline`` is a ``time.monotonic()`` moment; without one the candidate always finishes.
    """
    from joblib import Parallel, delayed

    scale = scale_of(candidate, task)
    started = time.monotonic()
    stopped = threading.Event()

    def stop() -> None:
        stopped.set()
        _stop_workers_now()

    timer = threading.Timer(max(deadline - started, 0.0), stop) if deadline is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        results = Parallel(n_jobs=WORKERS)(
            delayed(_fit_fold)(clone(pipeline), x, y, train, valid, task, scale == "log-odds")
            for train, valid in folds)
    except Exception as error:
        if stopped.is_set():
            raise OutOfTime(candidate.name) from error
        raise
    finally:
        if timer is not None:
            timer.cancel()
    scores, outputs = [], []
    for (_train, valid), found in zip(folds, results, strict=True):
        y_valid = y.iloc[valid].to_numpy()
        if task == "regression":
            outputs.append(np.asarray(found["predicted"], dtype=float))
            scores.append(fold_score(task, metric, y_valid, outputs[-1], "value", None))
            continue
        complete = found["classes"] == list(classes)
        proba = found["proba"] if complete else _align(found["proba"], found["classes"], list(classes))
        scores.append(fold_score(task, metric, y_valid, proba, "probability", classes,
                                 predicted=np.asarray(found["predicted"], dtype=object)))
        if not complete:
            scale = None  # its margins do not line up with the other candidates': keep it out of ensembles
        outputs.append(found["margins"] if scale == "log-odds" else proba)
    if all(math.isnan(s) for s in scores):
        raise ValueError(f"{metric} could not be computed on any cross-validation fold")
    if any(math.isnan(s) for s in scores):
        scale = None  # an ensemble is compared fold by fold: only with every fold scored
    return Evaluated(name=candidate.name, scale=scale, scores=scores, outputs=outputs,
                     fit_seconds=[r["fit_seconds"] for r in results], wall_seconds=time.monotonic() - started,
                     fold_seconds=float(np.mean([r["seconds"] for r in results])),
                     iterations=max((r["iterations"] for r in results if r["iterations"] is not None), default=None))


# ── the budget ──────────────────────────────────────────────────────────────────────────────────────


def transformed_width(types: dict[str, str], x: pd.DataFrame) -> int:
    """About how many columns the (non-text) preprocessing makes of these rows: what tree and linear fits scale with."""
    width = 0
    for name, kind in types.items():
        missing = int(bool(x[name].isna().any()))
        if kind in (ColumnType.numeric, ColumnType.datetime):
            width += 1 + missing
        elif kind in CATEGORICAL:
            width += min(int(x[name].nunique()), MAX_ONE_HOT_CATEGORIES) + missing
    return max(width, 1)


def work(candidate: Candidate, task: str, rows: int, width: int, iterations: float | None = None) -> float:
    """Units of work of one fold fit beyond its fixed cost: what its time grows with, by kind of model.

    Linear models and boosting: rows × columns × iterations (measured, or the candidate's usual ``effort``);
    forests: trees (``effort``) × rows × log2(rows) × the columns tried per split (all of them for regression,
    √columns for classification).
    """
    if candidate.kind == "forest":
        tried = width if task == "regression" else math.sqrt(width)
        return candidate.effort * rows * math.log2(max(rows, 2)) * tried
    return rows * width * (iterations or candidate.effort)


def predicted_seconds(candidate: Candidate, task: str, rows: int, inputs: int, width: int,
                      iterations: float | None = None) -> float:
    """A fold's seconds (fit and predictions) on a reference machine (see ``FIXED_SECONDS``)."""
    return (PREPARE_SECONDS[0] + PREPARE_SECONDS[1] * rows * inputs
            + FIXED_SECONDS[candidate.kind] * (iterations or candidate.effort)
            + SECONDS_PER_WORK[candidate.kind] * work(candidate, task, rows, width, iterations))


@dataclass
class CostModel:
    """Guesses a candidate's time from the finished ones: per kind when one of its kind ran, else across kinds.

    What a finished candidate took against what :func:`predicted_seconds` expected says how fast this machine is
    now (busy or not) for that kind of model; the candidate's own prediction is scaled by the slowest ratio of its
    kind, or, before one of its kind has run, by the median ratio of the others with a margin.
    """

    task: str
    rows: int                    # training rows of one fold
    inputs: int                  # input columns
    width: int                   # columns after preprocessing (see ``transformed_width``)
    folds: int
    measured: list[tuple[Candidate, Evaluated]] = field(default_factory=list)

    def record(self, candidate: Candidate, evaluated: Evaluated) -> None:
        self.measured.append((candidate, evaluated))

    def _overhead(self) -> float:
        """Seconds a candidate costs beyond its folds' fits: sending the data, collecting results."""
        rounds = math.ceil(self.folds / WORKERS)
        return max(0.0, min(e.wall_seconds - rounds * e.fold_seconds for _c, e in self.measured))

    def _slowness(self, candidate: Candidate, evaluated: Evaluated) -> float:
        expected = predicted_seconds(candidate, self.task, self.rows, self.inputs, self.width, evaluated.iterations)
        return evaluated.fold_seconds / expected

    def estimate(self, candidate: Candidate) -> float:
        """Seconds the candidate's cross-validation will probably take (0 before anything was measured)."""
        if not self.measured:
            return 0.0
        same = [self._slowness(c, e) for c, e in self.measured if c.kind == candidate.kind]
        slowness = max(same) if same else GUESS_MARGIN * float(np.median([self._slowness(c, e)
                                                                            for c, e in self.measured]))
        per_fold = slowness * predicted_seconds(candidate, self.task, self.rows, self.inputs, self.width)
        return self._overhead() + math.ceil(self.folds / WORKERS) * per_fold
