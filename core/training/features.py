"""Turning a canonical dataset into model inputs, inside the model's own Pipeline.

The first step of every Steward pipeline is :class:`ColumnTyper`, so a saved model accepts the canonical
frame (as stored for a dataset version, or as read from a scoring file) and prepares it the same way at
training and at scoring time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from core.data.schema import ColumnType

CATEGORICAL = (ColumnType.categorical, ColumnType.boolean)
MAX_ONE_HOT_CATEGORIES = 40


class ColumnTyper(TransformerMixin, BaseEstimator):
    """Give each input column the form the preprocessing expects; unknown extra columns are dropped.

    Numeric and datetime columns become floats (datetimes as days since 1970), categorical and boolean
    columns become text with NaN for missing, text columns become strings with "" for missing.
    """

    def __init__(self, types: dict[str, str] | None = None):
        self.types = types

    def fit(self, X, y=None):  # noqa: N803 - scikit-learn's argument names
        self.columns_ = list(self.types)
        return self

    def transform(self, X):  # noqa: N803
        missing = [name for name in self.columns_ if name not in X.columns]
        if missing:
            raise ValueError(f"missing columns: {', '.join(missing)}")
        out = {}
        for name in self.columns_:
            kind, column = self.types[name], X[name]
            if kind == ColumnType.numeric:
                out[name] = pd.to_numeric(column, errors="coerce").astype("float64")
            elif kind == ColumnType.datetime:
                moments = pd.to_datetime(column, errors="coerce")
                out[name] = (moments - pd.Timestamp("1970-01-01")).dt.total_seconds().astype("float64") / 86400
            elif kind == ColumnType.text:
                out[name] = column.astype("string").fillna("").astype(object)
            else:
                text = column.astype("string").str.lower() if kind == ColumnType.boolean else column.astype("string")
                out[name] = text.astype(object).where(text.notna(), np.nan)
        return pd.DataFrame(out, index=X.index)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.columns_, dtype=object)


def model_types(types: dict[str, str], target: str, excluded: list[str] | tuple[str, ...] = ()) -> dict[str, str]:
    """The input columns a model uses: everything but the target, excluded columns and identifiers."""
    return {name: kind for name, kind in types.items()
            if name != target and name not in excluded and kind not in (ColumnType.identifier, ColumnType.ignore)}


def _text_vectorizer(kind: str) -> TfidfVectorizer | FeatureUnion:
    words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=50_000)
    if kind == "words":
        return words
    characters = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True,
                                 max_features=100_000)
    return FeatureUnion([("words", words), ("characters", characters)])


def build_preprocessor(types: dict[str, str], *, scale: bool, text: str = "words") -> ColumnTransformer:
    """A ColumnTransformer for the model's input columns.

    ``scale`` standardises numbers (for linear models); ``text`` is "words" or "words+characters".
    """
    numeric = [n for n, k in types.items() if k in (ColumnType.numeric, ColumnType.datetime)]
    categorical = [n for n, k in types.items() if k in CATEGORICAL]
    texts = [n for n, k in types.items() if k == ColumnType.text]
    numeric_steps = [("impute", SimpleImputer(strategy="median", add_indicator=True))]
    if scale:
        numeric_steps.append(("scale", StandardScaler()))
    parts = []
    if numeric:
        parts.append(("numeric", Pipeline(numeric_steps), numeric))
    if categorical:
        parts.append(("categorical", Pipeline([
            ("impute", SimpleImputer(strategy="constant", fill_value="(missing)")),
            ("one_hot", OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=MAX_ONE_HOT_CATEGORIES,
                                      min_frequency=5, sparse_output=False)),
        ]), categorical))
    for name in texts:
        parts.append((f"text_{name}", _text_vectorizer(text), name))
    # Text features are sparse; keep them sparse only when there are text columns.
    return ColumnTransformer(parts, sparse_threshold=0.3 if texts else 0.0, verbose_feature_names_out=True)
