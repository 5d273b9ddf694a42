"""Data contracts: the rules later files for a dataset must meet, derived from a version and editable.

A contract is a plain dict stored as JSON::

    {"columns": {name: {"type", "required", "allowed_categories", "min", "max", "max_missing_share"}},
     "reference": {name: summary used to warn about distribution shift}}

Breaking a rule (a missing column, values of the wrong type, an unseen category, a value out of range, too
many empty cells) is a failure: the file does not fit what models were trained on. A shift in distribution
is only a warning, measured with the same methods as ``profiling.drift_score``; the reference summary keeps
just enough for that (quantiles of numeric columns, category shares) so the contract stays small.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from core.data import profile as profiling
from core.data import schema
from core.data.schema import ColumnType
from core.errors import InvalidInput

MISSING_MARGIN = 0.05
# The observed range of one sample is narrower than the process's: a new batch of the same data often has one
# value a little past the old extremes. Each bound is widened by this share of the observed range.
RANGE_MARGIN = 0.05
MAX_ALLOWED_CATEGORIES = 200
# Quantiles stand in for the reference sample: 1,000 evenly spaced ones reproduce a distribution's
# Wasserstein distance to a fraction of a percent and keep a numeric column's summary to a few kilobytes.
REFERENCE_POINTS = 1000
EXAMPLES = 5
CONTRACT_TYPES = [t.value for t in ColumnType if t is not ColumnType.ignore]
COLUMN_FIELDS = {"type", "required", "allowed_categories", "min", "max", "max_missing_share"}


# ── deriving ────────────────────────────────────────────────────────────────────────────────────────


def _numeric_reference(values: np.ndarray) -> dict[str, Any]:
    if values.size > REFERENCE_POINTS:
        points = np.quantile(values, (np.arange(REFERENCE_POINTS) + 0.5) / REFERENCE_POINTS)
    else:
        points = np.sort(values)
    std = float(values.std(ddof=1)) if values.size > 1 else None
    return {"method": "wasserstein", "values": [float(f"{v:.10g}") for v in points], "std": std,
            "count": int(values.size)}


def _category_reference(series: pd.Series) -> dict[str, Any]:
    shares = profiling.category_shares(series)
    kept = dict(list(shares.items())[:MAX_ALLOWED_CATEGORIES])
    return {"method": "jensen-shannon", "shares": {k: round(v, 6) for k, v in kept.items()},
            "other_share": round(max(0.0, 1.0 - sum(kept.values())), 6)}


def _widened_range(values: np.ndarray) -> tuple[float, float]:
    low, high = float(values.min()), float(values.max())
    margin = RANGE_MARGIN * (high - low)
    wider_low, wider_high = low - margin, high + margin
    if low >= 0:
        wider_low = max(0.0, wider_low)  # counts, ages and amounts that were never negative stay so
    if bool(np.all(values == np.round(values))):
        wider_low, wider_high = math.floor(wider_low), math.ceil(wider_high)
    return float(f"{wider_low:.10g}"), float(f"{wider_high:.10g}")


def derive_contract(frame: pd.DataFrame, types: Mapping[str, Any], profile: dict | None = None) -> dict[str, Any]:
    """A contract the given canonical frame meets: every kept column required, its categories and range allowed.

    Numeric ranges are the observed range widened by 5 % of its width on each side (never below zero for
    columns that were never negative); missing shares get a margin of 0.05.
    """
    # The stored profile already knows each column's missing share; categories and ranges are recomputed
    # because the profile keeps only the top categories.
    stored = (profile or {}).get("columns_profile", {})
    columns: dict[str, dict[str, Any]] = {}
    reference: dict[str, Any] = {}
    for raw_name in frame.columns:
        name = str(raw_name)
        kind = ColumnType(str(types.get(name, ColumnType.categorical)))
        if kind is ColumnType.ignore:
            continue
        series = frame[raw_name]
        observed = stored.get(name, {}).get("missing_share")
        if observed is None:
            observed = float(series.isna().mean()) if len(series) else 0.0
        rule: dict[str, Any] = {"type": kind.value, "required": True, "allowed_categories": None, "min": None,
                                "max": None, "max_missing_share": round(min(1.0, observed + MISSING_MARGIN), 4)}
        if kind in profiling.CATEGORY_LIKE:
            categories = sorted(profiling.category_values(series).unique())
            if len(categories) <= MAX_ALLOWED_CATEGORIES:
                rule["allowed_categories"] = [str(c) for c in categories]
            reference[name] = _category_reference(series)
        elif kind in profiling.NUMERIC_LIKE:
            values = profiling.numeric_values(series, kind)
            if kind is ColumnType.numeric and values.size:
                rule["min"], rule["max"] = _widened_range(values)
            reference[name] = _numeric_reference(values)
        columns[name] = rule
    return profiling.jsonable({"columns": columns, "reference": reference})


# ── checking an edited contract ─────────────────────────────────────────────────────────────────────


def _number(name: str, field: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"Column {name!r}: {field!r} must be a number or left empty, not {value!r}.")
    return float(value)


def _check_column(name: Any, rule: Any) -> dict[str, Any]:
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"Every column in the contract needs a name; found {name!r}.")
    if not isinstance(rule, Mapping):
        raise InvalidInput(f"Column {name!r}: its rules must be a set of fields (type, required, ...).")
    unknown = sorted(set(rule) - COLUMN_FIELDS)
    if unknown:
        raise InvalidInput(f"Column {name!r}: unknown field(s) {', '.join(map(repr, unknown))}. "
                           f"Use only {', '.join(sorted(COLUMN_FIELDS))}.")
    kind = rule.get("type")
    if kind not in CONTRACT_TYPES:
        raise InvalidInput(f"Column {name!r}: 'type' must be one of {', '.join(CONTRACT_TYPES)}, not {kind!r}. "
                           "To stop checking a column, remove it from the contract.")
    required = rule.get("required", True)
    if not isinstance(required, bool):
        raise InvalidInput(f"Column {name!r}: 'required' must be true or false, not {required!r}.")

    categories = rule.get("allowed_categories")
    if categories is not None:
        if kind not in (ColumnType.categorical, ColumnType.boolean):
            raise InvalidInput(f"Column {name!r}: 'allowed_categories' applies only to categorical and boolean "
                               "columns. Leave it empty.")
        if not isinstance(categories, list) or not all(isinstance(c, str) and c != "" for c in categories):
            raise InvalidInput(f"Column {name!r}: 'allowed_categories' must be a list of non-empty texts.")
        if not categories:
            raise InvalidInput(f"Column {name!r}: 'allowed_categories' is an empty list, which would refuse every "
                               "value. List at least one category, or leave it empty to allow any.")
        if kind == ColumnType.boolean and not set(categories) <= {"true", "false"}:
            raise InvalidInput(f"Column {name!r}: a boolean column's 'allowed_categories' can only be "
                               "'true' and 'false'.")
        categories = list(dict.fromkeys(categories))

    low, high = _number(name, "min", rule.get("min")), _number(name, "max", rule.get("max"))
    if (low is not None or high is not None) and kind != ColumnType.numeric:
        raise InvalidInput(f"Column {name!r}: 'min' and 'max' apply only to numeric columns. Leave them empty.")
    if low is not None and high is not None and low > high:
        raise InvalidInput(f"Column {name!r}: 'min' ({low:g}) is greater than 'max' ({high:g}).")

    share = _number(name, "max_missing_share", rule.get("max_missing_share", 1.0))
    if share is None or not 0.0 <= share <= 1.0:
        raise InvalidInput(f"Column {name!r}: 'max_missing_share' must be a share between 0 and 1 "
                           f"(0.1 means 10 %), not {rule.get('max_missing_share')!r}.")
    return {"type": ColumnType(kind).value, "required": required, "allowed_categories": categories,
            "min": low, "max": high, "max_missing_share": share}


def check_contract(contract: Any) -> dict[str, Any]:
    """The contract with every field checked and filled in; InvalidInput names the first wrong field."""
    if not isinstance(contract, Mapping) or not isinstance(contract.get("columns"), Mapping):
        raise InvalidInput("A data contract needs a 'columns' section listing the rules for each column.")
    if not contract["columns"]:
        raise InvalidInput("The contract lists no columns. Keep at least one column.")
    unknown = sorted(set(contract) - {"columns", "reference"})
    if unknown:
        raise InvalidInput(f"Unknown contract section(s): {', '.join(map(repr, unknown))}. "
                           "Use 'columns' and 'reference'.")
    columns = {name: _check_column(name, rule) for name, rule in contract["columns"].items()}
    reference = contract.get("reference") or {}
    if not isinstance(reference, Mapping):
        raise InvalidInput("The contract's 'reference' section must map column names to summaries.")
    # A reference summary is kept only while its column keeps the type it was measured with.
    kept = {name: _check_reference(name, summary) for name, summary in reference.items()
            if name in columns and isinstance(summary, Mapping) and summary.get("method") == _method(columns[name])}
    return {"columns": columns, "reference": kept}


def _check_reference(name: str, summary: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a reference summary whose numbers can be used; these are machine-made, so damage is reported."""
    damaged = InvalidInput(f"The reference summary of column {name!r} is damaged. Derive the contract again from "
                           "a dataset version.")
    summary = copy.deepcopy(dict(summary))

    def is_number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

    if summary["method"] == "wasserstein":
        if not isinstance(summary.get("values"), list) or not all(is_number(v) for v in summary["values"]):
            raise damaged
        if summary.get("std") is not None and not is_number(summary["std"]):
            raise damaged
    else:
        shares = summary.get("shares")
        if not isinstance(shares, Mapping) or not all(is_number(v) and v >= 0 for v in shares.values()):
            raise damaged
        if not is_number(summary.get("other_share", 0.0)):
            raise damaged
    return summary


