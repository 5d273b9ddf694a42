"""The search's cross-validation and its budget: scores as scikit-learn defines them, out-of-fold outputs for
ensembles, a guess of each candidate's time by kind, and a candidate stopped when the budget runs out."""

from __future__ import annotations

import time
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate

from core.data.reading import ReadLimits, ReadOptions, read_path
from core.data.schema import apply_types, infer_types
from core.training import runs, search
from core.training.candidates import build_pipeline, candidates_for
from core.training.features import model_types

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"


@cache
def problem(name: str, target: str, task: str, rows: int = 300):
    raw = read_path(SAMPLES / name, name, limits=ReadLimits(max_bytes=50_000_000), options=ReadOptions(nrows=rows))
    types = {column: str(kind) for column, kind in infer_types(raw.frame, raw.decimal).items()}
    frame = apply_types(raw.frame, types, raw.decimal)
    labels = runs._labels(frame[target], task)
    features = model_types(types, target)
    return frame[list(features)], labels, features


def candidate(task: str, name: str):
    return next(c for c in candidates_for(task) if c.name == name)


def evaluate(task: str, name: str, metric: str, data: tuple[str, str], deadline: float | None = None):
    x, y, types = problem(*data, task)
    splitter = KFold(5, shuffle=True, random_state=0) if task == "regression" else StratifiedKFold(
        5, shuffle=True, random_state=0)
    folds = list(splitter.split(x, y))
    classes = None if task == "regression" else list(np.unique(y.to_numpy()))
    chosen = candidate(task, name)
    found = search.cross_validate_candidate(chosen, build_pipeline(chosen, types, 0), x, y, folds, task=task,
                                            metric=metric, classes=classes, deadline=deadline)
    return found, x, y, types, splitter, folds


# ── scores and out-of-fold outputs ──────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(("task", "name", "metric", "scorer", "data"), [
    ("binary", "logistic_regression", "roc_auc", "roc_auc", ("labour_force.csv", "employed")),
    ("binary", "gradient_boosting", "log_loss", "neg_log_loss", ("labour_force.csv", "employed")),
    ("regression", "ridge", "rmse", "neg_root_mean_squared_error", ("house_prices.csv", "price_eur")),
])
def test_fold_scores_are_those_of_scikit_learns_scorers(task, name, metric, scorer, data):
    found, x, y, types, splitter, _folds = evaluate(task, name, metric, data)
    reference = cross_validate(build_pipeline(candidate(task, name), types, 0), x, y, cv=splitter, scoring=scorer)

    sign = -1 if scorer.startswith("neg_") else 1
    assert np.allclose(found.scores, sign * reference["test_score"], rtol=1e-9)
    assert len(found.fit_seconds) == 5 and found.wall_seconds > 0


def test_the_f1_of_a_yes_no_target_is_that_of_its_second_class():
    # scikit-learn's "f1" scorer looks for the label 1 and refuses "true"/"false"; Steward scores classes[1].
    found, x, y, types, _splitter, folds = evaluate("binary", "logistic_regression", "f1",
                                                    ("labour_force.csv", "employed"))
    expected = []
    for train, valid in folds:
        model = build_pipeline(candidate("binary", "logistic_regression"), types, 0).fit(x.iloc[train], y.iloc[train])
        expected.append(f1_score(y.iloc[valid], model.predict(x.iloc[valid]), pos_label="true"))
    assert np.allclose(found.scores, expected)


