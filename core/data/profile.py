"""Profiles, drift scores and version comparisons of canonical frames, as plain JSON-ready dicts.

A profile is computed once per dataset version and stored in a JSON column, so everything returned here is
made of plain ``dict``/``list``/``int``/``float``/``str``/``None`` (never numpy scalars, never NaN). The work
is vectorised with pandas and numpy: each column is hashed once (``value_counts``), and only the text
statistics that need tokenising use a sample, so a million rows by twenty columns take a few seconds.

Drift compares two samples of one column: numeric and datetime columns by the Wasserstein distance divided
by the reference standard deviation, categorical and boolean columns by the Jensen-Shannon distance of the
category shares. ``core.data.contract`` reuses the same functions against a stored reference summary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from core.data.schema import IDENTIFIER_NAME, ColumnType
from core.errors import InvalidInput

HISTOGRAM_BINS = 20
TOP_CATEGORIES = 20
TOP_WORDS = 20
TEXT_SAMPLE_ROWS = 50_000
MONTHLY_HISTOGRAM_MAX_MONTHS = 48
MOSTLY_MISSING_SHARE = 0.95
HIGH_CARDINALITY_SHARE = 0.5
HIGH_CARDINALITY_COUNT = 1000
# Below this many values "a different value in every row" is what small tables do anyway.
MIN_ROWS_FOR_UNIQUENESS = 20
NUMERIC_DRIFT_THRESHOLD = 0.1
CATEGORY_DRIFT_THRESHOLD = 0.1
EXAMPLE_KEYS = 20
QUANTILES = {"p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
# Top words are meant to show what a text is about; these carry no topic in English.
STOP_WORDS = frozenset(
    "a an and are as at be but by for from has have i in is it its my of on or our that the their this to "
    "was we were will with you your".split()
)

NUMERIC_LIKE = (ColumnType.numeric, ColumnType.datetime)
CATEGORY_LIKE = (ColumnType.categorical, ColumnType.boolean)


# ── small helpers ───────────────────────────────────────────────────────────────────────────────────


def _float(value: Any) -> float | None:
    """A plain float, or None for missing and infinite values (JSON has neither)."""
    if value is None or value is pd.NA:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def jsonable(value: Any) -> Any:
    """The value with numpy scalars made plain Python and NaN/NA made None, so json.dumps(allow_nan=False) works."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _float(value)
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _column_type(types: Mapping[str, Any], name: str) -> ColumnType:
    raw = types.get(name, ColumnType.categorical)
    try:
        return ColumnType(str(raw.value if isinstance(raw, ColumnType) else raw))
    except ValueError:
        known = ", ".join(t.value for t in ColumnType)
        raise InvalidInput(f"Column {name!r} has an unknown type {raw!r}. Use one of: {known}.") from None


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def category_values(series: pd.Series) -> pd.Series:
    """Non-missing values of a categorical or boolean column as strings ("true"/"false" for booleans)."""
    values = series.dropna()
    if pd.api.types.is_bool_dtype(values):
        return values.astype(bool).map({True: "true", False: "false"}).astype(object)
    return values.astype(str)


def numeric_values(series: pd.Series, column_type: ColumnType | str) -> np.ndarray:
    """Finite values of a numeric column, or a datetime column as epoch seconds, as a float array."""
    if ColumnType(column_type) is ColumnType.datetime:
        stamps = pd.to_datetime(series, errors="coerce").dropna()
        return stamps.astype("datetime64[ns]").to_numpy().astype("int64") / 1e9
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return values[np.isfinite(values)]


# ── profile ─────────────────────────────────────────────────────────────────────────────────────────