def _method(rule: Mapping[str, Any]) -> str | None:
    kind = ColumnType(rule["type"])
    if kind in profiling.NUMERIC_LIKE:
        return "wasserstein"
    return "jensen-shannon" if kind in profiling.CATEGORY_LIKE else None


# ── validating a file ───────────────────────────────────────────────────────────────────────────────


def _present(series: pd.Series) -> pd.Series:
    """Cells holding a value: not None/NaN, and not blank text."""
    if pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
        return series.notna() & (series.astype("string").str.strip() != "").fillna(False)
    return series.notna()


def _quote(values: Any) -> str:
    return ", ".join(repr(str(v)) for v in values)


def _convert(series: pd.Series, kind: ColumnType, decimal: str) -> pd.Series:
    """The column as it would be stored, with values that do not fit the type as missing."""
    if kind is ColumnType.numeric:
        return schema.to_number(series, decimal)
    if kind is ColumnType.boolean and pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        # 1/0 (or 1.0/0.0) from a Parquet number column mean true/false just as "1"/"0" do in a CSV; any other
        # number becomes missing here and is then reported as not a yes/no value.
        series = series.map({0: "0", 1: "1"}, na_action="ignore").astype(object)
    return schema.apply_types(pd.DataFrame({"value": series}), {"value": kind}, decimal)["value"]


