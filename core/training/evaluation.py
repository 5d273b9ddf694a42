"""Honest evaluation of a fitted model on held-out rows, as plain JSON-ready dicts.

Everything returned here is stored in JSON columns, so it is made of plain ``dict``/``list``/``int``/``float``/
``str``/``bool``/``None`` (never numpy scalars, never NaN: an undefined metric is ``None``).

Conventions shared by every function:

- ``y_true`` and ``y_pred`` are pandas Series or numpy arrays of string, boolean or numeric labels (numbers for
  regression), aligned by position. Labels are matched to ``classes`` by value, and by their text when the value
  does not match (so ``1`` finds the class ``"1"``).
- ``proba`` is an ``(n, n_classes)`` array whose columns are ordered like ``classes`` (scikit-learn's
  ``predict_proba`` with ``model.classes_``). For ``"binary"`` the positive class is ``classes[1]`` and ``proba``
  may also be the 1-D probability of that class.
- ``"text"`` is multiclass classification of short texts and is evaluated exactly like ``"multiclass"``.

Every metric is computed by one vectorised code path over resampled row indices: the point value uses the rows
as they are, the bootstrap uses seeded resamples, and subgroups use the rows of each group. The classification
metrics follow scikit-learn's definitions (checked by the tests): macro F1 and balanced accuracy average over the
classes that occur in the rows scored, F1 of an absent positive class is 0, and log loss clips probabilities to
machine epsilon without renormalising them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from core.data.profile import jsonable

TASKS = ("binary", "multiclass", "text", "regression")
CLASSIFICATION = ("binary", "multiclass", "text")
PRIMARY_METRIC = {"binary": "roc_auc", "multiclass": "f1_macro", "text": "f1_macro", "regression": "rmse"}
METRICS = {
    "binary": ["roc_auc", "accuracy", "balanced_accuracy", "f1", "log_loss", "brier"],
    "multiclass": ["f1_macro", "accuracy", "balanced_accuracy", "log_loss"],
    "text": ["f1_macro", "accuracy", "balanced_accuracy", "log_loss"],
    "regression": ["rmse", "mae", "r2"],
}
GREATER_IS_BETTER = {
    "roc_auc": True, "accuracy": True, "balanced_accuracy": True, "f1": True, "f1_macro": True,
    "log_loss": False, "brier": False, "rmse": False, "mae": False, "r2": True,
}
METRIC_LABELS = {
    "roc_auc": "ROC AUC (1 = perfect, 0.5 = chance)",
    "accuracy": "Accuracy (share of correct predictions)",
    "balanced_accuracy": "Balanced accuracy (average share found per class)",
    "f1": "F1 score of the positive class (1 = perfect)",
    "f1_macro": "Macro F1 (F1 averaged over classes, 1 = perfect)",
    "log_loss": "Log loss (lower is better, 0 = perfect)",
    "brier": "Brier score (squared error of the probabilities, lower is better)",
    "rmse": "Root mean squared error",
    "mae": "Mean absolute error",
    "r2": "R² (share of variation explained, 1 = perfect, 0 = no better than the average)",
}
MISSING_GROUP = "(missing)"
MAX_CURVE_POINTS = 200
DEFAULT_THRESHOLD = 0.5
CODING_TARGET_ACCURACY = 0.95
# The bootstrap resamples this many row indices at a time: 200 resamples of 100k rows would otherwise hold
# several arrays of 20 million numbers at once.
BOOTSTRAP_BLOCK_CELLS = 2_000_000


# ── inputs ──────────────────────────────────────────────────────────────────────────────────────────


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}; expected one of {', '.join(TASKS)}.")


def _array(values: Any) -> np.ndarray:
    if isinstance(values, pd.Series | pd.Index | pd.DataFrame):
        return values.to_numpy()
    return np.asarray(values)


def _labels_array(values: Any, name: str) -> np.ndarray:
    array = _array(values).ravel().astype(object)
    if array.size and pd.isna(array).any():
        raise ValueError(f"{name} contains missing values; evaluate only rows with a known outcome.")
    return array


def _sorted_labels(values: np.ndarray) -> list[Any]:
    unique = list(pd.unique(values))
    try:
        return sorted(unique)
    except TypeError:  # mixed types (1 and "a") have no natural order
        return sorted(unique, key=str)


def _encode(values: np.ndarray, labels: Sequence[Any]) -> np.ndarray:
    """Position of each value in labels, -1 where absent; matching on the value first, then on its text."""
    codes = pd.Index(list(labels), dtype=object).get_indexer(values)
    missing = codes < 0
    texts = [str(label) for label in labels]
    if missing.any() and len(set(texts)) == len(texts):
        codes[missing] = pd.Index(texts, dtype=object).get_indexer(values[missing].astype(str))
    return codes.astype(np.intp)


def _label_space(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[Any] | None
                 ) -> tuple[list[Any], int, np.ndarray, np.ndarray]:
    """Labels (classes first, then labels the model does not know), the number of classes, and both codings."""
    labels = _sorted_labels(np.concatenate([y_true, y_pred])) if classes is None else list(classes)
    n_classes = len(labels)
    true, pred = _encode(y_true, labels), _encode(y_pred, labels)
    unknown = np.concatenate([y_true[true < 0], y_pred[pred < 0]])
    if unknown.size:
        labels += _sorted_labels(unknown)
        true, pred = _encode(y_true, labels), _encode(y_pred, labels)
    return labels, n_classes, true, pred


def _proba_array(proba: Any, n_rows: int) -> np.ndarray | None:
    if proba is None:
        return None
    array = np.asarray(_array(proba), dtype=float)
    if array.shape[0] != n_rows:
        raise ValueError(f"proba has {array.shape[0]} rows but y_true has {n_rows}.")
    if not np.isfinite(array).all():
        raise ValueError("proba contains missing or infinite values.")
    return array


def _positive_scores(proba: np.ndarray | None) -> np.ndarray | None:
    """The probability of the positive class (classes[1]) from a 1-D or two-column proba."""
    if proba is None:
        return None
    if proba.ndim == 1:
        return proba
    if proba.shape[1] != 2:
        raise ValueError(f"A binary task needs two probability columns, got {proba.shape[1]}.")
    return proba[:, 1]


@dataclass(frozen=True)
class _Scored:
    """The held-out rows reduced to the per-row numbers every metric is built from."""

    task: str
    n_rows: int
    labels: list[Any]
    n_classes: int
    true: np.ndarray | None = None  # label codes (classification)
    pred: np.ndarray | None = None
    row_log_loss: np.ndarray | None = None
    row_brier: np.ndarray | None = None
    score_rank: np.ndarray | None = None  # dense rank of the positive-class probability (binary)
    n_scores: int = 0
    observed: np.ndarray | None = None  # regression
    error: np.ndarray | None = None


def _score(task: str, y_true: Any, y_pred: Any, proba: Any = None, classes: Sequence[Any] | None = None) -> _Scored:
    _check_task(task)
    if task == "regression":
        observed = pd.to_numeric(pd.Series(_array(y_true).ravel()), errors="coerce").to_numpy(float)
        predicted = pd.to_numeric(pd.Series(_array(y_pred).ravel()), errors="coerce").to_numpy(float)
        if observed.size != predicted.size:
            raise ValueError(f"y_true has {observed.size} rows but y_pred has {predicted.size}.")
        if not (np.isfinite(observed).all() and np.isfinite(predicted).all()):
            raise ValueError("y_true and y_pred must be finite numbers for a regression task.")
        if observed.size == 0:
            raise ValueError("There are no held-out rows to evaluate.")
        return _Scored(task, observed.size, [], 0, observed=observed, error=observed - predicted)

    truth, predicted = _labels_array(y_true, "y_true"), _labels_array(y_pred, "y_pred")
    if truth.size != predicted.size:
        raise ValueError(f"y_true has {truth.size} rows but y_pred has {predicted.size}.")
    if truth.size == 0:
        raise ValueError("There are no held-out rows to evaluate.")
    labels, n_classes, true, pred = _label_space(truth, predicted, classes)
    if task == "binary" and n_classes != 2:
        raise ValueError(f"A binary task needs exactly two classes (pass the model's classes), got {n_classes}.")
    probabilities = _proba_array(proba, truth.size)
    fields: dict[str, Any] = {}
    if probabilities is not None:
        eps = np.finfo(float).eps
        if task == "binary":
            scores = _positive_scores(probabilities)
            positive = true == 1
            p_true = np.where(positive, scores, 1.0 - scores)
            fields["row_brier"] = (positive - scores) ** 2
            # Tied probabilities share a rank, which is what makes ties count one half in the AUC.
            unique_scores, rank = np.unique(scores, return_inverse=True)
            fields["score_rank"], fields["n_scores"] = rank.astype(np.intp), unique_scores.size
        else:
            if probabilities.ndim != 2 or probabilities.shape[1] != n_classes:
                raise ValueError(f"proba must have one column per class ({n_classes}), got shape "
                                 f"{probabilities.shape}.")
            known = true < n_classes
            p_true = np.where(known, probabilities[np.arange(truth.size), np.minimum(true, n_classes - 1)], 0.0)
        # A true label the model has no probability for leaves the log loss undefined.
        if (true < n_classes).all():
            fields["row_log_loss"] = -np.log(np.clip(p_true, eps, 1.0 - eps))
    return _Scored(task, truth.size, labels, n_classes, true=true, pred=pred, **fields)


# ── metrics over resampled rows ─────────────────────────────────────────────────────────────────────


def _row_bincount(codes: np.ndarray, size: int) -> np.ndarray:
    """Counts of each code 0..size-1 in every row of a 2-D array of codes, in one bincount call."""
    rows = codes.shape[0]
    offsets = (np.arange(rows, dtype=np.int64) * size)[:, None]
    return np.bincount((codes + offsets).ravel(), minlength=rows * size).reshape(rows, size)


def _ratio(numerator: np.ndarray, denominator: np.ndarray, default: float = np.nan) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), default)


def _classification_metrics(scored: _Scored, idx: np.ndarray) -> dict[str, np.ndarray]:
    size = len(scored.labels)
    true, pred = scored.true[idx], scored.pred[idx]
    true_counts, pred_counts = _row_bincount(true, size), _row_bincount(pred, size)
    # Correct rows are counted under their class; wrong ones go to an overflow column that is dropped.
    hits = _row_bincount(np.where(true == pred, true, size), size + 1)[:, :size]
    n = idx.shape[1]
    values = {"accuracy": hits.sum(axis=1) / n}
    present = true_counts > 0
    recall = _ratio(hits, true_counts, 0.0)
    values["balanced_accuracy"] = (recall * present).sum(axis=1) / present.sum(axis=1)
    seen = true_counts + pred_counts
    f1 = _ratio(2 * hits, seen, 0.0)
    values["f1_macro"] = f1.sum(axis=1) / (seen > 0).sum(axis=1)
    if scored.task == "binary":
        values["f1"] = f1[:, 1]
        values["roc_auc"] = _resampled_auc(scored, idx)
        values["brier"] = _resampled_mean(scored.row_brier, idx)
    values["log_loss"] = _resampled_mean(scored.row_log_loss, idx)
    return values


def _resampled_mean(per_row: np.ndarray | None, idx: np.ndarray) -> np.ndarray:
    if per_row is None:
        return np.full(idx.shape[0], np.nan)
    return per_row[idx].mean(axis=1)


def _resampled_auc(scored: _Scored, idx: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC per resample: the share of (positive, negative) pairs ranked right, ties counting half."""
    if scored.score_rank is None:
        return np.full(idx.shape[0], np.nan)
    key = scored.score_rank[idx] * 2 + (scored.true[idx] == 1)
    counts = _row_bincount(key, 2 * scored.n_scores).reshape(idx.shape[0], scored.n_scores, 2)
    negatives, positives = counts[..., 0], counts[..., 1]
    below = np.cumsum(negatives, axis=1) - negatives
    pairs_right = (positives * (below + 0.5 * negatives)).sum(axis=1)
    return _ratio(pairs_right, positives.sum(axis=1) * negatives.sum(axis=1).astype(float))


