"""The fixed, seeded list of candidate pipelines the search evaluates, fastest first.

Order matters: the budget stops the search between candidates, so the quick, robust ones come first and
even a tiny budget gets one finished model. The list is part of what makes a run reproducible: a re-run
evaluates exactly the candidates that finished, by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline

from core.data.schema import ColumnType
from core.training.ensemble import AveragingClassifier, AveragingRegressor
from core.training.features import ColumnTyper, build_preprocessor

CLASSIFICATION = ("binary", "multiclass", "text")


@dataclass(frozen=True)
class Candidate:
    """One entry of the search. ``kind`` and ``effort`` let the budget guess its time (``core.training.search``):
    linear models and boosting cost about rows × columns × iterations (``effort``: their usual number), forests
    about trees (``effort``) × rows × log(rows) × columns tried per split."""

    name: str
    description: str
    make: Callable[[int], BaseEstimator]  # seed -> estimator
    scale: bool = False
    text: str = "words"
    kind: str = "linear"  # "linear", "boosting" or "forest"
    effort: float = 30


def _classification(task: str) -> list[Candidate]:
    candidates = [
        Candidate("logistic_regression", "Regularised logistic regression",
                  lambda s: LogisticRegression(C=1.0, max_iter=2000), scale=True),
        Candidate("logistic_regression_strong", "Logistic regression, stronger regularisation",
                  lambda s: LogisticRegression(C=0.1, max_iter=2000), scale=True),
    ]
    if task == "text":
        candidates += [
            Candidate("text_words_characters", "TF-IDF of words and character n-grams + logistic regression",
                      lambda s: LogisticRegression(C=10.0, max_iter=3000), scale=True, text="words+characters"),
            Candidate("text_words_weak_regularisation", "TF-IDF of words + logistic regression (C=10)",
                      lambda s: LogisticRegression(C=10.0, max_iter=3000), scale=True),
        ]
        return candidates
    return candidates + [
        Candidate("gradient_boosting", "Histogram gradient boosting (default settings)",
                  lambda s: HistGradientBoostingClassifier(random_state=s), kind="boosting", effort=100),
        Candidate("gradient_boosting_slow", "Histogram gradient boosting, learning rate 0.05, 500 rounds",
                  lambda s: HistGradientBoostingClassifier(learning_rate=0.05, max_iter=500, max_leaf_nodes=15,
                                                           early_stopping=True, random_state=s),
                  kind="boosting", effort=200),
        Candidate("gradient_boosting_deep", "Histogram gradient boosting, deeper trees, L2 regularisation",
                  lambda s: HistGradientBoostingClassifier(max_leaf_nodes=63, min_samples_leaf=40,
                                                           l2_regularization=1.0, random_state=s),
                  kind="boosting", effort=150),
        Candidate("random_forest", "Random forest, 300 trees",
                  lambda s: RandomForestClassifier(n_estimators=300, min_samples_leaf=2, n_jobs=1, random_state=s),
                  kind="forest", effort=300),
        Candidate("extra_trees", "Extra trees, 300 trees",
                  lambda s: ExtraTreesClassifier(n_estimators=300, min_samples_leaf=2, n_jobs=1, random_state=s),
                  kind="forest", effort=300),
    ]


def _regression() -> list[Candidate]:
    return [
        Candidate("ridge", "Ridge regression", lambda s: Ridge(alpha=1.0), scale=True),
        Candidate("gradient_boosting", "Histogram gradient boosting (default settings)",
                  lambda s: HistGradientBoostingRegressor(random_state=s), kind="boosting", effort=100),
        Candidate("gradient_boosting_slow", "Histogram gradient boosting, learning rate 0.05, 500 rounds",
                  lambda s: HistGradientBoostingRegressor(learning_rate=0.05, max_iter=500, max_leaf_nodes=15,
                                                          early_stopping=True, random_state=s),
                  kind="boosting", effort=200),
        Candidate("gradient_boosting_deep", "Histogram gradient boosting, deeper trees, L2 regularisation",
                  lambda s: HistGradientBoostingRegressor(max_leaf_nodes=63, min_samples_leaf=40,
                                                          l2_regularization=1.0, random_state=s),
                  kind="boosting", effort=150),
        Candidate("random_forest", "Random forest, 300 trees",
                  lambda s: RandomForestRegressor(n_estimators=300, min_samples_leaf=2, n_jobs=1, random_state=s),
                  kind="forest", effort=300),
        Candidate("extra_trees", "Extra trees, 300 trees",
                  lambda s: ExtraTreesRegressor(n_estimators=300, min_samples_leaf=2, n_jobs=1, random_state=s),
                  kind="forest", effort=300),
    ]


def candidates_for(task: str) -> list[Candidate]:
    """Every candidate for a task, in the order the search tries them."""
    return _regression() if task == "regression" else _classification(task)


def build_pipeline(candidate: Candidate, types: dict[str, str], seed: int) -> Pipeline:
    """One named Pipeline: prepare columns → preprocess → model; training and scoring share it."""
    has_text = any(kind == ColumnType.text for kind in types.values())
    return Pipeline([
        ("prepare", ColumnTyper(types)),
        ("preprocess", build_preprocessor(types, scale=candidate.scale or has_text, text=candidate.text)),
        ("model", candidate.make(seed)),
    ])


def build_ensemble(members: list[Candidate], types: dict[str, str], seed: int, *, task: str, scale: str) -> Pipeline:
    """prepare columns → the average of the members' own preprocess → model pipelines, on ``scale``.

    Each member is exactly the candidate's pipeline after its first step, so it is fitted and predicts as it did
    in the search.
    """
    parts = [(c.name, Pipeline(build_pipeline(c, types, seed).steps[1:])) for c in members]
    average = AveragingRegressor if task == "regression" else AveragingClassifier
    return Pipeline([("prepare", ColumnTyper(types)), ("model", average(members=parts, scale=scale))])
