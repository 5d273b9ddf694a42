"""Column types: inferred from text, changeable by the user, and applied to give the canonical frame.

The canonical frame is what Steward stores and hashes: numeric columns as float64, booleans as pandas'
nullable boolean, datetimes as UTC-naive ``datetime64[ns]``, everything else as strings with missing
values as ``NA``. The same content read from CSV, Excel or Parquet becomes the same canonical frame, so
it gets the same SHA-256.
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum

import numpy as np
import pandas as pd

from core.errors import InvalidInput


class ColumnType(StrEnum):
    numeric = "numeric"
    categorical = "categorical"
    text = "text"
    datetime = "datetime"
    identifier = "identifier"
    boolean = "boolean"
    ignore = "ignore"


TRUE_WORDS = {"true", "yes", "y", "t"}
FALSE_WORDS = {"false", "no", "n", "f"}
_BOOLEAN_PAIRS = [{"true", "false"}, {"yes", "no"}, {"y", "n"}, {"t", "f"}]
IDENTIFIER_NAME = re.compile(r"(^|[_\s-])(id|key|uuid|name|e-?mail|phone|telephone|address|postcode)($|[_\s-])",
                             re.IGNORECASE)
CODE_NAME = re.compile(r"code|class|categor|nace|isco|nuts", re.IGNORECASE)
_SAMPLE = 20_000


def _as_text(series: pd.Series) -> pd.Series:
    """Non-missing values as stripped strings."""
    values = series.dropna().astype(str).str.strip()
    return values[values != ""]


def to_number(values: pd.Series, decimal: str = ".") -> pd.Series:
    """Parse numbers written as text ('1 234,5' with a decimal comma); unparseable become NaN."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    if decimal == ".":
        # Fast path: most cells are plain numbers; only the rest get the slower clean-up.
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        retry = numbers.isna() & values.notna()
        if not retry.any():
            return numbers
        numbers[retry] = _cleaned_number(values[retry], decimal)
        return numbers
    return _cleaned_number(values, decimal)


def _cleaned_number(values: pd.Series, decimal: str) -> pd.Series:
    text = values.astype("string").str.strip()
    if decimal == ",":
        text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    text = text.str.replace(r"[\s\u00a0]", "", regex=True)
    return pd.to_numeric(text, errors="coerce").astype("float64")


def _looks_numeric(values: pd.Series, decimal: str) -> bool:
    # Mostly numbers is numeric: a stray word is then named when the version is saved, not hidden in a text guess.
    return bool(to_number(values, decimal).notna().mean() >= 0.95)


def _looks_datetime(values: pd.Series) -> bool:
    if not values.str.contains(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}", regex=True).all():
        return False
    parsed = pd.to_datetime(values, errors="coerce", format="mixed", dayfirst=False)
    return bool(parsed.notna().all())


def infer_type(name: str, series: pd.Series, decimal: str = ".") -> ColumnType:
    """The most likely type of one column, from its name and a sample of its values."""
    if pd.api.types.is_bool_dtype(series):
        return ColumnType.boolean
    if pd.api.types.is_datetime64_any_dtype(series):
        return ColumnType.datetime
    present = series.dropna()
    # Text work on a sample only: types are decided by what most values look like, and big files stay fast.
    sample = _as_text(present.sample(_SAMPLE, random_state=0) if len(present) > _SAMPLE else present)
    if sample.empty:
        return ColumnType.categorical  # all missing: kept, and the profile warns
    lowered = set(sample.str.lower().unique()[:3])
    if any(lowered <= pair and len(lowered) == 2 for pair in _BOOLEAN_PAIRS):
        return ColumnType.boolean
    # A column can only be unique per row if its sample is; only then count the whole column.
    unique_per_row = (len(series) >= 20 and len(present) == len(series) and sample.nunique() == len(sample)
                      and present.nunique() == len(series))
    numeric = pd.api.types.is_numeric_dtype(series) or _looks_numeric(sample, decimal)
    if numeric and not pd.api.types.is_numeric_dtype(series) and CODE_NAME.search(name) and sample.nunique() <= 500:
        return ColumnType.categorical  # classification codes ("0110", "2211") are labels, not quantities
    if numeric:
        whole = to_number(sample, decimal)
        if unique_per_row and IDENTIFIER_NAME.search(name) and bool((whole == whole.round()).all()):
            return ColumnType.identifier
        return ColumnType.numeric
    if _looks_datetime(sample):
        return ColumnType.datetime
    if unique_per_row and (IDENTIFIER_NAME.search(name) or sample.str.count(r"\s").mean() < 1):
        return ColumnType.identifier
    words = sample.str.count(r"\s+").mean() + 1
    if words >= 3 and sample.nunique() > 0.3 * len(sample):
        return ColumnType.text
    return ColumnType.categorical


