"""Averaging ensembles: each predicts the average of its members on their common scale, and one is formed only when
the out-of-fold score says it beats its best member."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from core.data.reading import ReadLimits, ReadOptions, read_path
from core.data.schema import apply_types, infer_types
from core.training import ensemble, runs
from core.training.candidates import build_ensemble, build_pipeline, candidates_for
from core.training.ensemble import FoldOutputs, select_ensembles
from core.training.features import model_types

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
SEED = 5


@cache
def problem(name: str, target: str, task: str, rows: int = 400):
    raw = read_path(SAMPLES / name, name, limits=ReadLimits(max_bytes=50_000_000), options=ReadOptions(nrows=rows))
    types = {column: str(kind) for column, kind in infer_types(raw.frame, raw.decimal).items()}
    frame = apply_types(raw.frame, types, raw.decimal)
    labels = runs._labels(frame[target], task)
    features = model_types(types, target)
    return frame[list(features)], labels, features


def pick(task: str, *names: str):
    pool = {c.name: c for c in candidates_for(task)}
    return [pool[name] for name in names]


# ── the fitted ensemble ─────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(("task", "data", "names", "scale"), [
    ("regression", ("house_prices.csv", "price_eur"), ("ridge", "gradient_boosting"), "value"),
    ("binary", ("labour_force.csv", "employed"), ("logistic_regression", "gradient_boosting"), "log-odds"),
    ("binary", ("labour_force.csv", "employed"), ("random_forest", "extra_trees"), "probability"),
])
def test_an_ensemble_predicts_the_average_of_its_members_on_their_scale(task, data, names, scale):
    x, y, types = problem(*data, task)
    members = pick(task, *names)
    model = build_ensemble(members, types, SEED, task=task, scale=scale).fit(x, y)
    alone = [build_pipeline(c, types, SEED).fit(x, y) for c in members]

    if scale == "value":
        expected = np.mean([m.predict(x) for m in alone], axis=0)
        assert np.allclose(model.predict(x), expected, rtol=1e-12)
        return
    if scale == "log-odds":  # averaged log-odds, then the logistic function
        margins = np.mean([m.decision_function(x) for m in alone], axis=0)
        assert np.allclose(model.decision_function(x), margins, rtol=1e-12)
        expected = np.column_stack([1 / (1 + np.exp(margins)), 1 / (1 + np.exp(-margins))])
    else:  # soft voting
        expected = np.mean([m.predict_proba(x) for m in alone], axis=0)
    proba = model.predict_proba(x)
    assert np.allclose(proba, expected, rtol=1e-12) and np.allclose(proba.sum(axis=1), 1)
    assert list(model.classes_) == list(alone[0].classes_)
    assert (model.predict(x) == model.classes_[proba.argmax(axis=1)]).all()
    # The members differ, so the average is a new model, not one of them.
    assert not np.allclose(alone[0].predict_proba(x), alone[1].predict_proba(x))


def test_members_with_the_same_preprocessing_share_one_fitted_preprocessor():
    x, y, types = problem("house_prices.csv", "price_eur", "regression")
    model = build_ensemble(pick("regression", "gradient_boosting", "ridge", "random_forest"), types, SEED,
                           task="regression", scale="value").fit(x, y)
    average = model.named_steps["model"]
    preprocessors = [member.named_steps["preprocess"] for _name, member in average.members_]

    assert average.preprocessor_of_ == [0, 1, 0]  # ridge scales its numbers; the trees do not
    assert preprocessors[0] is preprocessors[2] and preprocessors[0] is not preprocessors[1]
    assert [name for name, _member in average.members_] == ["gradient_boosting", "ridge", "random_forest"]


def test_an_ensemble_refuses_a_scale_it_does_not_know():
    x, y, types = problem("house_prices.csv", "price_eur", "regression")
    with pytest.raises(ValueError, match="scale must be one of"):
        build_ensemble(pick("regression", "ridge", "gradient_boosting"), types, SEED, task="regression",
                       scale="percent").fit(x, y)


# ── choosing members ────────────────────────────────────────────────────────────────────────────────


def _rmse_of(truth):
    def score(fold, _scale, outputs):
        return float(np.sqrt(np.mean((truth[fold] - outputs) ** 2)))
    return score


def _candidate(name, scale, truth, outputs, score):
    scores = [score(fold, scale, out) for fold, out in enumerate(outputs)]
    return FoldOutputs(name=name, scale=scale, scores=scores, outputs=outputs)


def test_members_are_added_only_while_they_improve_the_cross_validated_score():
    rng = np.random.default_rng(0)
    truth = [rng.normal(0, 1, 200) for _ in range(3)]
    score = _rmse_of(truth)
    # Two candidates with independent errors: their average halves the error variance.
    first = _candidate("first", "value", truth, [t + rng.normal(0, 1.0, 200) for t in truth], score)
    second = _candidate("second", "value", truth, [t + rng.normal(0, 1.1, 200) for t in truth], score)
    # A third that is far off: averaging it in only hurts.
    biased = _candidate("biased", "value", truth, [t + 5 for t in truth], score)

    found = select_ensembles([biased, second, first], score_fold=score, greater_is_better=False)

    assert [item["members"] for item in found] == [["first", "second"]]
    assert np.mean(found[0]["scores"]) < min(first.mean, second.mean)
    assert found[0]["scores"] == [score(f, "value", (first.outputs[f] + second.outputs[f]) / 2) for f in range(3)]


def test_no_ensemble_when_averaging_does_not_beat_the_best_member():
    rng = np.random.default_rng(1)
    truth = [rng.normal(0, 1, 200) for _ in range(3)]
    score = _rmse_of(truth)
    good = _candidate("good", "value", truth, [t + rng.normal(0, 0.1, 200) for t in truth], score)
    poor = _candidate("poor", "value", truth, [t + rng.normal(0, 3.0, 200) for t in truth], score)

    assert select_ensembles([good, poor], score_fold=score, greater_is_better=False) == []


def test_candidates_on_different_scales_are_never_averaged_together():
    rng = np.random.default_rng(2)
    truth = [rng.normal(0, 1, 100) for _ in range(2)]
    score = _rmse_of(truth)
    margins = _candidate("boosting", "log-odds", truth, [t + rng.normal(0, 1, 100) for t in truth], score)
    forest = _candidate("forest", "probability", truth, [t + rng.normal(0, 1, 100) for t in truth], score)
    unsure = _candidate("unsure", None, truth, [t + rng.normal(0, 1, 100) for t in truth], score)

    assert select_ensembles([margins, forest, unsure], score_fold=score, greater_is_better=False) == []


def test_at_most_the_maximum_number_of_members_are_averaged():
    rng = np.random.default_rng(3)
    truth = [rng.normal(0, 1, 300) for _ in range(3)]
    score = _rmse_of(truth)
    many = [_candidate(f"c{i}", "value", truth, [t + rng.normal(0, 1, 300) for t in truth], score) for i in range(6)]

    found = select_ensembles(many, score_fold=score, greater_is_better=False)
    assert len(found) == 1 and len(found[0]["members"]) == ensemble.MAX_MEMBERS
    assert len(select_ensembles(many, score_fold=score, greater_is_better=False, max_members=2)[0]["members"]) == 2


# ── choosing between the best single candidate and an average ───────────────────────────────────────


def _row(name, scores, log_loss=None, members=None):
    row = {"candidate": name, "mean": float(np.mean(scores)), "scores": list(scores)}
    if log_loss is not None:
        row["log_loss"] = log_loss
    if members:
        row["members"] = members
    return row


def test_an_average_is_chosen_only_when_its_cv_score_is_better():
    single = _row("a", [0.90, 0.91, 0.89])
    close = _row("average", [0.899, 0.909, 0.889], log_loss=0.1, members=["a", "b"])
    better = _row("average", [0.905, 0.915, 0.895], members=["a", "b"])

    assert ensemble.choose([single, close], metric="roc_auc", greater_is_better=True, rows_searched=100) is single
    assert ensemble.choose([single, better], metric="roc_auc", greater_is_better=True, rows_searched=100) is better
    lower = _row("average", [0.88, 0.87], members=["b", "c"])  # RMSE: lower is better
    assert ensemble.choose([_row("a", [0.9, 0.9]), lower], metric="rmse", greater_is_better=False,
                           rows_searched=100) is lower


def test_on_a_metric_that_counts_rows_a_tie_the_folds_cannot_decide_goes_to_the_lower_log_loss():
    # Wine, seed 42: logistic regression against its average with boosting, one or two validation rows apart.
    single = _row("logistic_regression", [0.932, 1.0, 1.0, 1.0, 0.967], log_loss=0.080)
    members = ["logistic_regression", "gradient_boosting_slow", "logistic_regression_strong"]
    fold_scores = [0.928, 0.97, 0.967, 1.0, 0.967]
    tied = _row("average", fold_scores, log_loss=0.063, members=members)

    def chosen(*rows, metric="f1_macro"):
        return ensemble.choose(list(rows), metric=metric, greater_is_better=True, rows_searched=142)

    assert chosen(single, tied) is tied
    assert chosen(single, _row("average", fold_scores, log_loss=0.090, members=members)) is single
    assert chosen(single, _row("average", fold_scores, log_loss=0.063, members=members[1:])) is single  # lacks it
    clearly_worse = _row("average", [0.85, 0.90, 0.88, 0.86, 0.87], log_loss=0.05, members=members)
    assert chosen(single, clearly_worse) is single
    # Only for metrics that count rows: ROC AUC has no such ties.
    assert chosen(single, tied, metric="roc_auc") is single