def _numeric_histogram(values: np.ndarray, low: float, high: float, whole: bool) -> dict[str, list]:
    if values.size == 0:
        return {"edges": [], "counts": []}
    if low == high:
        # One bar of width one centred on the only value, so a chart still has something to draw.
        return {"edges": [low - 0.5, high + 0.5], "counts": [int(values.size)]}
    if whole:
        # Bars of a whole number of units centred on the values: equal-width bins over ages 16-74 would hold
        # two values in some bars and three in others, a saw-tooth that is not in the data.
        width = max(1, math.ceil((high - low + 1) / HISTOGRAM_BINS))
        edges = low - 0.5 + width * np.arange(math.ceil((high - low + 1) / width) + 1)
    else:
        edges = np.histogram_bin_edges(values, bins=HISTOGRAM_BINS, range=(low, high))
    counts, edges = np.histogram(values, bins=edges)
    # Ten significant digits drop float noise (42.099999999999994) without moving any edge in practice.
    return {"edges": [float(f"{e:.10g}") for e in edges], "counts": [int(c) for c in counts]}


def _profile_numeric(series: pd.Series) -> dict[str, Any]:
    values = numeric_values(series, ColumnType.numeric)
    if values.size == 0:
        empty = dict.fromkeys(("min", "max", "mean", "std"))
        return {**empty, "quantiles": dict.fromkeys(QUANTILES), "histogram": {"edges": [], "counts": []},
                "whole_numbers": False}
    low, high = float(values.min()), float(values.max())
    whole = bool(np.all(values == np.round(values)))
    quantiles = np.quantile(values, list(QUANTILES.values()))
    return {
        "min": low,
        "max": high,
        "mean": _float(values.mean()),
        # ddof=1 like pandas, so the stored figure matches what an analyst gets from df.describe().
        "std": _float(values.std(ddof=1)) if values.size > 1 else None,
        "quantiles": {name: _float(q) for name, q in zip(QUANTILES, quantiles, strict=True)},
        "histogram": _numeric_histogram(values, low, high, whole),
        "whole_numbers": whole,
    }


def _profile_datetime(series: pd.Series) -> dict[str, Any]:
    stamps = pd.to_datetime(series, errors="coerce").dropna()
    if stamps.empty:
        return {"min": None, "max": None, "histogram": {"edges": [], "counts": [], "unit": None}}
    low, high = stamps.min(), stamps.max()
    month_index = stamps.to_numpy().astype("datetime64[M]").astype("int64")  # months since 1970-01
    first, last = int(month_index.min()), int(month_index.max())
    if last - first < MONTHLY_HISTOGRAM_MAX_MONTHS:
        counts = np.bincount(month_index - first, minlength=last - first + 1)
        edges = [pd.Timestamp(np.datetime64(m, "M")).isoformat() for m in range(first, last + 2)]
        histogram = {"edges": edges, "counts": [int(c) for c in counts], "unit": "month"}
    else:
        nanos = stamps.to_numpy().astype("int64").astype("float64")
        counts, edges = np.histogram(nanos, bins=HISTOGRAM_BINS)
        histogram = {"edges": [pd.Timestamp(int(e)).isoformat() for e in edges],
                     "counts": [int(c) for c in counts], "unit": "equal bins"}
    return {"min": low.isoformat(), "max": high.isoformat(), "histogram": histogram}


def _profile_categories(counts: np.ndarray, uniques: np.ndarray | pd.Index, boolean: bool) -> dict[str, Any]:
    # Stable sort: ties keep the order in which the values first appear in the file.
    top = np.argsort(-counts, kind="stable")[:TOP_CATEGORIES]
    names = {True: "true", False: "false"} if boolean else {}
    values = [names.get(v, str(v)) for v in np.asarray(uniques, dtype=object)[top]]
    return {
        "top_categories": [{"value": v, "count": int(c)} for v, c in zip(values, counts[top], strict=True)],
        "other_count": int(counts.sum() - counts[top].sum()),
    }


