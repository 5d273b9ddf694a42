"""Monitoring: every prediction batch compared with the model's training data, and scored once labels arrive.

A :class:`~core.models.MonitoringReport` is made for every :class:`~core.models.PredictionBatch` by a job
(``monitoring.report``) that :func:`batch_stored` submits when :mod:`core.serving` records a batch. It holds

- **data drift** of each input column of the model against the run's dataset version (the training data):
  method, score, threshold and verdict per column, and the share of drifted columns;
- **prediction drift**: the batch's predictions against the model's predictions on its held-out test rows;
- **data quality**: missing shares against the training data, categories never seen in training, numbers outside
  the training range; and the **volume** (rows, against earlier batches of the model);
- **performance**, once true values are uploaded (:func:`attach_labels`): the run's metrics with bootstrap
  intervals and, for coding (text) models, the automation rate and the accuracy of automatically coded records.

The verdicts are evidently 0.7's ``DataDriftPreset`` defaults, computed the same way but vectorised from a
*reference profile*: per column the quantile integrals (or, with at most 10,000 distinct values, the exact value
counts), standard deviation and category counts of the training data, computed once per model version and kept as an
artifact. evidently chooses its method by the size of the reference
(at most 1,000 values: Kolmogorov-Smirnov, chi-square or Z-test p-values, drift below 0.05; more: normed
Wasserstein distance for numbers and Jensen-Shannon distance for categories and numbers with at most 5 values,
drift at 0.1 or more; text: a domain classifier's ROC AUC), and so does Steward. A batch smaller than
``STEWARD_MONITOR_MIN_ROWS`` is reported but not judged: its scores are shown, never turned into verdicts or alerts.

evidently itself makes the full HTML report, on seeded samples of both sides when they are big
(``STEWARD_MONITOR_HTML_ROWS``), on request (:func:`request_html`) because loading evidently takes seconds.
When a report is finished, ``core.alerts.evaluate_report`` turns the model's alert rules into alerts, if the
alerts module provides it.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlmodel import Session, col, select

from core import audit
from core.artifacts import ArtifactStore
from core.auth import require_role
from core.config import Settings
from core.data.profile import jsonable
from core.data.schema import ColumnType
from core.errors import DomainError, InvalidInput, NotFound
from core.models import (
    Alert,
    ModelVersion,
    MonitoringReport,
    PipelineRun,
    PredictionBatch,
    RegisteredModel,
    Role,
    StageTransition,
    TrainingRunPublic,
    UserPublic,
    VersionStatus,
    utcnow,
)

log = logging.getLogger(__name__)

WRITERS = (Role.builder, Role.admin)  # who uploads labels and recomputes reports
PROFILE_FORMAT = 2
CELLS = 1000  # quantile cells per numeric reference column: the Wasserstein distance is exact to ~1e-4
SMALL_REFERENCE = 1000  # evidently: a reference of at most this many values is judged by p-values
EXACT_DISTINCT = 10_000  # a reference column with at most this many distinct values keeps them all: exact distances
FEW_VALUES = 5  # evidently: numbers with at most this many distinct values are compared as categories
P_VALUE = 0.05
DISTANCE = 0.1
TEXT_AUC = 0.55
TEXT_SAMPLE = 5000  # rows of each side the text domain classifier is trained on
MISSING_JUMP = 0.1  # a column empty this much more often than in training is a quality finding
EXAMPLES = 5
HEALTH_ORDER = {"alert": 0, "warning": 1, "ok": 2, "no data": 3}
JOB_REPORT, JOB_HTML = "monitoring.report", "monitoring.html"

METHODS = {
    "wasserstein": "Wasserstein distance (normed)",
    "jensenshannon": "Jensen-Shannon distance",
    "ks": "K-S p_value",
    "chisquare": "chi-square p_value",
    "z": "Z-test p_value",
    "abs_text_content_drift": "Absolute text content drift",
    "perc_text_content_drift": "Percentile text content drift",
}
P_VALUE_METHODS = {"ks", "chisquare", "z"}
KIND = {ColumnType.numeric: "num", ColumnType.datetime: "num", ColumnType.categorical: "cat",
        ColumnType.boolean: "cat", ColumnType.text: "text"}
VERDICT_WORDS = {True: "drift", False: "no drift"}


# ── values ──────────────────────────────────────────────────────────────────────────────────────────


def drift_kind(column_type: str) -> str | None:
    """How a column is compared: "num", "cat", "text", or None (identifiers and ignored columns are not)."""
    try:
        return KIND.get(ColumnType(column_type))
    except ValueError:
        return None


def _numbers(series: pd.Series) -> np.ndarray:
    """Finite numbers of a numeric or datetime column (datetimes as days since 1970), missing values dropped."""
    if pd.api.types.is_datetime64_any_dtype(series):
        stamps = series.dropna()
        values = stamps.to_numpy(dtype="datetime64[ns]").astype("int64") / 86_400e9
    else:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return values[np.isfinite(values)]


def _categories(series: pd.Series) -> pd.Series:
    """A categorical or yes/no column as text, missing values dropped ("true"/"false" for yes/no)."""
    if pd.api.types.is_bool_dtype(series) or str(series.dtype) == "boolean":
        series = series.map({True: "true", False: "false"}, na_action="ignore")
    elif pd.api.types.is_float_dtype(series):
        series = series.map(lambda v: str(int(v)) if float(v).is_integer() else str(v), na_action="ignore")
    return series.dropna().astype(str)


def _texts(series: pd.Series) -> pd.Series:
    return series.dropna().astype(str)


def _category_key(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else str(value)
    return str(value)


def _category_counts(series: pd.Series) -> dict[str, int]:
    """Rows per category (as text, "true"/"false" for yes/no), most frequent first, missing values left out.

    Counted on the column as it is (a hash count, or the codes of a dictionary-encoded column) and only then turned
    into text, so a million rows cost one pass.
    """
    counted = series.value_counts(dropna=True, sort=True)
    counts: dict[str, int] = {}
    for value, count in zip(counted.index, counted.to_numpy(), strict=True):
        if count > 0:
            key = _category_key(value)
            counts[key] = counts.get(key, 0) + int(count)
    return counts


def read_rows(path, feature_types: Mapping[str, str]) -> pd.DataFrame:
    """A stored batch (inputs and predictions) from Parquet; category columns stay dictionary-encoded, which makes
    counting a million rows cheap and keeps them small in memory."""
    import pyarrow.parquet as pq

    names = set(pq.read_schema(path).names)
    encoded = [name for name, kind in feature_types.items() if name in names and drift_kind(kind) == "cat"
               and str(kind) != "boolean"]
    encoded += [name for name in ("__predicted__", "__coding__") if name in names]
    return pq.read_table(path, read_dictionary=encoded).to_pandas()


@dataclass
class _Reduced:
    """A batch column reduced once to what drift and quality need."""

    rows: int
    present: int
    numbers: np.ndarray | None = None  # finite numbers (a copy: sorted in place when a method needs their order)
    counts: dict[str, int] | None = None  # rows per category
    texts: pd.Series | None = None
    _sorted: bool = False

    def sorted_numbers(self) -> np.ndarray:
        if not self._sorted:
            self.numbers.sort()
            self._sorted = True
        return self.numbers

    def number_counts(self) -> dict[float, int]:
        counted = pd.Series(self.numbers, copy=False).value_counts(sort=False)  # hashing: no sort needed
        return {float(v): int(c) for v, c in zip(counted.index, counted.to_numpy(), strict=True)}


def _reduce(series: pd.Series, kind: str) -> _Reduced:
    rows = int(len(series))
    if kind == "num":
        numbers = _numbers(series)
        return _Reduced(rows=rows, present=int(numbers.size), numbers=numbers)
    if kind == "cat":
        counts = _category_counts(series)
        return _Reduced(rows=rows, present=sum(counts.values()), counts=counts)
    texts = _texts(series)
    return _Reduced(rows=rows, present=int(texts.size), texts=texts)


# ── the reference profile (pure) ────────────────────────────────────────────────────────────────────


def _quantile_integrals(sorted_values: np.ndarray, center: float, cells: int = CELLS) -> np.ndarray:
    """∫₀ᵗ Q(u) du of the values' quantile function Q (shifted by ``center``) at t = 0, 1/cells, …, 1.

    The Wasserstein distance is ∫|Q_ref − Q_cur|; summing |difference of the two integrals| cell by cell gives it
    exactly wherever the two quantile functions do not cross inside a cell (and a hair less where they do).
    """
    n = sorted_values.size
    shifted = sorted_values - center
    cumulative = np.concatenate([[0.0], np.cumsum(shifted)])
    positions = np.arange(cells + 1, dtype="float64") / cells * n
    whole = np.floor(positions).astype(np.int64)
    part = positions - whole
    following = shifted[np.minimum(whole, n - 1)]
    return (cumulative[whole] + part * following) / n


def _profile_column(series: pd.Series, kind: str, *, seed: int = 0) -> dict[str, Any]:
    rows = int(len(series))
    if kind == "num":
        values = np.sort(_numbers(series))
        n = int(values.size)
        entry: dict[str, Any] = {"kind": kind, "rows": rows, "n": n}
        if not n:
            return entry
        distinct = np.unique(values)
        center = float(np.median(values))
        entry.update(std=float(np.std(values)), mean=float(values.mean()), min=float(values[0]),
                     max=float(values[-1]), distinct=int(distinct.size), center=center,
                     integrals=_quantile_integrals(values, center).tolist())
        if distinct.size <= EXACT_DISTINCT:
            # Whole numbers and small references: their exact distribution; quantile cells would blur the steps.
            unique, counts = np.unique(values, return_counts=True)
            entry["counts"] = [[float(v), int(c)] for v, c in zip(unique, counts, strict=True)]
        return entry
    if kind == "cat":
        counts = _category_counts(series)
        return {"kind": kind, "rows": rows, "n": sum(counts.values()), "counts": counts}
    values = _texts(series)
    sample = values.sample(n=min(TEXT_SAMPLE, len(values)), random_state=seed) if len(values) else values
    return {"kind": kind, "rows": rows, "n": int(values.size), "sample": sample.tolist()}


def prediction_columns(run: TrainingRunPublic) -> dict[str, tuple[str, str]]:
    """The stored prediction columns compared for prediction drift: {stored name: (label, kind)}."""
    if run.task == "regression":
        return {"__predicted__": ("predicted value", "num")}
    columns = {"__predicted__": ("predicted class", "cat")}
    if run.task == "binary" and run.classes:
        positive = str(run.classes[1])
        columns[f"__proba__{positive}"] = (f"probability of {positive}", "num")
    return columns


def _automation(proba: pd.DataFrame, threshold: float | None) -> float | None:
    if threshold is None or proba.empty:
        return None
    return float((proba.to_numpy(dtype="float64").max(axis=1) >= threshold).mean())


def build_reference_profile(frame: pd.DataFrame, feature_types: Mapping[str, str], *,
                            predictions: pd.DataFrame | None = None, run: TrainingRunPublic | None = None,
                            seed: int = 0) -> dict[str, Any]:
    """What monitoring needs to know about the training data, computed once: per column its kind and summary.

    ``frame`` holds the training data (at least the ``feature_types`` columns, canonical types); ``predictions``
    the model's predictions on its held-out rows (a run's stored test set) when prediction drift is wanted.
    """
    columns = {}
    for name, column_type in feature_types.items():
        kind = drift_kind(column_type)
        if kind is not None and name in frame.columns:
            columns[name] = {"type": str(column_type), **_profile_column(frame[name], kind, seed=seed)}
    profile: dict[str, Any] = {"format": PROFILE_FORMAT, "rows": int(len(frame)), "columns": columns,
                               "predictions": {}}
    if predictions is not None and run is not None:
        for stored, (label, kind) in prediction_columns(run).items():
            if stored in predictions.columns:
                profile["predictions"][stored] = {"label": label, **_profile_column(predictions[stored], kind,
                                                                                    seed=seed)}
        if run.task == "text" and run.classes:
            proba = predictions[[f"__proba__{c}" for c in run.classes if f"__proba__{c}" in predictions.columns]]
            profile["automation_rate"] = _automation(proba, run.coding_threshold)
        profile["prediction_rows"] = int(len(predictions))
    return jsonable(profile)


# ── drift of one column (pure, evidently's defaults) ────────────────────────────────────────────────


def _result(method: str | None, score: float | None, threshold: float | None, drifted: bool | None,
            note: str | None = None) -> dict[str, Any]:
    usable = score is not None and math.isfinite(score)
    return {"method": method, "method_name": METHODS.get(method, "") if method else "",
            "score": float(score) if usable else None, "threshold": threshold,
            "lower_is_drift": method in P_VALUE_METHODS, "drifted": bool(drifted) if usable else None, "note": note}


def _jensen_shannon(reference: Mapping[Any, int], current: Mapping[Any, int]) -> float:
    """scipy's ``jensenshannon`` with the natural logarithm, as evidently calls it (numpy only: scipy.spatial takes
    seconds to import)."""
    keys = list(set(reference) | set(current))
    p = np.array([reference.get(key, 0) for key in keys], dtype="float64")
    q = np.array([current.get(key, 0) for key in keys], dtype="float64")
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0).sum()
        right = np.where(q > 0, q * np.log(q / m), 0.0).sum()
    return float(np.sqrt(max((left + right) / 2, 0.0)))


def _chi_square(reference: Mapping[Any, int], current: Mapping[Any, int]) -> float:
    from scipy.stats import chisquare

    keys = list(set(reference) | set(current))
    ref_total, cur_total = sum(reference.values()), sum(current.values())
    expected = np.array([reference.get(key, 0) * cur_total / ref_total for key in keys], dtype="float64")
    observed = np.array([current.get(key, 0) for key in keys], dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(chisquare(observed, expected)[1])


def _z_test(reference: Mapping[Any, int], current: Mapping[Any, int]) -> float:
    keys = sorted(set(reference) | set(current), key=lambda k: (str(type(k)), k))
    if len(keys) == 1:
        return 1.0
    first = keys[0]
    n1, n2 = sum(reference.values()), sum(current.values())
    p1 = (n1 - reference.get(first, 0)) / n1
    p2 = (n2 - current.get(first, 0)) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(math.erfc(abs(z) / math.sqrt(2))) if math.isfinite(z) else float("nan")  # 2 (1 - Φ(|z|))


def _exact_wasserstein(values: np.ndarray, counts: np.ndarray, current_sorted: np.ndarray) -> float:
    """∫|F_ref − F_cur| exactly, the reference given as distinct values and counts (scipy's ``wasserstein_distance``
    in numpy, on the union of both sides' distinct values)."""
    ahead = np.r_[True, current_sorted[1:] != current_sorted[:-1]]
    points = np.union1d(values, current_sorted[ahead])
    ref_cdf = np.r_[0, np.cumsum(counts)][np.searchsorted(values, points[:-1], side="right")] / counts.sum()
    cur_cdf = np.searchsorted(current_sorted, points[:-1], side="right") / current_sorted.size
    return float(np.sum(np.abs(ref_cdf - cur_cdf) * np.diff(points)))


def _reference_values(entry: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    pairs = np.asarray(entry["counts"], dtype="float64").reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def _wasserstein(entry: Mapping[str, Any], current_sorted: np.ndarray) -> float:
    if entry.get("counts"):
        values, counts = _reference_values(entry)
        return _exact_wasserstein(values, counts, current_sorted) / max(float(entry["std"]), 0.001)
    reference = np.asarray(entry["integrals"], dtype="float64")
    cells = reference.size - 1
    current = _quantile_integrals(current_sorted, float(entry["center"]), cells)
    distance = float(np.abs(np.diff(reference) - np.diff(current)).sum())
    return distance / max(float(entry["std"]), 0.001)


def _text_drift(reference: Sequence[str], current: pd.Series, small: bool, seed: int = 0) -> tuple[float, float]:
    """evidently's text drift: ROC AUC of a classifier telling the two apart, and the AUC that counts as drift."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline

    sample = current.sample(n=min(TEXT_SAMPLE, len(current)), random_state=seed) if len(current) else current
    texts = pd.concat([pd.Series(list(reference), dtype=object), sample.astype(object)], ignore_index=True)
    target = np.r_[np.zeros(len(reference)), np.ones(len(sample))]
    x_train, x_test, y_train, y_test = train_test_split(texts, target, test_size=0.5, random_state=42, shuffle=True)
    pipeline = Pipeline([("vectorization", TfidfVectorizer(sublinear_tf=True, max_df=0.5, stop_words="english")),
                         ("classification", SGDClassifier(alpha=0.0001, max_iter=50, penalty="l1",
                                                          loss="modified_huber", random_state=42))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline.fit(x_train, y_train)
    auc = float(roc_auc_score(y_test, pipeline.predict_proba(x_test)[:, 1]))
    if not small:
        return auc, TEXT_AUC
    # evidently's small-data variant: drift when the AUC beats the 95th percentile of random classifiers.
    rng = np.random.RandomState(42)
    seeds = rng.randint(0, 10_000, size=1000)
    randoms = [roc_auc_score(y_test, np.random.RandomState(s).rand(len(y_test))) for s in seeds]
    return auc, float(np.percentile(randoms, 95))


def column_drift(entry: Mapping[str, Any], series: pd.Series, *, judge_text: bool = True,
                 seed: int = 0) -> dict[str, Any]:
    """Drift of one column of a batch against its reference profile entry, with evidently's default method.

    Returns ``{"method", "method_name", "score", "threshold", "lower_is_drift", "drifted", "note"}``.
    """
    return _drift(entry, _reduce(series, entry["kind"]), judge_text=judge_text, seed=seed)


def _drift(entry: Mapping[str, Any], reduced: _Reduced, *, judge_text: bool, seed: int) -> dict[str, Any]:
    kind, ref_n = entry["kind"], int(entry.get("n") or 0)
    small = ref_n <= SMALL_REFERENCE
    if kind == "text":
        current = reduced.texts
        if not ref_n or current.empty:
            return _result(None, None, None, None, "No text to compare on one side.")
        method = "perc_text_content_drift" if small else "abs_text_content_drift"
        if not judge_text:
            return _result(method, None, None, None, "Text is compared only in batches big enough to judge.")
        try:
            auc, threshold = _text_drift(entry.get("sample") or [], current, small, seed)
        except ValueError as error:  # e.g. one side too short for a train/test split
            return _result(method, None, None, None, f"Could not compare the texts ({error}).")
        return _result(method, auc, threshold, auc > threshold)

    if kind == "num":
        if not ref_n or not reduced.present:
            side = "training data" if not ref_n else "batch"
            return _result(None, None, None, None, f"No values to compare in the {side}.")
        reference_counts = {value: count for value, count in entry.get("counts") or []}
        if entry["distinct"] <= FEW_VALUES:
            current_counts = reduced.number_counts()
            n_values = len(set(reference_counts) | set(current_counts))
        else:
            current_counts, n_values = {}, FEW_VALUES + 1
        if small:
            if n_values <= FEW_VALUES:
                if n_values > 2:
                    return _checked("chisquare", _chi_square(reference_counts, current_counts))
                return _checked("z", _z_test(reference_counts, current_counts))
            from scipy.stats import ks_2samp

            values, counts = _reference_values(entry)
            p_value = float(ks_2samp(np.repeat(values, counts.astype(np.int64)), reduced.sorted_numbers())[1])
            return _result("ks", p_value, P_VALUE, p_value <= P_VALUE)
        if n_values <= FEW_VALUES:
            score = _jensen_shannon(reference_counts, current_counts)
            return _result("jensenshannon", score, DISTANCE, score >= DISTANCE)
        score = _wasserstein(entry, reduced.sorted_numbers())
        return _result("wasserstein", score, DISTANCE, score >= DISTANCE)

    current_counts = reduced.counts
    reference_counts = entry.get("counts") or {}
    if not ref_n or not current_counts:
        side = "training data" if not ref_n else "batch"
        return _result(None, None, None, None, f"No values to compare in the {side}.")
    if small:
        n_values = len(set(reference_counts) | set(current_counts))
        if n_values > 2:
            return _checked("chisquare", _chi_square(reference_counts, current_counts))
        return _checked("z", _z_test(reference_counts, current_counts))
    score = _jensen_shannon(reference_counts, current_counts)
    return _result("jensenshannon", score, DISTANCE, score >= DISTANCE)


def _checked(method: str, p_value: float) -> dict[str, Any]:
    # chi-square and Z-test count drift strictly below the level, Kolmogorov-Smirnov at or below (as evidently).
    return _result(method, p_value, P_VALUE, p_value < P_VALUE)


# ── quality (pure) ──────────────────────────────────────────────────────────────────────────────────


def _missing_share(entry: Mapping[str, Any]) -> float | None:
    rows = int(entry.get("rows") or 0)
    return (rows - int(entry.get("n") or 0)) / rows if rows else None


def column_quality(entry: Mapping[str, Any], series: pd.Series) -> dict[str, Any]:
    """Missing share against the training data, categories never seen in training, numbers outside its range."""
    return _quality(entry, _reduce(series, entry["kind"]))


def _quality(entry: Mapping[str, Any], reduced: _Reduced) -> dict[str, Any]:
    rows, present = reduced.rows, reduced.present
    found: dict[str, Any] = {}
    if reduced.numbers is not None and present and entry.get("n"):
        values = reduced.numbers
        below, above = int(np.count_nonzero(values < entry["min"])), int(np.count_nonzero(values > entry["max"]))
        found = {"below_range": below, "above_range": above, "outside_share": (below + above) / present}
    elif reduced.counts is not None:
        known = entry.get("counts") or {}
        unseen = {key: count for key, count in reduced.counts.items() if key not in known}  # most frequent first
        total = sum(unseen.values())
        found = {"unseen": total, "unseen_share": total / present if present else 0.0,
                 "unseen_examples": list(unseen)[:EXAMPLES]}
    current_missing = (rows - present) / rows if rows else None
    reference_missing = _missing_share(entry)
    return jsonable({"missing_share": current_missing, "reference_missing_share": reference_missing,
                     "missing_change": (current_missing - reference_missing
                                        if current_missing is not None and reference_missing is not None else None),
                     **found})


def quality_findings(quality: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The quality changes worth a person's attention, as sentences."""
    found = []
    for name, entry in quality.items():
        change = entry.get("missing_change")
        if change is not None and change >= MISSING_JUMP:
            found.append(f"{name} is empty in {entry['missing_share']:.0%} of rows (training data: "
                         f"{entry['reference_missing_share']:.0%}).")
        if entry.get("unseen"):
            examples = ", ".join(repr(e) for e in entry.get("unseen_examples") or [])
            found.append(f"{name} has {entry['unseen']:,} value(s) in categories never seen in training "
                         f"({examples}).")
        if entry.get("outside_share") and entry["outside_share"] >= 0.01:
            found.append(f"{name} has {entry['below_range'] + entry['above_range']:,} value(s) outside the training "
                         "range.")
    return found


# ── a whole batch against the profile (pure) ────────────────────────────────────────────────────────


@dataclass
class DriftResult:
    """What :func:`compare` finds; the report row stores these fields."""

    judged: bool
    method: str
    rows: int
    drift_share: float | None
    drifted_columns: int | None
    columns: list[dict[str, Any]]
    prediction_drift: dict[str, Any]
    quality: dict[str, Any]
    seconds: float = 0.0


def _method_summary(columns: Sequence[Mapping[str, Any]], judged: bool, rows: int, min_rows: int,
                    reference_rows: int) -> str:
    used: dict[str, float | None] = {}
    for column in columns:
        if column.get("method"):
            used.setdefault(column["method"], column.get("threshold"))
    parts = []
    for method, threshold in used.items():
        if method in P_VALUE_METHODS:
            parts.append(f"{METHODS[method]} < {P_VALUE:g}")
        elif method.endswith("text_content_drift"):
            parts.append(METHODS[method])
        else:
            parts.append(f"{METHODS[method]} ≥ {threshold:g}")
    methods = "; ".join(parts) or "no comparable column"
    if not judged:
        return (f"Not judged: {rows:,} rows, fewer than {min_rows:,}. Scores for information only ({methods}).")[:200]
    return f"evidently defaults for a {reference_rows:,}-row reference: {methods}"[:200]


def compare(profile: Mapping[str, Any], frame: pd.DataFrame, *, min_rows: int, drift_share_threshold: float = 0.5,
            run: TrainingRunPublic | None = None, seed: int = 0) -> DriftResult:
    """A batch's drift, prediction drift and quality against a reference profile.

    ``frame`` holds the batch's input columns in canonical form and, for prediction drift, the stored prediction
    columns (``__predicted__``, ``__proba__<class>``, ``__coding__``). A batch of fewer than ``min_rows`` rows is
    not judged: its scores are kept, its verdicts are None.
    """
    started = time.perf_counter()
    rows = int(len(frame))
    judged = rows >= min_rows
    columns, quality = [], {}
    for name, entry in profile["columns"].items():
        if name not in frame.columns:
            continue
        reduced = _reduce(frame[name], entry["kind"])
        found = _drift(entry, reduced, judge_text=judged, seed=seed)
        verdict = VERDICT_WORDS[found["drifted"]] if judged and found["drifted"] is not None else (
            "not judged" if found["score"] is not None else "not compared")
        columns.append({"column": name, "type": entry.get("type", entry["kind"]), **found,
                        "drifted": found["drifted"] if judged else None, "verdict": verdict})
        quality[name] = _quality(entry, reduced)
    compared = [c for c in columns if c["drifted"] is not None]
    drifted = sum(c["drifted"] for c in compared)
    share = drifted / len(compared) if judged and compared else None

    prediction: dict[str, Any] = {"columns": [], "drifted": None}
    for stored, entry in (profile.get("predictions") or {}).items():
        if stored not in frame.columns:
            continue
        reduced = _reduce(frame[stored], entry["kind"])
        found = _drift(entry, reduced, judge_text=judged, seed=seed)
        verdict = VERDICT_WORDS[found["drifted"]] if judged and found["drifted"] is not None else (
            "not judged" if found["score"] is not None else "not compared")
        prediction["columns"].append({"column": entry.get("label", stored), "stored": stored, **found,
                                      "drifted": found["drifted"] if judged else None, "verdict": verdict})
        if entry["kind"] == "cat":
            current = reduced.counts or {}
            reference = entry.get("counts") or {}
            prediction["shares"] = {
                "reference": {k: v / max(sum(reference.values()), 1) for k, v in reference.items()},
                "current": {k: v / max(sum(current.values()), 1) for k, v in current.items()}}
    if judged and prediction["columns"]:
        prediction["drifted"] = any(bool(c["drifted"]) for c in prediction["columns"])
    if "__coding__" in frame.columns:
        prediction["automation_rate"] = float((frame["__coding__"].astype(str) == "automatic").mean()) if rows else None
        prediction["reference_automation_rate"] = profile.get("automation_rate")
        if run is not None:
            prediction["coding_threshold"] = run.coding_threshold

    quality_doc = {"columns": quality, "findings": quality_findings(quality),
                   "thresholds": {"min_rows": min_rows, "drift_share": drift_share_threshold}}
    return DriftResult(judged=judged, rows=rows, drift_share=share, drifted_columns=drifted if judged else None,
                       method=_method_summary(columns, judged, rows, min_rows, int(profile.get("rows") or 0)),
                       columns=jsonable(columns), prediction_drift=jsonable(prediction), quality=jsonable(quality_doc),
                       seconds=time.perf_counter() - started)


# ── evidently (imported only here: loading it takes seconds) ────────────────────────────────────────


def evidently_frame(frame: pd.DataFrame, feature_types: Mapping[str, str]) -> tuple[pd.DataFrame, dict[str, list]]:
    """The columns as evidently reads them (numbers as floats, categories as text) and their roles."""
    out, roles = {}, {"num": [], "cat": [], "text": []}
    for name, column_type in feature_types.items():
        kind = drift_kind(column_type)
        if kind is None or name not in frame.columns:
            continue
        series = frame[name]
        if kind == "num":
            if pd.api.types.is_datetime64_any_dtype(series):
                values = series.to_numpy(dtype="datetime64[ns]").astype("int64") / 86_400e9
                values = np.where(series.isna().to_numpy(), np.nan, values)
            else:
                values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            out[name] = values
        else:
            text = _categories(series) if kind == "cat" else _texts(series)
            out[name] = text.reindex(series.index).astype(object).where(text.reindex(series.index).notna(),
                                                                       np.nan).to_numpy()
        roles[kind].append(name)
    return pd.DataFrame(out, index=frame.index).reset_index(drop=True), roles


def run_evidently(reference: pd.DataFrame, current: pd.DataFrame, feature_types: Mapping[str, str]):
    """evidently's ``DataDriftPreset`` on the two frames (its own defaults); returns the snapshot."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        ref, roles = evidently_frame(reference, feature_types)
        cur, _ = evidently_frame(current, feature_types)
        definition = DataDefinition(numerical_columns=roles["num"], categorical_columns=roles["cat"],
                                    text_columns=roles["text"])
        return Report([DataDriftPreset()], include_tests=True).run(
            current_data=Dataset.from_pandas(cur, data_definition=definition),
            reference_data=Dataset.from_pandas(ref, data_definition=definition))


def evidently_columns(snapshot) -> dict[str, dict[str, Any]]:
    """Per column: evidently's method, threshold, score and verdict, from a snapshot of ``DataDriftPreset``."""
    found = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type") != "evidently:metric_v2:ValueDrift":
            continue
        score, threshold, method = float(metric["value"]), config["threshold"], config["method"]
        drifted = score < threshold if "p_value" in method else score >= threshold
        if "text content" in method.lower():
            drifted = score > threshold
        found[config["column"]] = {"method": method, "threshold": threshold, "score": score, "drifted": drifted}
    return found


def render_html(reference: pd.DataFrame, current: pd.DataFrame, feature_types: Mapping[str, str], *,
                max_rows: int, seed: int = 0) -> tuple[str, dict[str, int]]:
    """evidently's full HTML drift report, on seeded samples of at most ``max_rows`` rows of each side."""
    def sample(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.sample(n=max_rows, random_state=seed) if len(frame) > max_rows else frame

    ref, cur = sample(reference), sample(current)
    snapshot = run_evidently(ref, cur, feature_types)
    return snapshot.get_html_str(as_iframe=False), {"reference_rows": int(len(ref)), "current_rows": int(len(cur))}


# ── reading the store ───────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ReportView:
    """A batch and its monitoring report (``status`` "missing" when the batch has none yet)."""

    id: int | None
    batch_id: int
    version_id: int
    model_id: int
    model_name: str
    version_number: int
    project_id: int
    status: str
    job_id: int | None
    judged: bool
    method: str
    rows: int
    drift_share: float | None
    drifted_columns: int | None
    columns: list[dict[str, Any]]
    prediction_drift: dict[str, Any]
    quality: dict[str, Any]
    performance: dict[str, Any] | None
    html_sha256: str | None
    error: str | None
    finished_at: datetime | None
    batch_created_at: datetime
    channel: str
    source: str
    labels_sha256: str | None
    task: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    @property
    def drift_share_threshold(self) -> float:
        return float(((self.quality or {}).get("thresholds") or {}).get("drift_share", 0.5))

    @property
    def dataset_drift(self) -> bool | None:
        """evidently's dataset verdict: drifted when the share of drifted columns reaches the threshold."""
        if not self.finished or not self.judged or self.drift_share is None:
            return None
        return self.drift_share >= self.drift_share_threshold

    @property
    def label(self) -> str:
        return f"Batch {self.batch_id} ({self.rows or 0:,} rows, {self.batch_created_at:%Y-%m-%d %H:%M})"

    def primary_performance(self) -> dict[str, Any] | None:
        """The primary metric on the labelled rows: {"metric", "value", "low", "high"}, or None."""
        if not self.performance:
            return None
        metric = self.performance.get("primary_metric")
        found = (self.performance.get("metrics") or {}).get(metric) or {}
        return {"metric": metric, **found} if found.get("value") is not None else None


def _version_row(session: Session, version_id: int) -> tuple[ModelVersion, RegisteredModel]:
    version = session.get(ModelVersion, version_id)
    return version, session.get(RegisteredModel, version.model_id)


def _view(session: Session, batch: PredictionBatch, report: MonitoringReport | None) -> ReportView:
    version, model = _version_row(session, batch.version_id)
    common = {"batch_id": batch.id, "version_id": batch.version_id, "model_id": model.id, "model_name": model.name,
              "version_number": version.number, "project_id": batch.project_id, "batch_created_at": batch.created_at,
              "channel": batch.channel, "source": batch.source, "labels_sha256": batch.labels_sha256,
              "task": str((batch.summary or {}).get("task") or "")}
    if report is None:
        return ReportView(id=None, status="missing", job_id=None, judged=False, method="", rows=batch.rows,
                          drift_share=None, drifted_columns=None, columns=[], prediction_drift={}, quality={},
                          performance=None, html_sha256=None, error=None, finished_at=None, **common)
    quality = report.quality or {}
    return ReportView(id=report.id, status=report.status, job_id=report.job_id, judged=report.judged,
                      method=report.method, rows=report.rows or batch.rows, drift_share=report.drift_share,
                      drifted_columns=report.drifted_columns, columns=list(report.columns or []),
                      prediction_drift=dict(report.prediction_drift or {}), quality=dict(quality),
                      performance=report.performance, html_sha256=report.html_sha256, error=report.error,
                      finished_at=report.finished_at, notes=list(quality.get("notes") or []), **common)


def _batch(session: Session, batch_id: int) -> PredictionBatch:
    batch = session.get(PredictionBatch, batch_id)
    if batch is None:
        raise NotFound(f"There is no prediction batch {batch_id}.")
    return batch


def _report_of(session: Session, batch_id: int) -> MonitoringReport | None:
    return session.exec(select(MonitoringReport).where(MonitoringReport.batch_id == batch_id)).first()


def get_report(*, session: Session, batch_id: int) -> ReportView:
    """A batch's monitoring report (status "missing" when it has none yet)."""
    batch = _batch(session, batch_id)
    return _view(session, batch, _report_of(session, batch_id))


def get_report_by_id(*, session: Session, report_id: int) -> ReportView:
    report = session.get(MonitoringReport, report_id)
    if report is None:
        raise NotFound(f"There is no monitoring report {report_id}.")
    return _view(session, _batch(session, report.batch_id), report)


def latest_report(*, session: Session, version_id: int) -> ReportView | None:
    """The newest finished report of a model version (None before its first)."""
    report = session.exec(select(MonitoringReport).where(MonitoringReport.version_id == version_id,
                                                         MonitoringReport.status == "finished")
                          .order_by(col(MonitoringReport.batch_id).desc())).first()
    return _view(session, _batch(session, report.batch_id), report) if report else None


def list_reports(*, session: Session, model_id: int, limit: int = 500) -> list[ReportView]:
    """Every batch scored by any version of a model, newest first, with its report."""
    rows = session.exec(
        select(PredictionBatch, MonitoringReport)
        .join(ModelVersion, col(ModelVersion.id) == col(PredictionBatch.version_id))
        .join(MonitoringReport, col(MonitoringReport.batch_id) == col(PredictionBatch.id), isouter=True)
        .where(ModelVersion.model_id == model_id)
        .order_by(col(PredictionBatch.id).desc()).limit(limit)).all()
    return [_view(session, batch, report) for batch, report in rows]


def find_model(*, session: Session, project_id: int, model_name: str) -> RegisteredModel:
    from core import registry

    return registry.find_model(session=session, name=model_name, project_id=project_id)


def model_names(*, session: Session, project_id: int) -> list[str]:
    return list(session.exec(select(RegisteredModel.name).where(RegisteredModel.project_id == project_id)
                             .order_by(RegisteredModel.name)))


# ── computing reports ───────────────────────────────────────────────────────────────────────────────


def _run_of(session: Session, version_id: int) -> TrainingRunPublic:
    from core.training import runs

    return runs.get_run(session=session, run_id=session.get(ModelVersion, version_id).run_id)


def _known_profile(session: Session, version_id: int) -> str | None:
    """The reference profile an earlier report of this version stored (profiles are made once per version)."""
    reports = session.exec(select(MonitoringReport).where(MonitoringReport.version_id == version_id,
                                                          MonitoringReport.status == "finished")
                           .order_by(col(MonitoringReport.id).desc()).limit(20)).all()
    for report in reports:
        sha256 = ((report.quality or {}).get("reference") or {}).get("profile_sha256")
        if sha256:
            return sha256
    return None


def reference_profile(*, session: Session, settings: Settings, version_id: int,
                      progress: Callable[[float, str], None] | None = None) -> tuple[dict[str, Any], str]:
    """The version's reference profile and its artifact hash: read back when an earlier report made it, else built
    from the run's dataset version (its feature columns) and held-out predictions, and stored."""
    from core import datasets
    from core.training import runs

    store = ArtifactStore(settings.artifacts_path)
    known = _known_profile(session, version_id)
    if known and store.exists(known):
        stored = json.loads(store.read_bytes(known))
        if stored.get("format") == PROFILE_FORMAT:  # a profile of an older format is made again
            return stored, known
    run = _run_of(session, version_id)
    dataset_version = datasets.get_version(session=session, version_id=run.dataset_version_id)
    if progress:
        progress(0.1, f"Profiling the training data ({dataset_version.dataset_name} v{dataset_version.number}, "
                      f"{dataset_version.rows:,} rows), once for this model version")
    wanted = [name for name in run.feature_types if drift_kind(run.feature_types[name])]
    frame = datasets.load_frame(settings=settings, version=dataset_version)[wanted]
    try:
        predictions = runs.load_test_set(settings=settings, run=run) if run.test_set_sha256 else None
    except DomainError:
        predictions = None  # the test set is gone: prediction drift is left out, input drift still works
    profile = build_reference_profile(frame, run.feature_types, predictions=predictions, run=run, seed=run.seed)
    profile["dataset"] = {"version_id": dataset_version.id, "name": dataset_version.dataset_name,
                          "number": dataset_version.number, "sha256": dataset_version.sha256}
    profile["run_id"] = run.id
    data = json.dumps(profile, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()
    return profile, store.put_bytes(data).sha256


def _volume(session: Session, batch: PredictionBatch, model_id: int) -> dict[str, Any]:
    earlier = session.exec(select(PredictionBatch.rows)
                           .join(ModelVersion, col(ModelVersion.id) == col(PredictionBatch.version_id))
                           .where(ModelVersion.model_id == model_id, col(PredictionBatch.id) < batch.id)
                           .order_by(col(PredictionBatch.id).desc()).limit(20)).all()
    median = float(np.median(earlier)) if earlier else None
    return {"rows": batch.rows, "previous_batches": len(earlier), "previous_median": median,
            "ratio": batch.rows / median if median else None}


def _set_status(session: Session, report: MonitoringReport, status: str, error: str | None = None) -> None:
    report.status, report.error = status, error
    if status in ("finished", "failed"):
        report.finished_at = utcnow()
    session.add(report)
    session.commit()


def compute_report(*, session: Session, settings: Settings, report_id: int, actor: UserPublic | None = None,
                   html: bool = False, progress: Callable[[float, str], None] | None = None) -> ReportView:
    """Compute and store a report (the ``monitoring.report`` job runs this); a failure is recorded on the report."""
    from core.jobs import JobCancelled

    report_progress = progress or (lambda _fraction, _message: None)
    report = session.get(MonitoringReport, report_id)
    if report is None:
        raise NotFound(f"There is no monitoring report {report_id}.")
    _set_status(session, report, "running")
    try:
        batch = _batch(session, report.batch_id)
        version, model = _version_row(session, batch.version_id)
        run = _run_of(session, batch.version_id)
        report_progress(0.05, "Reading the training data profile")
        profile, profile_sha256 = reference_profile(session=session, settings=settings, version_id=version.id,
                                                    progress=report_progress)
        report_progress(0.4, f"Reading the {batch.rows:,} rows of batch {batch.id}")
        if not batch.output_sha256:
            raise NotFound(f"Batch {batch.id} kept no copy of its rows, so it cannot be compared.")
        rows = read_rows(ArtifactStore(settings.artifacts_path).verified_path(batch.output_sha256), run.feature_types)
        report_progress(0.55, "Comparing each column with the training data")
        result = compare(profile, rows, min_rows=settings.monitor_min_rows,
                         drift_share_threshold=settings.monitor_drift_share, run=run, seed=run.seed)
        del rows
        quality = dict(result.quality)
        quality["volume"] = _volume(session, batch, model.id)
        quality["reference"] = {"profile_sha256": profile_sha256, "rows": profile.get("rows"),
                                "dataset": profile.get("dataset"), "prediction_rows": profile.get("prediction_rows")}
        quality["seconds"] = round(result.seconds, 3)
        report = session.get(MonitoringReport, report_id)
        report.judged, report.method, report.rows = result.judged, result.method, result.rows
        report.drift_share, report.drifted_columns = result.drift_share, result.drifted_columns
        report.columns, report.prediction_drift, report.quality = result.columns, result.prediction_drift, quality
        audit.record_event(session, actor=actor, action="monitoring.report", entity_type="prediction_batch",
                           entity_id=batch.id, details={"report": report.id, "judged": result.judged,
                                                        "drift_share": result.drift_share,
                                                        "drifted_columns": result.drifted_columns})
        _set_status(session, report, "finished")
    except BaseException as error:
        session.rollback()
        report = session.get(MonitoringReport, report_id)
        message = (str(error) if isinstance(error, DomainError) else "The report was cancelled."
                   if isinstance(error, JobCancelled) else
                   f"The report could not be computed ({type(error).__name__}: {error}).")
        _set_status(session, report, "failed", message[:2000])
        raise
    if html:
        report_progress(0.75, "Making the full evidently report")
        try:
            make_html(session=session, settings=settings, report_id=report_id)
        except Exception as error:  # noqa: BLE001 - the compact report stands without the HTML
            log.warning("evidently report for monitoring report %s failed", report_id, exc_info=True)
            _add_note(session, report_id, f"The full evidently report could not be made ({type(error).__name__}: "
                                          f"{error}).")
    report_progress(0.95, "Checking the alert rules")
    evaluate_alerts(session=session, settings=settings, report_id=report_id)
    return get_report_by_id(session=session, report_id=report_id)


def _add_note(session: Session, report_id: int, note: str) -> None:
    session.rollback()
    report = session.get(MonitoringReport, report_id)
    quality = dict(report.quality or {})
    quality["notes"] = [*(quality.get("notes") or []), note]
    report.quality = quality
    session.add(report)
    session.commit()


def evaluate_alerts(*, session: Session, settings: Settings, report_id: int) -> bool:
    """Let ``core.alerts.evaluate_report`` turn the model's rules into alerts; False when it is not there (yet).

    Monitoring works without the alerts module; a failing rule check is logged and noted on the report, and never
    undoes the report.
    """
    try:
        alerts = importlib.import_module("core.alerts")
    except ImportError:
        return False
    evaluate = getattr(alerts, "evaluate_report", None)
    if evaluate is None:
        return False
    try:
        evaluate(session=session, settings=settings, report_id=report_id)
    except Exception as error:  # noqa: BLE001 - see the docstring
        log.warning("Alert rules for monitoring report %s failed", report_id, exc_info=True)
        _add_note(session, report_id, f"The alert rules could not be checked ({type(error).__name__}: {error}).")
        return False
    return True


def make_html(*, session: Session, settings: Settings, report_id: int) -> str:
    """Make and store evidently's HTML report for a report's batch (seeded samples when big); returns its hash."""
    from core import datasets, serving

    report = session.get(MonitoringReport, report_id)
    if report is None:
        raise NotFound(f"There is no monitoring report {report_id}.")
    run = _run_of(session, report.version_id)
    dataset_version = datasets.get_version(session=session, version_id=run.dataset_version_id)
    wanted = [name for name in run.feature_types if drift_kind(run.feature_types[name])]
    reference = datasets.load_frame(settings=settings, version=dataset_version)[wanted]
    current = serving.load_rows(settings=settings, batch=serving.get_batch(session=session, batch_id=report.batch_id))
    html, sizes = render_html(reference, current[[c for c in wanted if c in current.columns]], run.feature_types,
                              max_rows=settings.monitor_html_rows, seed=run.seed)
    sha256 = ArtifactStore(settings.artifacts_path).put_bytes(html.encode("utf-8")).sha256
    report = session.get(MonitoringReport, report_id)
    report.html_sha256 = sha256
    quality = dict(report.quality or {})
    quality["html"] = {**sizes, "sampled": sizes["reference_rows"] < len(reference) or
                       sizes["current_rows"] < len(current)}
    report.quality = quality
    session.add(report)
    session.commit()
    return sha256


def load_html(*, settings: Settings, report: ReportView) -> bytes:
    """The stored evidently HTML of a report, after its hash is checked."""
    if not report.html_sha256:
        raise NotFound(f"Batch {report.batch_id} has no full evidently report yet. Make it first.")
    return ArtifactStore(settings.artifacts_path).read_bytes(report.html_sha256)


# ── jobs ────────────────────────────────────────────────────────────────────────────────────────────


def _ensure_report(session: Session, batch: PredictionBatch) -> MonitoringReport:
    report = _report_of(session, batch.id)
    if report is None:
        report = MonitoringReport(batch_id=batch.id, version_id=batch.version_id, rows=batch.rows, status="queued")
        session.add(report)
        session.flush()
    return report


def _queue(session: Session, actor: UserPublic | None, report: MonitoringReport, *, kind: str, html: bool,
           title: str) -> int:
    from core import jobs
    from core.auth import OPERATOR

    job = jobs.create_job(session=session, actor=actor or OPERATOR, kind=kind, title=title,
                          params={"report_id": report.id, "html": html}, project_id=session.get(
                              PredictionBatch, report.batch_id).project_id)
    report = session.get(MonitoringReport, report.id)
    if kind == JOB_REPORT:
        report.status = "queued"
    report.job_id = job.id
    session.add(report)
    session.commit()
    return job.id


def _start(settings: Settings, runner, job_id: int, kind: str) -> None:
    """On the runner's workers when there is one; otherwise here and now (a worker or the command line)."""
    from core import jobs

    if runner is not None:
        runner.start(job_id)
    else:
        jobs.run_job(job_id, jobs.JOB_KINDS[kind], settings.resolved_database_url)


def batch_stored(*, session: Session, settings: Settings, actor: UserPublic | None, batch_id: int,
                 runner=None) -> int | None:
    """Hook for :mod:`core.serving`: a batch was recorded, so its monitoring report is computed (as a job).

    With a job runner the job runs on its workers; without one (a scoring job's worker, the command line, the REST
    endpoint) it runs here, which is quick: the full evidently HTML is left for when someone asks for it. Never
    raises: a batch stays recorded even when its report cannot be made (the report then says why).
    Returns the job id, or None when not even the job could be recorded.
    """
    try:
        batch = _batch(session, batch_id)
        report = _ensure_report(session, batch)
        job_id = _queue(session, actor, report, kind=JOB_REPORT, html=False,
                        title=f"Monitoring report for batch {batch_id}")
    except Exception:  # noqa: BLE001 - scoring must not fail because monitoring did
        log.warning("Could not queue the monitoring report of batch %s", batch_id, exc_info=True)
        session.rollback()
        return None
    try:
        _start(settings, runner, job_id, JOB_REPORT)
    except Exception:  # noqa: BLE001 - the job row records what went wrong where it can
        log.warning("Could not run the monitoring report of batch %s", batch_id, exc_info=True)
    return job_id


def _busy(session: Session, settings: Settings, report: MonitoringReport | None) -> bool:
    from datetime import timedelta

    from core import jobs

    if report is None or report.job_id is None or report.status not in ("queued", "running"):
        return False
    job = jobs.get_job(session=session, job_id=report.job_id,
                       stale_after=timedelta(seconds=settings.job_stale_seconds))
    return not job.finished


def recompute(*, session: Session, settings: Settings, runner, actor: UserPublic, batch_id: int,
              html: bool = True) -> int:
    """Compute a batch's report again (and its full evidently report); returns the job id."""
    require_role(actor, *WRITERS)
    batch = _batch(session, batch_id)
    report = _report_of(session, batch_id)
    if _busy(session, settings, report):
        raise InvalidInput(f"The report of batch {batch_id} is being computed right now. Wait for it to finish.")
    report = _ensure_report(session, batch)
    job_id = _queue(session, actor, report, kind=JOB_REPORT, html=html,
                    title=f"Monitoring report for batch {batch_id} (recomputed)")
    _start(settings, runner, job_id, JOB_REPORT)
    return job_id


def request_html(*, session: Session, settings: Settings, runner, actor: UserPublic, batch_id: int) -> int:
    """Make the full evidently report of a batch whose compact report is finished; returns the job id."""
    require_role(actor, *WRITERS, Role.reviewer, Role.manager)
    report = _report_of(session, batch_id)
    if report is None or report.status != "finished":
        raise InvalidInput(f"Batch {batch_id} has no finished report yet; compute it first.")
    job_id = _queue(session, actor, report, kind=JOB_HTML, html=True,
                    title=f"Full evidently report for batch {batch_id}")
    _start(settings, runner, job_id, JOB_HTML)
    return job_id


def report_job(ctx) -> dict[str, Any]:
    """Job ``monitoring.report``: compute a report (and, when asked, its full evidently HTML)."""
    from core.config import get_settings

    with ctx.session() as session:
        view = compute_report(session=session, settings=get_settings(), report_id=ctx.params["report_id"],
                              actor=ctx.actor, html=bool(ctx.params.get("html")), progress=ctx.progress)
    return {"report_id": view.id, "batch_id": view.batch_id, "judged": view.judged, "drift_share": view.drift_share}


def html_job(ctx) -> dict[str, Any]:
    """Job ``monitoring.html``: make and store evidently's full HTML report of a finished report."""
    from core.config import get_settings

    ctx.progress(0.1, "Loading evidently and both samples")
    with ctx.session() as session:
        sha256 = make_html(session=session, settings=get_settings(), report_id=ctx.params["report_id"])
    return {"report_id": ctx.params["report_id"], "html_sha256": sha256}


# ── labels arriving later ───────────────────────────────────────────────────────────────────────────


def _text_keys(series: pd.Series) -> pd.Series:
    text = series.astype("string").str.strip()
    as_number = pd.to_numeric(text, errors="coerce")
    # 17 and 17.0 are the same key whether a file stored it as a number or as text.
    whole = as_number.notna() & (as_number % 1 == 0)
    text = text.mask(whole, as_number[whole].astype("Int64").astype("string"))
    return text.mask(text == "")


def _label_values(raw: pd.Series, run: TrainingRunPublic, target_type: str) -> pd.Series:
    """The true values as the model's classes (text) or numbers; blank cells are NA.

    Refuses values that are not numbers (regression) or not one of the model's classes, naming examples.
    """
    from core.data import schema
    from core.training import runs

    present = (raw.notna() & (raw.astype("string").str.strip() != "")).fillna(False).astype(bool)
    if run.task == "regression":
        numbers = schema.to_number(raw.astype("string"), ".")
        wrong = present & numbers.isna()
        if wrong.any():
            examples = ", ".join(repr(str(v)) for v in raw[wrong].unique()[:EXAMPLES])
            raise InvalidInput(f"{int(wrong.sum()):,} true value(s) are not numbers (e.g. {examples}). The model "
                               f"predicts numbers for {run.target!r}; give a number or leave the cell empty.")
        return numbers.astype("float64").where(present)
    given = pd.DataFrame({run.target: raw.where(present)})
    try:
        typed = schema.apply_types(given, {run.target: target_type if target_type in ("boolean", "numeric")
                                           else "categorical"})
    except InvalidInput:  # words in a column of number codes: they are unknown classes, reported below
        typed = schema.apply_types(given, {run.target: "categorical"})
    labels = runs._labels(typed[run.target], run.task)
    labels = pd.Series(labels, index=raw.index, dtype=object).where(present)
    classes = [str(c) for c in run.classes or []]
    unknown = present & (labels.isna() | ~labels.astype(str).isin(classes))
    if unknown.any():
        examples = ", ".join(repr(str(v)) for v in raw[unknown].astype(str).unique()[:EXAMPLES])
        raise InvalidInput(f"{int(unknown.sum()):,} true value(s) are not classes the model knows (e.g. {examples}). "
                           f"The model's classes are: {', '.join(classes)}. Correct them or leave the cells empty.")
    return labels.astype(object)


def _batch_keys(settings: Settings, batch, key: str) -> pd.Series | None:
    """The batch's values of column ``key``, in row order: from its stored export, else from its model inputs."""
    from core import serving

    if batch.summary.get("export_sha256"):
        export = serving.load_export(settings=settings, batch=batch)
        if key in export.columns:
            return export[key]
    rows = serving.load_rows(settings=settings, batch=batch)
    return rows[key] if key in rows.columns and not key.startswith("__") else None


def match_labels(file_frame: pd.DataFrame, *, batch_rows: int, label_column: str, key: str | None = None,
                 batch_keys: pd.Series | None = None) -> tuple[pd.Series, dict[str, Any]]:
    """The file's labels in the batch's row order (NA where a row got none) and how they were matched.

    By ``key``: each batch row gets the label of the file row with the same key (the file may hold a subset, and
    keys the batch does not have are counted, not used). By row order: the file must have one row per batch row.
    """
    if label_column not in file_frame.columns:
        raise InvalidInput(f"The file has no column {label_column!r} with the true values.")
    if key is None:
        if len(file_frame) != batch_rows:
            raise InvalidInput(f"The file has {len(file_frame):,} rows but the batch has {batch_rows:,}. Matching by "
                               "row order needs exactly one true value per scored row, in the same order; or match "
                               "by a key column that both have.")
        return file_frame[label_column].reset_index(drop=True), {"matched_by": "row order", "unmatched_keys": 0,
                                                                 "matched_rows": batch_rows}
    if key not in file_frame.columns:
        raise InvalidInput(f"The file has no column {key!r} to match on. Its columns: "
                           f"{', '.join(map(str, file_frame.columns))}.")
    if batch_keys is None:
        raise InvalidInput(f"The batch has no column {key!r} to match on (only the model's input columns and, for "
                           "files scored on the Predict page, the file's own columns are kept). Match by row order.")
    file_keys = _text_keys(file_frame[key])
    if file_keys.isna().any():
        raise InvalidInput(f"{int(file_keys.isna().sum()):,} row(s) of the file have no {key!r}; every row needs one "
                           "to be matched.")
    repeated = file_keys[file_keys.duplicated()].unique()
    if len(repeated):
        raise InvalidInput(f"The file has {len(repeated):,} {key!r} value(s) more than once (e.g. "
                           f"{', '.join(map(repr, repeated[:EXAMPLES]))}), so a row's true value is ambiguous.")
    ours = _text_keys(batch_keys).reset_index(drop=True)
    twice = ours[ours.duplicated() & ours.notna()].unique()
    if len(twice):
        raise InvalidInput(f"The batch has {len(twice):,} {key!r} value(s) on more than one row (e.g. "
                           f"{', '.join(map(repr, twice[:EXAMPLES]))}), so they cannot be matched by it. "
                           "Match by row order, or use a key that is unique.")
    lookup = pd.Series(file_frame[label_column].to_numpy(), index=file_keys.to_numpy())
    found = ours.map(lookup)
    matched = ours.isin(file_keys)
    if not matched.any():
        raise InvalidInput(f"None of the file's {len(file_keys):,} {key!r} values is in the batch (the file has e.g. "
                           f"{', '.join(map(repr, file_keys.iloc[:3]))}; the batch has e.g. "
                           f"{', '.join(map(repr, ours.dropna().iloc[:3]))}).")
    return found.where(matched), {"matched_by": f"key {key}", "unmatched_keys": int((~file_keys.isin(ours)).sum()),
                                  "matched_rows": int(matched.sum())}


def coding_figures(labels: pd.Series, predicted: pd.Series, coding: pd.Series, *, seed: int = 0) -> dict[str, Any]:
    """Automation rate of a coding model's batch and the accuracy of the records it coded automatically.

    ``labels`` are the true codes (NA where unknown), ``predicted`` the model's codes and ``coding`` "automatic" or
    "manual", all in the batch's row order.
    """
    from core.training import evaluation

    automatic = coding.astype(str).to_numpy() == "automatic"
    known = labels.notna().to_numpy()
    figures: dict[str, Any] = {"rows": int(len(coding)), "automatic_rows": int(automatic.sum()),
                               "automation_rate": float(automatic.mean()) if len(coding) else None}
    for name, chosen in (("automatic", automatic & known), ("manual", ~automatic & known)):
        truth, guess = labels.to_numpy()[chosen], predicted.to_numpy()[chosen]
        entry: dict[str, Any] = {"labelled": int(chosen.sum())}
        if chosen.any():
            accuracy = evaluation.bootstrap_intervals("text", truth.astype(str), guess.astype(str),
                                                      seed=seed)["accuracy"]
            entry.update(accuracy=accuracy["value"], low=accuracy["low"], high=accuracy["high"])
        figures[name] = entry
    return jsonable(figures)


def _performance(rows: pd.DataFrame, labels: pd.Series, run: TrainingRunPublic) -> dict[str, Any]:
    from core.training import evaluation

    known = labels.notna().to_numpy()
    y_true = labels[known].to_numpy()
    y_pred = rows["__predicted__"].to_numpy()[known]
    proba = None
    if run.task != "regression":
        names = [f"__proba__{c}" for c in run.classes or []]
        if names and all(n in rows.columns for n in names):
            proba = rows.loc[known, names].to_numpy(dtype="float64")
        y_true, y_pred = y_true.astype(str), y_pred.astype(str)
    else:
        y_true, y_pred = y_true.astype("float64"), y_pred.astype("float64")
    metrics = evaluation.bootstrap_intervals(run.task, y_true, y_pred, proba,
                                             [str(c) for c in run.classes] if run.classes else None, seed=run.seed)
    training = {name: (run.evaluation or {}).get("metrics", {}).get(name) for name in metrics}
    found: dict[str, Any] = {"task": run.task, "primary_metric": run.primary_metric, "metrics": metrics,
                             "training": training}
    if run.task == "text" and "__coding__" in rows.columns:
        found["coding"] = {**coding_figures(labels, rows["__predicted__"], rows["__coding__"], seed=run.seed),
                           "coding_threshold": run.coding_threshold}
    return jsonable(found)


def attach_labels(*, session: Session, settings: Settings, actor: UserPublic, batch_id: int, filename: str,
                  data: bytes, key: str | None = None) -> ReportView:
    """Record the true values of a batch's rows (a CSV, Excel or Parquet file) and score the batch with them.

    The file has a column named like the model's target (or exactly one column besides ``key``). Rows are matched
    by ``key`` (a column of the file and of the batch) or, without a key, by row order. The metrics of the run, with
    bootstrap intervals, go into the batch's report; for coding models also the automation figures.
    """
    from core import datasets, serving
    from core.data.reading import ReadOptions, read_table

    require_role(actor, *WRITERS)
    batch_row = _batch(session, batch_id)
    batch = serving.get_batch(session=session, batch_id=batch_id)
    run = _run_of(session, batch_row.version_id)
    raw = read_table(data, filename, limits=datasets.limits(settings), options=ReadOptions()).frame
    raw.columns = [str(c).strip() for c in raw.columns]
    key = key.strip() if key and key.strip() else None
    label_column = run.target
    if label_column not in raw.columns:
        others = [c for c in raw.columns if c != key]
        if len(others) != 1:
            raise InvalidInput(f"The file has no column {run.target!r} with the true values. Name that column "
                               f"{run.target!r} (the file has: {', '.join(raw.columns)}).")
        label_column = others[0]
    batch_keys = _batch_keys(settings, batch, key) if key else None
    matched, how = match_labels(raw, batch_rows=batch_row.rows, label_column=label_column, key=key,
                                batch_keys=batch_keys)
    version = datasets.get_version(session=session, version_id=run.dataset_version_id)
    labels = _label_values(matched, run, version.types.get(run.target, "categorical"))
    labelled = int(labels.notna().sum())
    if not labelled:
        raise InvalidInput("No row of the batch got a true value (every matched cell is empty).")
    rows = serving.load_rows(settings=settings, batch=batch)
    performance = _performance(rows, labels, run)
    stored = pd.DataFrame({"row": np.arange(len(labels)),
                           "label": labels.astype("float64") if run.task == "regression" else labels.astype("string")})
    buffer = io.BytesIO()
    stored.to_parquet(buffer, index=False)
    labels_sha256 = ArtifactStore(settings.artifacts_path).put_bytes(buffer.getvalue()).sha256
    performance.update({"labelled_rows": labelled, "rows": batch_row.rows, "coverage": labelled / batch_row.rows,
                        "blank_labels": how["matched_rows"] - labelled,
                        "unlabelled_rows": batch_row.rows - labelled, "source": filename[:255],
                        "labels_sha256": labels_sha256, "uploaded_by": actor.display_name or actor.username,
                        "uploaded_at": utcnow().isoformat(), **how})
    report = _ensure_report(session, batch_row)
    report.performance = jsonable(performance)
    batch_row.labels_sha256 = labels_sha256
    session.add(report)
    session.add(batch_row)
    audit.record_event(session, actor=actor, action="monitoring.labels", entity_type="prediction_batch",
                       entity_id=batch_id, details={"source": filename[:255], "labels_sha256": labels_sha256,
                                                    "labelled_rows": labelled, "matched_by": how["matched_by"]})
    session.commit()
    if report.status == "finished":
        evaluate_alerts(session=session, settings=settings, report_id=report.id)
    return get_report(session=session, batch_id=batch_id)


# ── dashboards ──────────────────────────────────────────────────────────────────────────────────────


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def model_events(*, session: Session, model_id: int) -> list[dict[str, Any]]:
    """What happened to a model that the timeline marks: alerts, promotions to production, retraining runs."""
    events: list[dict[str, Any]] = []
    for alert in session.exec(select(Alert).where(Alert.model_id == model_id).order_by(col(Alert.id))):
        events.append({"at": _iso(alert.created_at), "kind": "alert",
                       "label": f"alert: {alert.metric} ({alert.severity})", "detail": alert.message,
                       "status": alert.status})
    promotions = session.exec(select(StageTransition, ModelVersion)
                              .join(ModelVersion, col(ModelVersion.id) == col(StageTransition.version_id))
                              .where(ModelVersion.model_id == model_id,
                                     StageTransition.to_status == VersionStatus.production)
                              .order_by(col(StageTransition.id)))
    for transition, version in promotions:
        events.append({"at": _iso(transition.created_at), "kind": "promotion", "label": f"v{version.number} live",
                       "detail": transition.reason or f"Version {version.number} went into production.",
                       "status": "done"})
    for run in session.exec(select(PipelineRun).where(PipelineRun.model_id == model_id).order_by(col(PipelineRun.id))):
        events.append({"at": _iso(run.created_at), "kind": "retraining", "label": f"retraining ({run.trigger})",
                       "detail": run.outcome or run.status, "status": run.status})
    return sorted(events, key=lambda event: event["at"] or "")


def timeline(*, session: Session, model_id: int) -> dict[str, Any]:
    """Everything the dashboards of one model draw, oldest batch first, as plain JSON-ready data."""
    reports = list(reversed(list_reports(session=session, model_id=model_id)))
    points, cells = [], []
    for report in reports:
        performance = report.primary_performance()
        coding = (report.performance or {}).get("coding") or {}
        automatic = coding.get("automatic") or {}
        points.append({
            "batch_id": report.batch_id, "at": _iso(report.batch_created_at), "version": report.version_number,
            "rows": report.rows, "status": report.status, "judged": report.judged and report.finished,
            "drift_share": report.drift_share, "drifted_columns": report.drifted_columns,
            "dataset_drift": report.dataset_drift, "threshold": report.drift_share_threshold,
            "prediction_drift": report.prediction_drift.get("drifted"),
            "metric": performance["metric"] if performance else None,
            "value": performance.get("value") if performance else None,
            "low": performance.get("low") if performance else None,
            "high": performance.get("high") if performance else None,
            "automation_rate": coding.get("automation_rate", report.prediction_drift.get("automation_rate")),
            "auto_accuracy": automatic.get("accuracy"), "auto_low": automatic.get("low"),
            "auto_high": automatic.get("high"),
        })
        if report.finished:
            for column in report.columns:
                if column.get("score") is None:
                    continue
                cells.append({"batch_id": report.batch_id, "at": _iso(report.batch_created_at),
                              "column": column["column"], "score": column["score"],
                              "threshold": column.get("threshold"), "method": column.get("method_name"),
                              "lower_is_drift": column.get("lower_is_drift"), "verdict": column["verdict"]})
    model = session.get(RegisteredModel, model_id)
    task = next((r.task for r in reports if r.task), "")
    training = _training_reference(session, model_id)
    return {"model": model.name if model else "", "task": task, "points": points, "cells": cells,
            "events": model_events(session=session, model_id=model_id), "training": training}


def _training_reference(session: Session, model_id: int) -> dict[str, Any] | None:
    """The production version's primary metric on its test rows, for the performance chart's reference line."""
    version = session.exec(select(ModelVersion).where(ModelVersion.model_id == model_id,
                                                      ModelVersion.status == VersionStatus.production)).first()
    if version is None:
        return None
    run = _run_of(session, version.id)
    found = ((run.evaluation or {}).get("metrics") or {}).get(run.primary_metric) or {}
    if found.get("value") is None:
        return None
    return {"metric": run.primary_metric, "value": found["value"], "low": found.get("low"),
            "high": found.get("high"), "version": version.number}


@dataclass(frozen=True)
class ModelHealth:
    """One line of the project overview."""

    model_id: int
    name: str
    health: str  # "alert", "warning", "ok" or "no data"
    reasons: list[str]
    production: int | None
    batches: int
    last_batch_at: datetime | None
    open_alerts: int
    drift_share: float | None
    judged: bool | None


def _performance_worse(report: ReportView) -> str | None:
    from core.training import evaluation

    performance = report.primary_performance()
    if not performance:
        return None
    metric = performance["metric"]
    training = ((report.performance or {}).get("training") or {}).get(metric) or {}
    bound = training.get("low") if evaluation.GREATER_IS_BETTER.get(metric, True) else training.get("high")
    value = performance.get("value")
    if bound is None or value is None:
        return None
    worse = value < bound if evaluation.GREATER_IS_BETTER.get(metric, True) else value > bound
    if worse:
        return (f"{evaluation.metric_label(metric).split(' (')[0]} on batch {report.batch_id} is {value:.3f}, outside "
                f"the training interval ({training.get('low'):.3f}–{training.get('high'):.3f}).")
    return None


def model_health(*, session: Session, model_id: int) -> ModelHealth:
    """ok / warning / alert for a model: open alerts, then the newest judged batch's drift and performance."""
    model = session.get(RegisteredModel, model_id)
    reports = list_reports(session=session, model_id=model_id)
    open_alerts = session.exec(select(Alert).where(Alert.model_id == model_id,
                                                   col(Alert.status).in_(["open", "acknowledged"]))).all()
    production = session.exec(select(ModelVersion).where(ModelVersion.model_id == model_id,
                                                         ModelVersion.status == VersionStatus.production)).first()
    reasons: list[str] = []
    if open_alerts:
        reasons += [f"Open alert: {alert.message}" for alert in open_alerts[:3]]
    newest = reports[0] if reports else None
    judged = next((r for r in reports if r.finished and r.judged), None)
    if newest is not None and newest.status == "failed":
        reasons.append(f"The report of batch {newest.batch_id} failed: {newest.error}")
    if judged is not None:
        if judged.dataset_drift:
            reasons.append(f"Batch {judged.batch_id}: {judged.drifted_columns} of {len(judged.columns)} input columns "
                           f"drifted ({judged.drift_share:.0%}, threshold {judged.drift_share_threshold:.0%}).")
        if judged.prediction_drift.get("drifted"):
            reasons.append(f"Batch {judged.batch_id}: the predictions drifted from those on the test rows.")
    labelled = next((r for r in reports if r.primary_performance()), None)
    worse = _performance_worse(labelled) if labelled else None
    if worse:
        reasons.append(worse)
    if open_alerts:
        health = "alert"
    elif reasons:
        health = "warning"
    elif any(r.finished for r in reports):
        health = "ok"
        reasons.append("No drift in the newest judged batch and no open alert." if judged else
                       "Only batches too small to judge so far.")
    else:
        health = "no data"
        reasons.append("No batch has been scored with this model yet.")
    return ModelHealth(model_id=model_id, name=model.name, health=health, reasons=reasons,
                       production=None if production is None else production.number, batches=len(reports),
                       last_batch_at=newest.batch_created_at if newest else None, open_alerts=len(open_alerts),
                       drift_share=judged.drift_share if judged else None, judged=judged is not None)


def project_health(*, session: Session, project_id: int) -> list[ModelHealth]:
    """Every model of a project with its health, those needing attention first."""
    models = session.exec(select(RegisteredModel).where(RegisteredModel.project_id == project_id)
                          .order_by(RegisteredModel.name)).all()
    found = [model_health(session=session, model_id=model.id) for model in models]
    return sorted(found, key=lambda h: (HEALTH_ORDER.get(h.health, 9), h.name))
