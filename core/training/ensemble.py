"""Averaging ensembles of the search's best candidates, and the out-of-fold rule that decides whether to use one.

An ensemble averages the outputs of a few fitted candidate pipelines on one scale, the scale their SHAP values are
computed on, so the average of the members' explanations explains the ensemble exactly:

- ``"value"``: regression predictions;
- ``"log-odds"``: the margins (``decision_function``) of linear models and gradient boosting, turned into class
  probabilities by the logistic function (two classes) or softmax;
- ``"probability"``: class probabilities of random forests and extra trees (soft voting).

Members of different scales are never mixed. Whether an ensemble is used is decided on the search's out-of-fold
predictions: :func:`select_ensembles` adds members greedily while the cross-validated score improves, and
:func:`choose` takes an ensemble when its score beats the best single candidate's (for metrics that count rows,
also when it contains that candidate, the folds cannot tell the two apart and its log loss is lower).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.pipeline import Pipeline

MAX_MEMBERS = 3
SCALES = ("value", "log-odds", "probability")
# Metrics that count rows: near-equal models are a row or two apart on them, so averages are built on the log loss
# and a tie is broken by it (see ``choose``).
ROW_COUNTED = ("accuracy", "balanced_accuracy", "f1", "f1_macro")


# ── combining outputs ───────────────────────────────────────────────────────────────────────────────


def as_margins(decision: np.ndarray) -> np.ndarray:
    """Margins as a 2-D array: one column for two classes (log-odds of the second), else one per class."""
    decision = np.asarray(decision, dtype=float)
    return decision[:, None] if decision.ndim == 1 else decision


def margins_to_proba(margins: np.ndarray) -> np.ndarray:
    """Class probabilities from (averaged) margins, as the members' own ``predict_proba`` makes them."""
    if margins.shape[1] == 1:
        positive = expit(margins[:, 0])
        return np.column_stack([1.0 - positive, positive])
    return softmax(margins, axis=1)


def combine(outputs: Sequence[np.ndarray]) -> np.ndarray:
    """The members' outputs on their common scale, averaged with equal weights."""
    return np.mean(np.stack([np.asarray(o, dtype=float) for o in outputs]), axis=0)


# ── the fitted ensemble ─────────────────────────────────────────────────────────────────────────────


class _Averaging(BaseEstimator):
    """Fits every member (a ``Pipeline`` of ``preprocess`` and ``model``) on the same rows; averages their outputs.

    Members whose preprocessing is configured identically share one fitted preprocessor, so its (possibly large)
    output is computed once, at fitting and at predicting. A member fitted here is exactly the member fitted on its
    own: the shared preprocessor is fitted on the same rows as each one's would be.
    """

    def __init__(self, members: list[tuple[str, Pipeline]] | None = None, scale: str = "value"):
        self.members = members
        self.scale = scale

    def fit(self, X, y):  # noqa: N803 - scikit-learn's argument names
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}")
        clones = [(name, clone(member)) for name, member in self.members]
        hashes = [joblib.hash(member.steps[0][1]) for _name, member in clones]  # same configuration, same hash
        keys = [list(dict.fromkeys(hashes)).index(h) for h in hashes]
        fitted: list[tuple[str, Pipeline] | None] = [None] * len(clones)
        for key in dict.fromkeys(keys):  # one preprocessing at a time, so only one transformed copy is held
            preprocess = clones[keys.index(key)][1].steps[0][1]
            transformed = preprocess.fit_transform(X, y)
            for position in (p for p, k in enumerate(keys) if k == key):
                name, member = clones[position]
                model = member.steps[-1][1].fit(transformed, y)
                fitted[position] = (name, Pipeline([(member.steps[0][0], preprocess), (member.steps[-1][0], model)]))
            del transformed
        self.members_, self.preprocessor_of_ = fitted, keys
        first = fitted[0][1]
        if hasattr(first, "classes_"):
            self.classes_ = first.classes_
            for name, member in fitted[1:]:
                if list(member.classes_) != list(self.classes_):
                    raise ValueError(f"member {name} has other classes than the first member")
        return self

    def _outputs(self, X, method: str) -> list[np.ndarray]:  # noqa: N803
        transformed: dict[int, Any] = {}
        outputs = []
        for (_name, member), key in zip(self.members_, self.preprocessor_of_, strict=True):
            if key not in transformed:
                transformed[key] = member.steps[0][1].transform(X)
            outputs.append(getattr(member.steps[-1][1], method)(transformed[key]))
        return outputs


class AveragingRegressor(RegressorMixin, _Averaging):
    """The mean of the members' predictions."""

    def predict(self, X):  # noqa: N803
        return combine(self._outputs(X, "predict"))