def _regression_metrics(scored: _Scored, idx: np.ndarray) -> dict[str, np.ndarray]:
    observed, error = scored.observed[idx], scored.error[idx]
    squared = error**2
    residual_sum = squared.sum(axis=1)
    total_sum = ((observed - observed.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    # scikit-learn's convention for a constant outcome: 1 when predicted exactly, 0 otherwise.
    constant = np.where(residual_sum == 0, 1.0, 0.0)
    return {
        "rmse": np.sqrt(squared.mean(axis=1)),
        "mae": np.abs(error).mean(axis=1),
        "r2": np.where(total_sum > 0, 1.0 - _ratio(residual_sum, total_sum), constant),
    }


def _metric_values(scored: _Scored, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric of the task for each row of idx (a 2-D array of row positions); NaN where undefined."""
    if scored.task == "regression":
        values = _regression_metrics(scored, idx)
    else:
        values = _classification_metrics(scored, idx)
    return {metric: values[metric] for metric in METRICS[scored.task]}


def _all_rows(scored: _Scored) -> np.ndarray:
    return np.arange(scored.n_rows)[None, :]


def _plain(values: dict[str, np.ndarray]) -> dict[str, float | None]:
    return {metric: jsonable(float(array[0])) for metric, array in values.items()}


# ── public metrics ──────────────────────────────────────────────────────────────────────────────────


def metric_label(metric: str) -> str:
    """The metric's name in plain words, with how to read it."""
    return METRIC_LABELS.get(metric, metric.replace("_", " ").capitalize())


def compute_metrics(task: str, y_true: Any, y_pred: Any, proba: Any = None,
                    classes: Sequence[Any] | None = None) -> dict[str, float | None]:
    """Every metric of the task on the given rows; None where it is undefined or needs the missing proba.

    Parameters
    ----------
    task : {"binary", "multiclass", "text", "regression"}
    y_true, y_pred : Series or array
        Observed and predicted labels (or numbers for regression), aligned by position.
    proba : array of shape (n, n_classes), optional
        Class probabilities ordered like ``classes``; for binary also the 1-D probability of ``classes[1]``.
        Without it ``roc_auc``, ``log_loss`` and ``brier`` are None.
    classes : sequence, optional
        The model's classes (``model.classes_``); by default the sorted labels seen in ``y_true`` and ``y_pred``.
    """
    scored = _score(task, y_true, y_pred, proba, classes)
    return _plain(_metric_values(scored, _all_rows(scored)))


def bootstrap_intervals(task: str, y_true: Any, y_pred: Any, proba: Any = None,
                        classes: Sequence[Any] | None = None, *, n_boot: int = 200, seed: int = 0,
                        level: float = 0.95) -> dict[str, dict[str, Any]]:
    """Each metric's value on the rows with a seeded percentile-bootstrap interval.

    Returns ``{metric: {"value", "low", "high", "resamples"}}`` where ``resamples`` counts the resamples in
    which the metric was defined: a resample without both classes has no ROC AUC and is skipped. ``low`` and
    ``high`` are None when no resample gave a value. Arguments are those of :func:`compute_metrics`.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}.")
    scored = _score(task, y_true, y_pred, proba, classes)
    point = _plain(_metric_values(scored, _all_rows(scored)))
    rng = np.random.default_rng(seed)
    block = max(1, BOOTSTRAP_BLOCK_CELLS // scored.n_rows)
    draws: dict[str, list[np.ndarray]] = {metric: [] for metric in point}
    for start in range(0, max(n_boot, 0), block):
        idx = rng.integers(0, scored.n_rows, size=(min(block, n_boot - start), scored.n_rows))
        for metric, values in _metric_values(scored, idx).items():
            draws[metric].append(values)
    tail = (1.0 - level) / 2.0 * 100.0
    intervals = {}
    for metric, value in point.items():
        values = np.concatenate(draws[metric]) if draws[metric] else np.empty(0)
        values = values[np.isfinite(values)]
        low, high = np.percentile(values, [tail, 100.0 - tail]) if values.size else (None, None)
        intervals[metric] = {"value": value, "low": jsonable(low), "high": jsonable(high),
                             "resamples": int(values.size)}
    return intervals


def _group_keys(values: Any, n_rows: int, column: str) -> np.ndarray:
    array = _array(values).ravel().astype(object)
    if array.size != n_rows:
        raise ValueError(f"Group column {column!r} has {array.size} rows but y_true has {n_rows}.")
    missing = pd.isna(array)
    return np.where(missing, MISSING_GROUP, array.astype(str))


def subgroup_metrics(task: str, y_true: Any, y_pred: Any, proba: Any, groups: Mapping[str, Any], *,
                     classes: Sequence[Any] | None = None, min_size: int = 30,
                     metric: str | None = None) -> list[dict[str, Any]]:
    """One metric per value of each sensitive column, next to the overall value.

    Each row is ``{"column", "group", "count", "metric", "value", "overall", "gap", "small"}``. ``gap`` is how
    much worse the group does than all rows together, in the metric's units: positive means worse, whichever
    direction the metric runs (``overall - value`` when greater is better, ``value - overall`` otherwise), and
    None when either is undefined. ``small`` flags groups of fewer than ``min_size`` rows, whose value is too
    noisy to act on. Missing values of a column form the group ``"(missing)"``; other values are shown as text.
    Group columns are aligned with ``y_true`` by position. Rows are ordered by column, then largest group first.
    """
    metric = metric or PRIMARY_METRIC[task]
    if metric not in METRICS[task]:
        raise ValueError(f"Metric {metric!r} does not apply to a {task} task.")
    scored = _score(task, y_true, y_pred, proba, classes)
    overall = _plain(_metric_values(scored, _all_rows(scored)))[metric]
    rows = []
    for column, values in groups.items():
        keys = _group_keys(values, scored.n_rows, str(column))
        members = pd.Series(np.arange(scored.n_rows)).groupby(keys).indices
        for group, positions in sorted(members.items(), key=lambda item: (-item[1].size, item[0])):
            value = _plain({metric: _metric_values(scored, positions[None, :])[metric]})[metric]
            gap = None
            if value is not None and overall is not None:
                gap = overall - value if GREATER_IS_BETTER[metric] else value - overall
            rows.append({"column": str(column), "group": str(group), "count": int(positions.size),
                         "metric": metric, "value": value, "overall": overall, "gap": gap,
                         "small": bool(positions.size < min_size)})
    return rows


# ── diagnostics ─────────────────────────────────────────────────────────────────────────────────────


def confusion(y_true: Any, y_pred: Any, classes: Sequence[Any] | None) -> dict[str, list]:
    """Counts of each (observed, predicted) pair: ``matrix[i][j]`` rows observed as ``classes[i]``, predicted ``j``.

    Labels outside ``classes`` are appended after them so no row goes uncounted.
    """
    truth, predicted = _labels_array(y_true, "y_true"), _labels_array(y_pred, "y_pred")
    labels, _, true, pred = _label_space(truth, predicted, classes)
    size = len(labels)
    matrix = np.bincount(true * size + pred, minlength=size * size).reshape(size, size)
    return {"classes": jsonable(labels), "matrix": matrix.tolist()}


def _is_positive(y_true: Any, pos_label: Any) -> np.ndarray:
    return _encode(_labels_array(y_true, "y_true"), [pos_label]) == 0


def _thin(n_points: int, limit: int = MAX_CURVE_POINTS) -> np.ndarray:
    """At most limit evenly spread positions out of n_points, always keeping the first and the last."""
    if n_points <= limit:
        return np.arange(n_points)
    return np.unique(np.round(np.linspace(0, n_points - 1, limit)).astype(int))


def _curve(x: np.ndarray, y: np.ndarray, thresholds: np.ndarray) -> list[dict[str, float | None]]:
    keep = _thin(x.size)
    return [{"x": jsonable(x[i]), "y": jsonable(y[i]), "threshold": jsonable(thresholds[i])} for i in keep]


def roc_points(y_true: Any, proba_pos: Any, pos_label: Any) -> list[dict[str, float | None]]:
    """The ROC curve as ``{"x": false positive rate, "y": true positive rate, "threshold"}``, ≤ 200 points.

    The first point (nothing flagged) has threshold None. Empty when the rows hold only one class.
    """
    positive, scores = _is_positive(y_true, pos_label), np.asarray(_array(proba_pos), dtype=float).ravel()
    if positive.all() or not positive.any():
        return []
    fpr, tpr, thresholds = roc_curve(positive, scores, drop_intermediate=True)
    return _curve(fpr, tpr, thresholds)


def pr_points(y_true: Any, proba_pos: Any, pos_label: Any) -> list[dict[str, float | None]]:
    """The precision-recall curve as ``{"x": recall, "y": precision, "threshold"}`` by rising recall, ≤ 200 points.

    The point at recall 0 has threshold None. Empty when the rows hold no positive.
    """
    positive, scores = _is_positive(y_true, pos_label), np.asarray(_array(proba_pos), dtype=float).ravel()
    if not positive.any():
        return []
    precision, recall, thresholds = precision_recall_curve(positive, scores, drop_intermediate=True)
    thresholds = np.append(thresholds, np.nan)
    return _curve(recall[::-1], precision[::-1], thresholds[::-1])


def calibration_bins(y_true: Any, proba_pos: Any, pos_label: Any, n_bins: int = 10) -> list[dict[str, Any]]:
    """Predicted against observed share of positives in equal-width probability bins; empty bins are left out."""
    positive, scores = _is_positive(y_true, pos_label), np.asarray(_array(proba_pos), dtype=float).ravel()
    which = np.minimum((np.clip(scores, 0.0, 1.0) * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(which, minlength=n_bins)
    predicted = np.bincount(which, weights=scores, minlength=n_bins)
    observed = np.bincount(which, weights=positive.astype(float), minlength=n_bins)
    return [{"mean_predicted": float(predicted[b] / counts[b]), "observed": float(observed[b] / counts[b]),
             "count": int(counts[b])} for b in np.flatnonzero(counts)]


def residuals(y_true: Any, y_pred: Any, max_points: int = 2000, seed: int = 0) -> list[dict[str, float]]:
    """Prediction and residual (observed minus predicted) of at most max_points rows, a seeded sample."""
    observed = np.asarray(_array(y_true), dtype=float).ravel()
    predicted = np.asarray(_array(y_pred), dtype=float).ravel()
    keep = np.arange(observed.size)
    if observed.size > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(observed.size, size=max_points, replace=False))
    return [{"predicted": jsonable(predicted[i]), "residual": jsonable(observed[i] - predicted[i])} for i in keep]


def threshold_effect(y_true: Any, proba_pos: Any, pos_label: Any, threshold: float) -> dict[str, Any]:
    """What flagging rows whose positive-class probability is at least threshold does.

    ``precision`` is None when nothing is flagged and ``recall`` is None when there is no positive row.
    """
    positive, scores = _is_positive(y_true, pos_label), np.asarray(_array(proba_pos), dtype=float).ravel()
    flagged = scores >= threshold
    tp, fp = int((flagged & positive).sum()), int((flagged & ~positive).sum())
    fn, tn = int((~flagged & positive).sum()), int((~flagged & ~positive).sum())
    n = positive.size
    return {
        "threshold": float(threshold),
        "predicted_positive_share": (tp + fp) / n if n else None,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "accuracy": (tp + tn) / n if n else None,
        "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
    }


def coding_tradeoff(y_true: Any, proba: Any, classes: Sequence[Any],
                    thresholds: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """Coverage and accuracy of automatic coding at each confidence threshold.

    A record is coded automatically when its top class probability is at least the threshold (the code is that
    class); the others go to a person. ``coverage`` is the share of records coded automatically, ``accuracy``
    the share of those coded right (None when none is), ``count`` their number. Thresholds default to
    0.00, 0.01, ..., 0.99. At threshold 0 every record is coded, so accuracy is the model's plain accuracy.
    """
    truth = _labels_array(y_true, "y_true")
    probabilities = _proba_array(proba, truth.size)
    if probabilities is None or probabilities.ndim != 2 or probabilities.shape[1] != len(classes):
        raise ValueError("proba must have one column per class.")
    if thresholds is None:
        thresholds = [round(step / 100, 2) for step in range(100)]
    top = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == _encode(truth, list(classes))
    order = np.argsort(top, kind="stable")
    ascending = top[order]
    # correct_from[i]: right codes among the records with the i-th smallest top probability and above.
    correct_from = np.append(np.cumsum(correct[order][::-1])[::-1], 0)
    rows = []
    for threshold in thresholds:
        start = int(np.searchsorted(ascending, threshold, side="left"))
        count = truth.size - start
        rows.append({"threshold": float(threshold), "coverage": count / truth.size if truth.size else None,
                     "accuracy": float(correct_from[start] / count) if count else None, "count": int(count)})
    return rows


def threshold_for_accuracy(tradeoff: Sequence[Mapping[str, Any]], target: float = CODING_TARGET_ACCURACY
                           ) -> float | None:
    """The lowest threshold (so the most records coded) whose accuracy reaches target; None when none does."""
    reached = [row["threshold"] for row in tradeoff if row["accuracy"] is not None and row["accuracy"] >= target]
    return float(min(reached)) if reached else None


# ── everything the run page shows ───────────────────────────────────────────────────────────────────


def _diagnostics(task: str, y_true: Any, y_pred: Any, proba: Any, classes: Sequence[Any] | None,
                 seed: int) -> dict[str, Any]:
    if task == "regression":
        return {"residuals": residuals(y_true, y_pred, seed=seed)}
    diagnostics: dict[str, Any] = {"confusion": confusion(y_true, y_pred, classes)}
    probabilities = _proba_array(proba, _array(y_true).size)
    if task == "binary":
        scores = _positive_scores(probabilities)
        empty = scores is None
        positive_label = list(classes)[1] if classes is not None else diagnostics["confusion"]["classes"][1]
        diagnostics["roc"] = [] if empty else roc_points(y_true, scores, positive_label)
        diagnostics["pr"] = [] if empty else pr_points(y_true, scores, positive_label)
        diagnostics["calibration"] = [] if empty else calibration_bins(y_true, scores, positive_label)
        diagnostics["threshold_effect"] = (None if empty else
                                           threshold_effect(y_true, scores, positive_label, DEFAULT_THRESHOLD))
        return diagnostics
    if probabilities is None:
        diagnostics["coding_tradeoff"], diagnostics["coding_threshold"] = [], None
        return diagnostics
    model_classes = list(classes) if classes is not None else diagnostics["confusion"]["classes"]
    tradeoff = coding_tradeoff(y_true, probabilities, model_classes)
    diagnostics["coding_tradeoff"] = tradeoff
    diagnostics["coding_threshold"] = threshold_for_accuracy(tradeoff, CODING_TARGET_ACCURACY)
    return diagnostics


def evaluate(task: str, y_true: Any, y_pred: Any, proba: Any, classes: Sequence[Any] | None, *,
             groups: Mapping[str, Any] | None = None, seed: int = 0, n_boot: int = 200,
             min_group_size: int = 30) -> dict[str, Any]:
    """Everything the run page shows about a model's held-out performance, ready for a JSON column.

    Returns ``{"task", "n_rows", "classes", "primary_metric", "metrics", "subgroups", "diagnostics"}``:
    ``metrics`` is :func:`bootstrap_intervals`, ``subgroups`` is :func:`subgroup_metrics` of the primary metric
    for each column of ``groups`` (empty without groups), and ``diagnostics`` holds, for binary tasks,
    ``confusion``, ``roc``, ``pr``, ``calibration`` and ``threshold_effect`` at 0.5; for multiclass and text
    tasks ``confusion``, ``coding_tradeoff`` and ``coding_threshold`` (the lowest threshold coding at 95 %
    accuracy, or None); for regression ``residuals``. Arguments are those of :func:`compute_metrics`.
    """
    _check_task(task)
    if task == "regression":
        classes = None
    elif classes is None:
        classes = _sorted_labels(np.concatenate([_labels_array(y_true, "y_true"), _labels_array(y_pred, "y_pred")]))
    else:
        classes = list(classes)
    metrics = bootstrap_intervals(task, y_true, y_pred, proba, classes, n_boot=n_boot, seed=seed)
    subgroups = (subgroup_metrics(task, y_true, y_pred, proba, groups, classes=classes, min_size=min_group_size)
                 if groups else [])
    return jsonable({
        "task": task,
        "n_rows": int(_array(y_true).size),
        "classes": classes,
        "primary_metric": PRIMARY_METRIC[task],
        "metrics": metrics,
        "subgroups": subgroups,
        "diagnostics": _diagnostics(task, y_true, y_pred, proba, classes, seed),
    })