def _profile_text(series: pd.Series) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    values = series.dropna().astype(str)
    if values.empty:
        return {"mean_chars": None, "max_chars": None, "mean_words": None, "max_words": None,
                "top_words": [], "top_words_sample_rows": 0}
    # Arrow's string kernels run in C++, where pandas' .str methods loop in Python over every row. The ASCII
    # whitespace split is several times faster than the Unicode one; words split only by exotic spaces are rare.
    array = pa.array(values.to_numpy(dtype=object), type=pa.large_string())
    chars = pc.utf8_length(array).to_numpy()
    words = pc.list_value_length(pc.ascii_split_whitespace(array)).to_numpy()
    sample = values.sample(TEXT_SAMPLE_ROWS, random_state=0) if len(values) > TEXT_SAMPLE_ROWS else values
    tokens = sample.str.lower().str.findall(r"[^\W\d_]{2,}").explode().dropna()
    tokens = tokens[~tokens.isin(STOP_WORDS)]
    top = tokens.value_counts().iloc[:TOP_WORDS]
    return {
        "mean_chars": _float(chars.mean()),
        "max_chars": int(chars.max()),
        "mean_words": _float(words.mean()),
        "max_words": int(words.max()),
        "top_words": [{"value": str(word), "count": int(count)} for word, count in top.items()],
        "top_words_sample_rows": int(len(sample)),
    }


def _column_warnings(name: str, kind: ColumnType, column: dict[str, Any], rows: int) -> list[dict[str, Any]]:
    """Plain-language warnings about one profiled column."""
    found: list[dict[str, Any]] = []

    def warn(code: str, message: str) -> None:
        found.append({"column": name, "kind": code, "message": message})

    missing, distinct, present = column["missing_share"], column["distinct"], column["count"]
    if rows and present == 0:
        warn("all_missing", f"Column {name!r} is empty in every row. It carries no information; set it to ignore.")
        return found
    if missing >= MOSTLY_MISSING_SHARE:
        warn("mostly_missing", f"Column {name!r} is empty in {missing:.0%} of rows. It carries almost no "
                               "information; consider setting it to ignore.")
    if distinct == 1:
        warn("constant", f"Column {name!r} has the same value in every filled row. It cannot help a model; "
                         "consider setting it to ignore.")
    unique_per_row = rows >= MIN_ROWS_FOR_UNIQUENESS and distinct == rows
    if kind is ColumnType.numeric:
        # Measurements are often all different; whole numbers that never repeat look like a row counter.
        unique_per_row = unique_per_row and column.get("whole_numbers", False)
    elif kind is not ColumnType.categorical:
        # Free text and timestamps are naturally all different; a column typed identifier is already handled.
        unique_per_row = False
    named_like_id = bool(IDENTIFIER_NAME.search(name))
    if kind is not ColumnType.identifier and (unique_per_row or named_like_id):
        reason = "it has a different value in every row" if unique_per_row else "its name suggests it"
        warn("identifier", f"Column {name!r} looks like an identifier ({reason}). Identifiers do not help a "
                           "model generalise and may point to individual people: set its type to identifier "
                           "or ignore.")
    if kind is ColumnType.identifier:
        warn("identifier", f"Column {name!r} identifies rows: it is kept for matching records but never used to "
                           "train a model. If it can point to a person, check that you need to keep it.")
    if kind is ColumnType.categorical and not unique_per_row and distinct > 1 and (
        distinct > HIGH_CARDINALITY_COUNT
        or (present >= MIN_ROWS_FOR_UNIQUENESS and distinct > HIGH_CARDINALITY_SHARE * present)
    ):
        warn("high_cardinality", f"Column {name!r} has {distinct:,} different categories for {present:,} filled "
                                 "rows. So many categories are hard to learn from; consider grouping them, or "
                                 "setting the column to text or identifier.")
    return found