class AveragingClassifier(ClassifierMixin, _Averaging):
    """Averaged margins (``scale="log-odds"``) or averaged class probabilities (``scale="probability"``)."""

    def decision_function(self, X):  # noqa: N803
        if self.scale != "log-odds":
            raise AttributeError("only an ensemble that averages margins has a decision function")
        margins = combine([as_margins(m) for m in self._outputs(X, "decision_function")])
        return margins[:, 0] if margins.shape[1] == 1 else margins

    def predict_proba(self, X):  # noqa: N803
        if self.scale == "log-odds":
            return margins_to_proba(as_margins(self.decision_function(X)))
        return combine(self._outputs(X, "predict_proba"))

    def predict(self, X):  # noqa: N803
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def is_ensemble(model) -> bool:
    return isinstance(model, _Averaging)


# ── choosing members from out-of-fold predictions ───────────────────────────────────────────────────


@dataclass
class FoldOutputs:
    """One candidate's cross-validation: per fold its score, and its validation rows' outputs on its scale."""

    name: str
    scale: str | None            # None: it cannot join an ensemble (e.g. a fold lacked a class)
    scores: list[float]
    outputs: list[np.ndarray]    # per fold: predictions (value), margins (log-odds) or probabilities
    fit_seconds: list[float] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.nanmean(self.scores))


def select_ensembles(evaluated: Sequence[FoldOutputs], *, score_fold, greater_is_better: bool,
                     max_members: int = MAX_MEMBERS) -> list[dict[str, Any]]:
    """For each scale, the greedy ensemble of at least two candidates whose CV score beats its best member.

    ``score_fold(fold, scale, outputs)`` scores one fold's (averaged) outputs on the metric the ensemble is built
    for. Starting from the candidate of a scale that scores best, the candidate whose addition improves the
    cross-validated score most is added, while it improves it and up to ``max_members``. Ties go to the earlier
    candidate, so the result is deterministic. Returns ``[{"members": [...], "scale": ..., "scores": [...]}]``,
    best first.
    """
    sign = 1.0 if greater_is_better else -1.0

    def scores_of(members: list[FoldOutputs], scale: str) -> list[float]:
        return [score_fold(fold, scale, combine([m.outputs[fold] for m in members]))
                for fold in range(len(members[0].outputs))]

    found = []
    for scale in SCALES:
        own = [(e, scores_of([e], scale)) for e in evaluated if e.scale == scale]
        if len(own) < 2:
            continue
        ranked = sorted(own, key=lambda item: -sign * float(np.mean(item[1])))  # stable: ties keep their order
        pool = [e for e, _scores in ranked]
        chosen, best_scores = [pool[0]], ranked[0][1]
        while len(chosen) < max_members:
            trials = [(sign * float(np.mean(scores)), extra, scores) for extra in pool if extra not in chosen
                      for scores in [scores_of([*chosen, extra], scale)]]
            if not trials:
                break
            value, extra, scores = max(trials, key=lambda trial: trial[0])  # the first of equals
            if value <= sign * float(np.mean(best_scores)):
                break
            chosen, best_scores = [*chosen, extra], scores
        if len(chosen) > 1:
            found.append({"members": [m.name for m in chosen], "scale": scale, "scores": best_scores})
    return sorted(found, key=lambda item: -sign * float(np.mean(item["scores"])))


def choose(rows: Sequence[dict[str, Any]], *, metric: str, greater_is_better: bool,
           rows_searched: int) -> dict[str, Any]:
    """The leaderboard row to fit: the best single candidate, unless an average beats it.

    An average (a row with ``members``) beats the best single candidate when its CV mean is better. For metrics that
    count rows (:data:`ROW_COUNTED`), where a couple of validation rows decide between near-equal models, it also
    beats it when it contains that candidate, has the lower out-of-fold log loss, and the candidate is not better
    on the metric by more than the folds can tell: two standard errors of the paired fold differences, and at
    least one row's worth (1 / rows searched). Rows carry ``mean``, per-fold ``scores`` and, when the metric counts
    rows, ``log_loss``.
    """
    sign = 1.0 if greater_is_better else -1.0
    singles = [row for row in rows if not row.get("members")]
    best = max(singles, key=lambda row: sign * row["mean"])  # the first of equals
    for row in sorted((r for r in rows if r.get("members")), key=lambda r: -sign * r["mean"]):
        if sign * row["mean"] > sign * best["mean"]:
            return row
        if metric in ROW_COUNTED and best["candidate"] in row["members"] and _undecided(best, row, sign,
                                                                                         rows_searched):
            return row
    return best


def _undecided(best: dict[str, Any], average: dict[str, Any], sign: float, rows_searched: int) -> bool:
    """The metric cannot tell the best single candidate from the average, and the log loss prefers the average."""
    if best.get("log_loss") is None or average.get("log_loss") is None or average["log_loss"] >= best["log_loss"]:
        return False
    lead = sign * (np.asarray(best["scores"], dtype=float) - np.asarray(average["scores"], dtype=float))
    noise = 2 * float(np.std(lead, ddof=1)) / np.sqrt(len(lead)) if len(lead) > 1 else 0.0
    return float(np.mean(lead)) <= max(noise, 1.0 / rows_searched)