def _check_values(name: str, rule: dict[str, Any], series: pd.Series, decimal: str,
                  fail: Any) -> pd.Series:
    """Report values of the wrong type, unseen categories and out-of-range numbers; return converted values."""
    kind = ColumnType(rule["type"])
    present = _present(series)
    converted = _convert(series, kind, decimal)
    wrong = present & converted.isna()
    if wrong.any():
        what = {ColumnType.numeric: "numbers", ColumnType.boolean: "yes/no values",
                ColumnType.datetime: "dates"}.get(kind, "values")
        fail(name, "retyped", f"Column {name!r} should hold {what}, but {int(wrong.sum()):,} value(s) are not "
                              f"(for example {str(series[wrong].iloc[0])!r}).")
    categories = rule["allowed_categories"]
    if categories is not None:
        values = profiling.category_values(converted)
        unseen = values[~values.isin(categories)]
        if len(unseen):
            examples = unseen.value_counts().index[:EXAMPLES]
            fail(name, "unseen_category", f"Column {name!r} has {len(unseen):,} value(s) in categories the contract "
                                          f"does not allow: {_quote(examples)}.")
    low, high = rule["min"], rule["max"]
    if kind is ColumnType.numeric and (low is not None or high is not None):
        numbers = converted.dropna()
        outside = numbers[((numbers < low) if low is not None else False)
                          | ((numbers > high) if high is not None else False)]
        if len(outside):
            allowed = f"from {low:g} to {high:g}" if low is not None and high is not None else (
                f"at least {low:g}" if low is not None else f"at most {high:g}")
            fail(name, "out_of_range", f"Column {name!r} has {len(outside):,} value(s) outside the allowed range "
                                       f"({allowed}); this file goes from {numbers.min():g} to {numbers.max():g}.")
    return converted