def profile_frame(frame: pd.DataFrame, types: Mapping[str, Any]) -> dict[str, Any]:
    """Summary statistics, per-column distributions and plain-language warnings for a canonical frame."""
    kinds = {str(name): _column_type(types, str(name)) for name in frame.columns}
    kept = [name for name in frame.columns if kinds[str(name)] is not ColumnType.ignore]
    rows = int(len(frame))
    columns: dict[str, dict[str, Any]] = {}
    warnings: list[dict[str, Any]] = []
    # Hashing is the expensive part, so each column is factorised once: its codes give the missing count,
    # the distinct count, the category counts, and (combined across columns) the duplicate rows.
    row_key, key_bound = np.zeros(rows, dtype=np.int64), 1
    for name in kept:
        series, kind = frame[name], kinds[str(name)]
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        codes = codes.astype(np.int64) + 1  # 0 marks a missing value
        counts = np.bincount(codes, minlength=len(uniques) + 1)
        missing, present = int(counts[0]), rows - int(counts[0])
        column: dict[str, Any] = {"type": kind.value, "count": present, "missing": missing,
                                  "missing_share": _share(missing, rows), "distinct": int(len(uniques))}
        if kind is ColumnType.numeric:
            column.update(_profile_numeric(series))
        elif kind is ColumnType.datetime:
            column.update(_profile_datetime(series))
        elif kind is ColumnType.text:
            column.update(_profile_text(series))
        else:
            column.update(_profile_categories(counts[1:], uniques, kind is ColumnType.boolean))
        warnings += _column_warnings(str(name), kind, column, rows)
        columns[str(name)] = column
        width = len(uniques) + 1
        if key_bound * width >= 2**62:
            # Renumber the combined key densely before it could overflow int64.
            row_key, seen = pd.factorize(row_key)
            row_key, key_bound = row_key.astype(np.int64), len(seen)
        row_key, key_bound = row_key * width + codes, key_bound * width
    duplicates = rows - len(pd.unique(row_key)) if kept and rows else 0
    if duplicates:
        warnings.insert(0, {"column": None, "kind": "duplicate_rows",
                            "message": f"{duplicates:,} rows are exact copies of an earlier row. Check whether "
                                       "they are real repeats or were loaded twice."})
    return jsonable({"rows": rows, "columns": len(kept), "duplicate_rows": duplicates,
                     "columns_profile": columns, "warnings": warnings})


# ── drift ───────────────────────────────────────────────────────────────────────────────────────────


def _drift(method: str, score: float | None, threshold: float | None, note: str | None = None) -> dict[str, Any]:
    score = None if score is None else round(float(score), 6)
    drifted = bool(score is not None and threshold is not None and score > threshold)
    return {"method": method, "score": score, "drifted": drifted, "threshold": threshold, "note": note}


def numeric_drift(reference: np.ndarray, current: np.ndarray, reference_std: float | None = None) -> dict[str, Any]:
    """Wasserstein distance between two samples, in units of the reference standard deviation."""
    from scipy.stats import wasserstein_distance

    reference = np.asarray(reference, dtype="float64")
    current = np.asarray(current, dtype="float64")
    if reference.size == 0 or current.size == 0:
        side = "reference" if reference.size == 0 else "current"
        return _drift("wasserstein", None, NUMERIC_DRIFT_THRESHOLD, f"No values to compare in the {side} data.")
    distance = wasserstein_distance(reference, current)
    scale = reference_std if reference_std is not None else (reference.std(ddof=1) if reference.size > 1 else 0.0)
    if not scale or not math.isfinite(scale):
        # A constant reference has no spread to measure against; the spread of both together still ranks
        # "moved a little" below "moved a lot", and two equal constants still score zero.
        scale = float(np.concatenate([reference, current]).std())
    score = distance / scale if scale else 0.0
    return _drift("wasserstein", score, NUMERIC_DRIFT_THRESHOLD)


def category_shares(values: pd.Series) -> dict[str, float]:
    """Share of each category among the non-missing values."""
    counts = category_values(values).value_counts(normalize=True)
    return {str(k): float(v) for k, v in counts.items()}


def category_drift(reference_shares: Mapping[str, float], current_shares: Mapping[str, float],
                   reference_other: float = 0.0) -> dict[str, Any]:
    """Jensen-Shannon distance (base 2, from 0 to 1) between two sets of category shares.

    Categories the reference does not list are pooled with its ``reference_other`` share, so a reference
    summary that keeps only its most frequent categories still compares like with like.
    """
    from scipy.spatial.distance import jensenshannon

    reference_empty = not reference_shares and not reference_other
    if reference_empty or not current_shares:
        side = "reference" if reference_empty else "current"
        return _drift("jensen-shannon", None, CATEGORY_DRIFT_THRESHOLD, f"No values to compare in the {side} data.")
    names = list(reference_shares)
    p = np.array([reference_shares[n] for n in names] + [reference_other], dtype="float64")
    q = np.array([current_shares.get(n, 0.0) for n in names], dtype="float64")
    q = np.append(q, max(0.0, float(sum(current_shares.values())) - float(q.sum())))
    score = float(jensenshannon(p / p.sum(), q / q.sum(), base=2))
    return _drift("jensen-shannon", score if math.isfinite(score) else 0.0, CATEGORY_DRIFT_THRESHOLD)


