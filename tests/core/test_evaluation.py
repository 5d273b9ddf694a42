"""Held-out evaluation: scikit-learn's numbers, honest intervals, fair subgroups, and charts that show them."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk

from core import charts
from core.training import evaluation


def _binary(n=400, seed=0, labels=("no", "yes")):
    """Labels, predictions and probabilities of a useful but imperfect binary classifier."""
    rng = np.random.default_rng(seed)
    positive = rng.random(n) < 0.4
    score = np.round(np.clip(0.35 * positive + 0.65 * rng.random(n), 0, 1), 2)  # rounded: ties are exercised
    classes = list(labels)
    y_true = pd.Series(np.where(positive, classes[1], classes[0]))
    y_pred = np.where(score >= 0.5, classes[1], classes[0])
    return y_true, y_pred, np.column_stack([1 - score, score]), classes


def _multiclass(n=600, seed=0, k=4):
    rng = np.random.default_rng(seed)
    classes = [f"code {i}" for i in range(k)]
    truth = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), truth] += 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array(classes)
    return pd.Series(labels[truth]), labels[proba.argmax(axis=1)], proba, classes


def _regression(n=500, seed=0):
    rng = np.random.default_rng(seed)
    y_true = rng.normal(50, 10, n)
    return pd.Series(y_true), y_true + rng.normal(0, 4, n)


def _width(interval):
    return interval["high"] - interval["low"]


# ── metrics ─────────────────────────────────────────────────────────────────────────────────────────


def test_binary_metrics_equal_scikit_learns():
    y_true, y_pred, proba, classes = _binary()
    got = evaluation.compute_metrics("binary", y_true, y_pred, proba, classes)
    positive = y_true == "yes"
    assert got == pytest.approx({
        "roc_auc": sk.roc_auc_score(positive, proba[:, 1]),
        "accuracy": sk.accuracy_score(y_true, y_pred),
        "balanced_accuracy": sk.balanced_accuracy_score(y_true, y_pred),
        "f1": sk.f1_score(y_true, y_pred, pos_label="yes"),
        "log_loss": sk.log_loss(y_true, proba, labels=classes),
        "brier": sk.brier_score_loss(positive, proba[:, 1]),
    })
    assert list(got) == evaluation.METRICS["binary"]


def test_binary_positive_class_is_the_second_class_and_a_one_column_proba_is_accepted():
    y_true, y_pred, proba, _ = _binary(labels=(True, False))  # here the positive class is False
    two_columns = evaluation.compute_metrics("binary", y_true, y_pred, proba, [True, False])
    one_column = evaluation.compute_metrics("binary", y_true, y_pred, proba[:, 1], [True, False])
    assert two_columns == pytest.approx(one_column)
    assert two_columns["f1"] == pytest.approx(sk.f1_score(y_true, y_pred, pos_label=False))
    assert two_columns["roc_auc"] == pytest.approx(sk.roc_auc_score(~y_true.astype(bool), proba[:, 1]))


def test_multiclass_metrics_equal_scikit_learns_even_when_a_class_is_never_predicted():
    y_true, y_pred, proba, classes = _multiclass()
    y_pred = np.where(y_pred == "code 3", "code 0", y_pred)
    got = evaluation.compute_metrics("multiclass", y_true, y_pred, proba, classes)
    assert got == pytest.approx({
        "f1_macro": sk.f1_score(y_true, y_pred, average="macro"),
        "accuracy": sk.accuracy_score(y_true, y_pred),
        "balanced_accuracy": sk.balanced_accuracy_score(y_true, y_pred),
        "log_loss": sk.log_loss(y_true, proba, labels=classes),
    })
    assert evaluation.compute_metrics("text", y_true, y_pred, proba, classes) == got


def test_regression_metrics_equal_scikit_learns():
    y_true, y_pred = _regression()
    got = evaluation.compute_metrics("regression", y_true, y_pred)
    assert got == pytest.approx({"rmse": sk.root_mean_squared_error(y_true, y_pred),
                                 "mae": sk.mean_absolute_error(y_true, y_pred), "r2": sk.r2_score(y_true, y_pred)})


def test_labels_match_classes_by_their_text_and_probability_metrics_are_none_without_probabilities():
    got = evaluation.compute_metrics("binary", np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), classes=["0", "1"])
    assert got["accuracy"] == 0.75 and got["f1"] == pytest.approx(2 / 3)
    assert got["roc_auc"] is None and got["log_loss"] is None and got["brier"] is None


def test_roc_auc_is_none_when_the_rows_hold_one_class():
    got = evaluation.compute_metrics("binary", ["yes"] * 3, ["yes", "no", "yes"], [0.9, 0.4, 0.8], ["no", "yes"])
    assert got["roc_auc"] is None and got["accuracy"] == pytest.approx(2 / 3)


def test_metric_labels_are_plain_words_and_every_metric_has_a_direction():
    assert evaluation.metric_label("roc_auc") == "ROC AUC (1 = perfect, 0.5 = chance)"
    assert evaluation.metric_label("rmse") == "Root mean squared error"
    for task, names in evaluation.METRICS.items():
        assert evaluation.PRIMARY_METRIC[task] == names[0]
        assert all(name in evaluation.GREATER_IS_BETTER and "_" not in evaluation.metric_label(name) for name in names)


# ── bootstrap ───────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_intervals_contain_the_point_value_and_narrow_with_more_rows(task):
    def intervals(n):
        if task == "binary":
            return evaluation.bootstrap_intervals(task, *_binary(n), n_boot=200)
        if task == "multiclass":
            return evaluation.bootstrap_intervals(task, *_multiclass(n), n_boot=200)
        return evaluation.bootstrap_intervals(task, *_regression(n), n_boot=200)

    small, large = intervals(200), intervals(5000)
    for metric in evaluation.METRICS[task]:
        for result in (small, large):
            assert result[metric]["low"] <= result[metric]["value"] <= result[metric]["high"]
            assert result[metric]["resamples"] == 200
        assert _width(large[metric]) < _width(small[metric]) / 2


def test_the_same_seed_gives_the_same_intervals_and_another_seed_does_not():
    y_true, y_pred, proba, classes = _binary()
    first = evaluation.bootstrap_intervals("binary", y_true, y_pred, proba, classes, seed=7)
    assert evaluation.bootstrap_intervals("binary", y_true, y_pred, proba, classes, seed=7) == first
    assert evaluation.bootstrap_intervals("binary", y_true, y_pred, proba, classes, seed=8) != first


def test_resamples_without_a_positive_are_skipped_for_roc_auc_only():
    y_true = ["no"] * 9 + ["yes"]
    scores = np.linspace(0.05, 0.95, 10)
    result = evaluation.bootstrap_intervals("binary", y_true, np.where(scores > 0.5, "yes", "no"), scores,
                                            ["no", "yes"], n_boot=300)
    # About (9/10)^10 = 35 % of resamples draw no positive row.
    assert 150 < result["roc_auc"]["resamples"] < 250 and result["roc_auc"]["low"] is not None
    assert result["accuracy"]["resamples"] == 300


# ── subgroups ───────────────────────────────────────────────────────────────────────────────────────


def test_a_group_the_model_serves_worse_has_a_positive_gap_for_either_metric_direction():
    y_true, y_pred, proba, classes = _binary(n=300)
    region = pd.Series(["north"] * 150 + ["south"] * 140 + [None] * 10)
    # The model is always right in the north and always wrong in the south.
    y_pred = np.where(np.arange(300) < 150, y_true, np.where(y_true == "yes", "no", "yes"))
    rows = evaluation.subgroup_metrics("binary", y_true, y_pred, proba, {"region": region}, classes=classes,
                                       metric="accuracy", min_size=30)
    by_group = {row["group"]: row for row in rows}
    assert [row["group"] for row in rows] == ["north", "south", evaluation.MISSING_GROUP]
    assert by_group["north"]["value"] == 1.0 and by_group["north"]["gap"] < 0
    assert by_group["south"]["value"] == 0.0 and by_group["south"]["gap"] == pytest.approx(by_group["south"]["overall"])
    assert by_group[evaluation.MISSING_GROUP]["count"] == 10 and by_group[evaluation.MISSING_GROUP]["small"]
    assert not by_group["north"]["small"] and not by_group["south"]["small"]

    errors_y, errors_pred = _regression(n=300)
    errors_pred = errors_pred.copy()
    errors_pred[150:] += 20  # the south's predictions are far off: a larger RMSE, so worse
    rows = evaluation.subgroup_metrics("regression", errors_y, errors_pred, None, {"region": region})
    by_group = {row["group"]: row for row in rows}
    assert by_group["south"]["metric"] == "rmse" and by_group["south"]["gap"] > 0 > by_group["north"]["gap"]


# ── diagnostics ─────────────────────────────────────────────────────────────────────────────────────


def test_confusion_counts_each_pair_with_unknown_labels_appended():
    result = evaluation.confusion(["a", "a", "b", "c"], ["a", "b", "b", "b"], ["a", "b"])
    assert result == {"classes": ["a", "b", "c"], "matrix": [[1, 1, 0], [0, 1, 0], [0, 1, 0]]}


def test_curves_are_thinned_to_two_hundred_points_and_keep_their_ends():
    rng = np.random.default_rng(3)
    positive = rng.random(5000) < 0.3
    scores = np.clip(0.2 * positive + rng.random(5000), 0, 1)
    roc = evaluation.roc_points(positive, scores, True)
    pr = evaluation.pr_points(positive, scores, True)
    assert 100 < len(roc) <= 200 and 100 < len(pr) <= 200
    assert (roc[0]["x"], roc[0]["y"], roc[0]["threshold"]) == (0.0, 0.0, None)
    assert (roc[-1]["x"], roc[-1]["y"]) == (1.0, 1.0)
    assert pr[0]["x"] == 0.0 and pr[0]["threshold"] is None and pr[-1]["x"] == 1.0
    assert [point["x"] for point in pr] == sorted(point["x"] for point in pr)
    assert evaluation.roc_points([False, False], [0.1, 0.2], True) == []


def test_calibration_bins_count_every_row_and_report_the_observed_share():
    y_true = ["yes", "no", "yes", "yes", "no"]
    bins = evaluation.calibration_bins(y_true, [0.05, 0.05, 0.95, 1.0, 0.55], "yes")
    assert bins == [{"mean_predicted": 0.05, "observed": 0.5, "count": 2},
                    {"mean_predicted": 0.55, "observed": 0.0, "count": 1},
                    {"mean_predicted": pytest.approx(0.975), "observed": 1.0, "count": 2}]


def test_residuals_are_a_seeded_sample_of_actual_minus_predicted():
    y_true, y_pred = _regression(n=3000)
    sample = evaluation.residuals(y_true, y_pred, max_points=500, seed=1)
    assert len(sample) == 500 and sample == evaluation.residuals(y_true, y_pred, max_points=500, seed=1)
    lookup = dict(zip(y_pred, y_true - y_pred, strict=True))
    assert all(point["residual"] == pytest.approx(lookup[point["predicted"]]) for point in sample)
    assert len(evaluation.residuals([1.0, 2.0], [1.5, 1.5])) == 2


def test_threshold_effect_counts_every_row_once():
    y_true, _, proba, _ = _binary(n=250)
    effect = evaluation.threshold_effect(y_true, proba[:, 1], "yes", 0.7)
    counts = effect["confusion"]
    assert sum(counts.values()) == 250
    flagged = proba[:, 1] >= 0.7
    assert counts["tp"] == int((flagged & (y_true == "yes")).sum())
    assert effect["predicted_positive_share"] == pytest.approx(flagged.mean())
    assert effect["precision"] == pytest.approx(counts["tp"] / (counts["tp"] + counts["fp"]))
    assert evaluation.threshold_effect(y_true, proba[:, 1], "yes", 1.01)["precision"] is None


def test_coding_tradeoff_coverage_never_rises_and_starts_at_plain_accuracy():
    y_true, y_pred, proba, classes = _multiclass()
    tradeoff = evaluation.coding_tradeoff(y_true, proba, classes)
    assert [row["threshold"] for row in tradeoff] == [round(i / 100, 2) for i in range(100)]
    coverages = [row["coverage"] for row in tradeoff]
    assert coverages[0] == 1.0 and all(a >= b for a, b in zip(coverages, coverages[1:], strict=False))
    assert tradeoff[0]["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    confident = proba.max(axis=1) >= 0.8
    row = next(row for row in tradeoff if row["threshold"] == 0.8)
    assert row["count"] == confident.sum()
    assert row["accuracy"] == pytest.approx((y_pred[confident] == y_true[confident]).mean())


def test_threshold_for_accuracy_takes_the_lowest_threshold_that_reaches_the_target():
    tradeoff = [{"threshold": 0.5, "coverage": 1.0, "accuracy": 0.90, "count": 10},
                {"threshold": 0.6, "coverage": 0.8, "accuracy": 0.96, "count": 8},
                {"threshold": 0.7, "coverage": 0.5, "accuracy": 0.94, "count": 5},
                {"threshold": 0.8, "coverage": 0.2, "accuracy": 0.99, "count": 2},
                {"threshold": 0.9, "coverage": 0.0, "accuracy": None, "count": 0}]
    assert evaluation.threshold_for_accuracy(tradeoff, 0.95) == 0.6
    assert evaluation.threshold_for_accuracy(tradeoff, 0.98) == 0.8
    assert evaluation.threshold_for_accuracy(tradeoff, 0.995) is None


# ── evaluate ────────────────────────────────────────────────────────────────────────────────────────


def _task_inputs(task):
    if task == "binary":
        y_true, y_pred, proba, classes = _binary(n=300, labels=(False, True))
        return y_true.astype(bool), y_pred.astype(bool), proba, np.array(classes)
    if task == "regression":
        return (*_regression(n=300), None, None)
    return _multiclass(n=300)


@pytest.mark.parametrize("task", ["binary", "multiclass", "text", "regression"])
def test_evaluate_returns_plain_json_with_the_task_diagnostics(task):
    y_true, y_pred, proba, classes = _task_inputs(task)
    groups = {"age band": pd.Series(np.where(np.arange(300) % 3 == 0, np.nan, np.arange(300) % 2)),
              "site": pd.Series(["a"] * 280 + ["b"] * 20)}
    result = evaluation.evaluate(task, y_true, y_pred, proba, classes, groups=groups, n_boot=50)
    assert json.loads(json.dumps(result, allow_nan=False)) == result
    assert result["primary_metric"] == evaluation.PRIMARY_METRIC[task]
    assert set(result["metrics"]) == set(evaluation.METRICS[task])
    assert {row["group"] for row in result["subgroups"]} == {"0.0", "1.0", evaluation.MISSING_GROUP, "a", "b"}
    expected = {"binary": {"confusion", "roc", "pr", "calibration", "threshold_effect"},
                "multiclass": {"confusion", "coding_tradeoff", "coding_threshold"},
                "text": {"confusion", "coding_tradeoff", "coding_threshold"},
                "regression": {"residuals"}}[task]
    assert set(result["diagnostics"]) == expected
    if task == "binary":
        assert result["classes"] == [False, True]
        assert result["diagnostics"]["confusion"]["classes"] == [False, True]


def test_evaluate_without_probabilities_leaves_probability_metrics_empty():
    y_true, y_pred, _, classes = _binary(n=100)
    result = evaluation.evaluate("binary", y_true, y_pred, None, classes, n_boot=20)
    assert result["metrics"]["roc_auc"] == {"value": None, "low": None, "high": None, "resamples": 0}
    assert result["diagnostics"]["roc"] == [] and result["diagnostics"]["threshold_effect"] is None
    json.dumps(result, allow_nan=False)


# ── charts ──────────────────────────────────────────────────────────────────────────────────────────


def _layers(spec):
    return spec.get("layer", [spec])


def _marks(spec):
    """Mark types of each layer, nested layers as lists."""
    return [_marks(layer) if "layer" in layer else layer["mark"]["type"] for layer in _layers(spec)]


def test_confusion_chart_is_a_heat_map_with_a_count_in_every_cell():
    spec = charts.confusion_chart({"classes": ["a", "b"], "matrix": [[5, 1], [2, 7]]}).to_dict()
    cells, labels = _layers(spec)
    assert _marks(spec) == ["rect", "text"]
    assert cells["encoding"]["color"]["field"] == "count" and labels["encoding"]["text"]["field"] == "count"
    assert cells["encoding"]["x"]["title"] == "Predicted class" and cells["encoding"]["y"]["title"] == "Actual class"
    assert cells["encoding"]["x"]["sort"] == ["a", "b"]
    assert len(spec["data"]["values"]) == 4


def test_roc_and_calibration_charts_draw_a_labelled_dashed_diagonal():
    points = [{"x": 0.0, "y": 0.0, "threshold": None}, {"x": 0.2, "y": 0.7, "threshold": 0.6},
              {"x": 1.0, "y": 1.0, "threshold": 0.0}]
    roc = charts.roc_chart(points).to_dict()
    curve, diagonal = roc["layer"]
    assert curve["mark"]["type"] == "line" and curve["encoding"]["order"]["field"] == "order"
    assert [t["field"] for t in curve["encoding"]["tooltip"]] == ["threshold", "x", "y"]
    assert _marks(roc) == ["line", ["line", "text"]]
    assert diagonal["layer"][0]["mark"]["strokeDash"] == charts.REFERENCE_DASH

    pr = charts.pr_chart(points).to_dict()
    assert pr["mark"]["type"] == "line" and pr["encoding"]["x"]["title"].startswith("Recall")

    bins = [{"mean_predicted": 0.1, "observed": 0.15, "count": 40}, {"mean_predicted": 0.8, "observed": 0.7,
                                                                      "count": 12}]
    calibration = charts.calibration_chart(bins).to_dict()
    assert _marks(calibration) == ["line", "circle", ["line", "text"]]
    assert calibration["layer"][1]["encoding"]["size"]["field"] == "count"


def test_residuals_chart_scatters_points_around_a_zero_rule():
    spec = charts.residuals_chart([{"predicted": 3.0, "residual": -0.5}, {"predicted": 4.0, "residual": 1.0}])
    spec = spec.to_dict()
    assert _marks(spec) == ["circle", "rule", "text"]
    assert spec["layer"][0]["encoding"]["y"]["field"] == "residual"
    assert spec["layer"][1]["encoding"]["y"]["field"] == "residual"


def test_coding_tradeoff_chart_tells_its_lines_apart_without_colour_and_marks_the_chosen_threshold():
    y_true, _, proba, classes = _multiclass(n=200)
    tradeoff = evaluation.coding_tradeoff(y_true, proba, classes)
    spec = charts.coding_tradeoff_chart(tradeoff, chosen_threshold=0.8).to_dict()
    lines, markers, rule, text = spec["layer"]
    assert (lines["mark"]["type"], markers["mark"]["type"]) == ("line", "point")
    assert lines["encoding"]["strokeDash"]["field"] == "measure" and markers["encoding"]["shape"]["field"] == "measure"
    assert rule["mark"]["type"] == "rule" and text["mark"]["type"] == "text"
    assert text["data"]["values"] == [{"threshold": 0.8, "label": "chosen threshold 0.80"}]
    assert len(charts.coding_tradeoff_chart(tradeoff).to_dict()["layer"]) == 2


def test_leaderboard_chart_shows_bars_error_bars_and_the_numbers():
    rows = [{"candidate": "gradient_boosting", "mean": 0.84, "std": 0.01},
            {"candidate": "logistic_regression", "mean": 0.8, "std": 0.02}]
    spec = charts.leaderboard_chart(rows).to_dict()
    bars, errors, labels = spec["layer"]
    assert _marks(spec) == ["bar", "errorbar", "text"]
    assert errors["encoding"]["x"]["field"] == "low" and errors["encoding"]["x2"]["field"] == "high"
    assert bars["encoding"]["y"]["sort"] == ["gradient_boosting", "logistic_regression"]
    assert [row["label"] for row in spec["data"]["values"]] == ["0.840 ± 0.010", "0.800 ± 0.020"]


def test_subgroup_chart_marks_small_groups_by_shape_and_in_words():
    y_true, y_pred, proba, classes = _binary(n=200)
    rows = evaluation.subgroup_metrics("binary", y_true, y_pred, proba,
                                       {"site": pd.Series(["a"] * 190 + ["b"] * 10)}, classes=classes)
    spec = charts.subgroup_chart(rows).to_dict()
    assert _marks(spec) == ["bar", "point", "text", "rule", "text"]
    assert spec["layer"][1]["encoding"]["shape"]["field"] == "size"
    assert spec["layer"][0]["encoding"]["x"]["title"] == evaluation.metric_label("roc_auc")
    labels = [row["label"] for row in spec["layer"][2]["data"]["values"]]
    assert labels[0].endswith("(n=190)") and labels[1].endswith("(n=10, small group)")