def infer_types(frame: pd.DataFrame, decimal: str = ".") -> dict[str, ColumnType]:
    return {str(name): infer_type(str(name), frame[name], decimal) for name in frame.columns}


def _to_boolean(series: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(series):
        return series.astype("boolean")
    # Decide once per distinct value, not once per row.
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    words = pd.Series(uniques, dtype="string").str.strip().str.lower()
    decided = pd.array([True if w in TRUE_WORDS | {"1"} else False if w in FALSE_WORDS | {"0"} else pd.NA
                        for w in words.fillna("")], dtype="boolean")
    result = decided.take(codes, allow_fill=True)
    return pd.Series(result, index=series.index, dtype="boolean")


def _to_datetime(series: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(series, errors="coerce", format="mixed", utc=True)
    return parsed.dt.tz_localize(None).astype("datetime64[ns]")


def _to_string(series: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(series):
        # 3.0 read from Parquet and "3" read from CSV are the same value.
        text = series.map(lambda v: None if pd.isna(v) else (str(int(v)) if float(v).is_integer() else repr(v)))
        return text.astype("string")
    text = series.astype("string").str.strip()
    return text.mask(text == "")


def apply_types(frame: pd.DataFrame, types: dict[str, ColumnType | str], decimal: str = ".") -> pd.DataFrame:
    """The canonical frame: columns marked "ignore" dropped, every other column converted to its type."""
    unknown = [name for name in types if name not in frame.columns]
    if unknown:
        raise InvalidInput(f"These columns are not in the file: {', '.join(unknown)}.")
    converted: dict[str, pd.Series] = {}
    for name in frame.columns:
        kind = ColumnType(types.get(str(name), ColumnType.categorical))
        series = frame[name]
        if kind is ColumnType.ignore:
            continue
        if kind is ColumnType.numeric:
            numbers = to_number(series, decimal)
            unparsed = numbers.isna() & series.notna()
            unparsed[unparsed] = _present(series[unparsed])  # blanks are missing values, not errors
            bad = int(unparsed.sum())
            if bad:
                example = series[unparsed].iloc[0]
                raise InvalidInput(
                    f"Column {name!r} is set to numeric, but {bad} value(s) are not numbers (e.g. {example!r}). "
                    "Set it to categorical or text, or fix the values."
                )
            converted[str(name)] = numbers
        elif kind is ColumnType.boolean:
            converted[str(name)] = _to_boolean(series)
        elif kind is ColumnType.datetime:
            converted[str(name)] = _to_datetime(series)
        else:
            converted[str(name)] = _to_string(series)
    if not converted:
        raise InvalidInput("Every column is set to 'ignore'. Keep at least one column.")
    return pd.DataFrame(converted)


def _present(series: pd.Series) -> pd.Series:
    return series.notna() & (series.astype("string").str.strip() != "")


def content_hash(frame: pd.DataFrame, types: dict[str, ColumnType | str]) -> str:
    """SHA-256 of the canonical content: column names, types and values in order, not the file format."""
    digest = hashlib.sha256()
    for name in frame.columns:
        digest.update(f"{name}\x1f{ColumnType(types[name]).value}\x1e".encode())
    rows = pd.util.hash_pandas_object(frame, index=False, categorize=False).to_numpy(dtype=np.uint64)
    digest.update(rows.tobytes())
    digest.update(f"rows={len(frame)}".encode())
    return digest.hexdigest()