def _drift(name: str, kind: ColumnType, summary: Mapping[str, Any] | None, converted: pd.Series) -> dict | None:
    """Drift of the converted column against the contract's reference summary, or None without a summary."""
    if not summary:
        return None
    if kind in profiling.NUMERIC_LIKE:
        result = profiling.numeric_drift(np.asarray(summary.get("values") or [], dtype="float64"),
                                       profiling.numeric_values(converted, kind), summary.get("std"))
    elif kind in profiling.CATEGORY_LIKE:
        result = profiling.category_drift(summary.get("shares") or {}, profiling.category_shares(converted),
                                        float(summary.get("other_share") or 0.0))
    else:
        return None
    return {"column": name, **result}


def validate_frame(frame: pd.DataFrame, contract: Mapping[str, Any], decimal: str = ".") -> dict[str, Any]:
    """Check a raw table (as read from a file) against a contract: rule breaks fail, distribution shifts warn."""
    contract = check_contract(contract)
    failures: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []

    def fail(column: str | None, kind: str, message: str) -> None:
        failures.append({"column": column, "kind": kind, "message": message})

    def warn(column: str | None, kind: str, message: str) -> None:
        warnings.append({"column": column, "kind": kind, "message": message})

    names = [str(c) for c in frame.columns]
    rows = int(len(frame))
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        fail(None, "duplicate_column", f"The file has more than one column named {_quote(doubled)}. "
                                       "Rename or remove the copies.")
    if rows == 0:
        fail(None, "empty", "The file has no rows.")
    by_lower = {n.lower(): n for n in names}
    checked, drift = [], []
    for name, rule in contract["columns"].items():
        if name not in names:
            near = by_lower.get(name.lower())
            hint = f" The file has {near!r}; column names must match exactly." if near else ""
            if rule["required"]:
                fail(name, "missing_column", f"The required column {name!r} is not in the file.{hint}")
            else:
                warn(name, "missing_column", f"The optional column {name!r} is not in the file.{hint}")
            continue
        if name in doubled:
            continue
        checked.append(name)
        series = frame[frame.columns[names.index(name)]]
        converted = _check_values(name, rule, series, decimal, fail)
        missing_share = float((~_present(series)).mean()) if rows else 0.0
        if missing_share > rule["max_missing_share"] + 1e-9:
            fail(name, "missing_share", f"Column {name!r} is empty in {missing_share:.1%} of rows; the contract "
                                        f"allows at most {rule['max_missing_share']:.1%}.")
        shift = _drift(name, ColumnType(rule["type"]), contract["reference"].get(name), converted)
        if shift is not None:
            drift.append(shift)
            if shift["drifted"]:
                warn(name, "drift", f"The values of column {name!r} have shifted compared with the reference data "
                                    f"(drift score {shift['score']:.2f}, above the threshold of "
                                    f"{shift['threshold']:.2f}). Models trained on the reference may do worse.")
    extra = [n for n in dict.fromkeys(names) if n not in contract["columns"]]
    for name in extra:
        warn(name, "extra_column", f"Column {name!r} is not in the contract and will be ignored.")
    return profiling.jsonable({"ok": not failures, "failures": failures, "warnings": warnings, "rows": rows,
                              "checked_columns": checked, "extra_columns": extra, "drift": drift})