@pytest.mark.parametrize(("task", "name", "scale", "data"), [
    ("binary", "gradient_boosting", "log-odds", ("labour_force.csv", "employed")),
    ("binary", "random_forest", "probability", ("labour_force.csv", "employed")),
    ("regression", "ridge", "value", ("house_prices.csv", "price_eur")),
])
def test_each_fold_keeps_its_validation_rows_outputs_on_the_candidates_scale(task, name, scale, data):
    found, x, y, types, _splitter, folds = evaluate(task, name, "rmse" if task == "regression" else "roc_auc", data)
    train, valid = folds[2]
    model = build_pipeline(candidate(task, name), types, 0).fit(x.iloc[train], y.iloc[train])
    expected = {"log-odds": lambda rows: model.decision_function(rows)[:, None],
                "probability": lambda rows: model.predict_proba(rows),
                "value": lambda rows: model.predict(rows)}[scale](x.iloc[valid])

    assert found.scale == scale
    assert np.allclose(found.outputs[2], expected, rtol=1e-9)
    # Scoring the kept outputs gives the fold's score again: what ensembles are compared with.
    metric = "rmse" if task == "regression" else "roc_auc"
    classes = None if task == "regression" else list(np.unique(y))
    assert search.fold_score(task, metric, y.iloc[valid].to_numpy(), found.outputs[2], scale, classes) == (
        pytest.approx(found.scores[2], rel=1e-12))


# ── the budget ──────────────────────────────────────────────────────────────────────────────────────


def test_a_candidate_still_running_when_the_budget_ends_is_stopped_and_the_workers_come_back():
    with pytest.raises(search.OutOfTime):  # 300 trees on five folds do not fit in 50 ms
        evaluate("regression", "random_forest", "rmse", ("house_prices.csv", "price_eur"),
                 deadline=time.monotonic() + 0.05)

    found, *_rest = evaluate("regression", "ridge", "rmse", ("house_prices.csv", "price_eur"))
    assert len(found.scores) == 5 and np.isfinite(found.scores).all()  # new workers took over


def _measured(name: str, task: str, fold_seconds: float, iterations: float | None = None) -> tuple:
    evaluated = search.Evaluated(name=name, scale="value", scores=[1.0], outputs=[], fold_seconds=fold_seconds,
                                 wall_seconds=3 * fold_seconds + 0.5, iterations=iterations)
    return candidate(task, name), evaluated


def test_a_candidate_is_guessed_from_its_own_kind_by_effort():
    costs = search.CostModel(task="binary", rows=40_000, inputs=15, width=105, folds=5)
    costs.record(*_measured("gradient_boosting", "binary", fold_seconds=6.0, iterations=100))

    slow = costs.estimate(candidate("binary", "gradient_boosting_slow"))
    default = costs.estimate(candidate("binary", "gradient_boosting"))
    assert default == pytest.approx(0.5 + 3 * 6.0)  # what it took: its overhead and three rounds of two folds
    assert 1.5 * default < slow < 2.5 * default  # up to twice the rounds


def test_a_forest_is_guessed_from_the_boosting_measured_and_grows_faster_with_rows():
    estimates = {}
    for task in ("binary", "regression"):
        for rows in (2_000, 40_000):
            costs = search.CostModel(task=task, rows=rows, inputs=15, width=105, folds=5)
            fold = search.predicted_seconds(candidate(task, "gradient_boosting"), task, rows, 15, 105, 100)
            costs.record(*_measured("gradient_boosting", task, fold_seconds=fold, iterations=100))
            estimates[task, rows] = costs.estimate(candidate(task, "random_forest")) / costs.estimate(
                candidate(task, "gradient_boosting"))

    # Trees grow with rows × log(rows); boosting with rows: the forest's share grows with the data.
    assert estimates["binary", 40_000] > estimates["binary", 2_000] > 1
    # A regression forest tries every column at each split, a classifier √columns: far slower on wide data.
    assert estimates["regression", 40_000] > 5 * estimates["binary", 40_000]


def test_nothing_is_guessed_before_a_first_candidate_finished():
    costs = search.CostModel(task="binary", rows=1_000, inputs=5, width=20, folds=5)
    assert costs.estimate(candidate("binary", "random_forest")) == 0.0


def test_the_width_counts_one_hot_levels_and_missing_indicators():
    x, _y, types = problem("labour_force.csv", "employed", "binary")
    width = search.transformed_width(types, x)
    pipeline = build_pipeline(candidate("binary", "gradient_boosting"), types, 0)
    actual = pipeline[:-1].fit_transform(x).shape[1]
    assert abs(width - actual) <= 0.2 * actual