def drift_score(reference: pd.Series, current: pd.Series, column_type: ColumnType | str) -> dict[str, Any]:
    """How far one column's distribution moved between a reference and a current sample."""
    kind = ColumnType(column_type)
    if kind in NUMERIC_LIKE:
        return numeric_drift(numeric_values(reference, kind), numeric_values(current, kind))
    if kind in CATEGORY_LIKE:
        return category_drift(category_shares(reference), category_shares(current))
    return _drift("not compared", None, None, f"{kind.value.capitalize()} columns are not compared for drift.")


# ── version comparison ──────────────────────────────────────────────────────────────────────────────


def _key_text(series: pd.Series) -> pd.Series:
    """Key values as text, so 3.0 (numeric) and "3" (identifier) match across versions."""
    values = series.dropna()
    if pd.api.types.is_float_dtype(values) and bool((values % 1 == 0).all()):
        values = values.astype("int64")
    return values.astype(str)


def _key_changes(old: pd.Series, new: pd.Series) -> dict[str, Any]:
    old_keys, new_keys = _key_text(old), _key_text(new)
    old_unique, new_unique = pd.Index(old_keys.unique()), pd.Index(new_keys.unique())
    added, removed = new_unique.difference(old_unique), old_unique.difference(new_unique)
    return {
        "added": int(len(added)),
        "removed": int(len(removed)),
        "kept": int(len(new_unique.intersection(old_unique))),
        "added_examples": [str(k) for k in added[:EXAMPLE_KEYS]],
        "removed_examples": [str(k) for k in removed[:EXAMPLE_KEYS]],
        "duplicate_keys_old": int(len(old_keys) - len(old_unique)),
        "duplicate_keys_new": int(len(new_keys) - len(new_unique)),
        "missing_keys_old": int(old.isna().sum()),
        "missing_keys_new": int(new.isna().sum()),
    }


def compare_versions(old: pd.DataFrame, old_types: Mapping[str, Any], new: pd.DataFrame,
                     new_types: Mapping[str, Any], key: str | None = None) -> dict[str, Any]:
    """What changed between two canonical frames: columns, types, rows (matched by ``key``) and distributions."""
    if key is not None and (key not in old.columns or key not in new.columns):
        where = [label for label, frame in (("older", old), ("newer", new)) if key not in frame.columns]
        raise InvalidInput(f"Column {key!r} is not in the {' and '.join(where)} version, so rows cannot be matched "
                           "by it. Choose a column both versions have.")
    old_names, new_names = [str(c) for c in old.columns], [str(c) for c in new.columns]
    old_kinds = {n: _column_type(old_types, n) for n in old_names}
    new_kinds = {n: _column_type(new_types, n) for n in new_names}
    common = [n for n in new_names if n in old_kinds]
    retyped = [{"column": n, "old_type": old_kinds[n].value, "new_type": new_kinds[n].value}
               for n in common if old_kinds[n] is not new_kinds[n]]
    drift = []
    for name in common:
        if old_kinds[name] is new_kinds[name]:
            entry = drift_score(old[name], new[name], new_kinds[name])
        else:
            entry = _drift("not compared", None, None, "The column's type changed, so values are not compared.")
        drift.append({"column": name, "type": new_kinds[name].value, **entry,
                      "missing_share_old": _share(int(old[name].isna().sum()), len(old)),
                      "missing_share_new": _share(int(new[name].isna().sum()), len(new))})
    return jsonable({
        "rows": {"old": int(len(old)), "new": int(len(new))},
        "columns": {"added": [n for n in new_names if n not in old_kinds],
                    "removed": [n for n in old_names if n not in new_kinds],
                    "retyped": retyped},
        "key": key,
        "keyed_rows": _key_changes(old[key], new[key]) if key is not None else None,
        "drift": drift,
    })
