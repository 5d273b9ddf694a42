"""Scoring new data with a registered model: "when predictions are requested, the registry is searched".

Every channel (a file on the Predict page, the one-record form, the REST endpoint, ``steward predict``) goes
through the same steps:

1. find the version: the production version of the named model, or an explicitly chosen approved one;
2. load its model through the verified skops loader (a model file whose hash no longer matches is refused,
   and the refusal is audited);
3. check the input against the model's input schema (the run's ``feature_types``) and the dataset's data
   contract: a missing column is refused by name, extra columns are ignored and listed, values are converted
   to the model's types where that is safe (a value that is not a number in a numeric column is refused),
   categories the model never saw are counted, and the contract's ranges and missing shares give warnings;
4. predict in one vectorised call, with class probabilities, the run's decision threshold for yes/no models and,
   for coding (text) models, "automatic" or "manual" from the run's coding threshold;
5. record a :class:`~core.models.PredictionBatch` (version, input hash, rows, user, time, channel) with the rows
   the model saw and its predictions as a Parquet artifact, for monitoring, and an audit event.

Big files are read with the Data page's reader and limits, and scored in a job (``serving.batch``) so the page
stays responsive. CSV exports neutralise cells that a spreadsheet would run as a formula.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlmodel import Session, col, select

from core import audit, datasets, projects, registry
from core.artifacts import ArtifactStore
from core.auth import OPERATOR, require_role
from core.config import Settings
from core.data import schema
from core.data.reading import ReadOptions, read_path, read_table
from core.data.schema import ColumnType
from core.errors import DomainError, IntegrityFailed, InvalidInput, NotFound
from core.models import (
    DataContractPublic,
    DatasetVersion,
    ModelVersionPublic,
    PredictionBatch,
    PredictionBatchPublic,
    ProjectPublic,
    RegisteredModel,
    Role,
    TrainingRunPublic,
    User,
    UserPublic,
    VersionStatus,
)
from core.training import runs

SCORERS = (Role.builder, Role.admin)
CHANNELS = ("file", "form", "api", "cli")
SCORABLE = (VersionStatus.production, VersionStatus.approved)
PREVIEW_ROWS = 20_000  # the Predict page checks this many rows of an upload before it is scored
SMALL_BATCH = 10_000  # fewer rows than this are predicted on one thread
EXAMPLES = 5
FORMULA_STARTS = "=+-@\t\r"
_FORMULA_START = r"^[=+\-@\t\r]"
_PLAIN_NUMBER = r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$"  # "-5" is a number, not a formula

Progress = Callable[[float, str], None]
ModelLoader = Callable[[TrainingRunPublic], Any]


# ── which version scores ────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ScoringTarget:
    """The version that scores, its training run, its project and the data contract its inputs are checked by."""

    project: ProjectPublic
    version: ModelVersionPublic
    run: TrainingRunPublic
    contract: DataContractPublic | None

    @property
    def label(self) -> str:
        return self.version.label


def scorable_versions(*, session: Session, project_id: int, model_name: str) -> list[ModelVersionPublic]:
    """The versions of a model that may score data: the production version first, then approved ones."""
    found = registry.list_versions(session=session, project_id=project_id, model_name=model_name)
    chosen = [v for v in found if v.status in SCORABLE]
    return sorted(chosen, key=lambda v: (v.status != VersionStatus.production, -v.number))


def _model_names(session: Session, project_id: int) -> list[str]:
    return registry.model_names(session=session, project_id=project_id)


def resolve_target(*, session: Session, project_id: int, model_name: str,
                   version_number: int | None = None) -> ScoringTarget:
    """The version that scores for ``model_name``: its production version, or the approved ``version_number``."""
    project = projects.get_project(session=session, project_id=project_id)
    if project.status != "active":
        raise InvalidInput(f"The project {project.name!r} is archived, so its models do not score data. "
                           "Restore the project first.")
    version = None
    if version_number is None:  # the everyday case (and every REST request) in as few queries as possible
        version = registry.production_version(session=session, project_id=project_id, model_name=model_name)
    if version is None:
        names = _model_names(session, project_id)
        if model_name not in names:
            known = f" Its models: {', '.join(names)}." if names else (
                " It has no registered model yet: register a trained run on the Registry page first.")
            raise NotFound(f"There is no model called {model_name!r} in the project {project.name!r}.{known}")
        versions = registry.list_versions(session=session, project_id=project_id, model_name=model_name)
    if version is None and version_number is None:
        approved = [f"v{v.number}" for v in versions if v.status == VersionStatus.approved]
        alternative = (f" Until then you can choose an approved version to score with ({', '.join(approved)})."
                       if approved else "")
        raise NotFound(
            f"{model_name!r} has no version in production, so there is nothing to score with. A manager or "
            f"administrator promotes an approved version on the Registry page (or with `steward promote "
            f"{model_name} VERSION`).{alternative}")
    if version is None:
        version = next((v for v in versions if v.number == version_number), None)
        if version is None:
            raise NotFound(f"{model_name!r} has no version {version_number}. It has versions "
                           f"{', '.join(str(v.number) for v in sorted(versions, key=lambda v: v.number))}.")
        if version.status not in SCORABLE:
            raise InvalidInput(f"{version.label} is {version.status.replace('_', ' ')}; only the production version "
                               "or an approved version can score data.")
    run = runs.get_run(session=session, run_id=version.run_id)
    dataset_id = session.get(DatasetVersion, run.dataset_version_id).dataset_id
    contract = datasets.latest_contract(session=session, dataset_id=dataset_id)
    return ScoringTarget(project=project, version=version, run=run, contract=contract)


def find_project_for_model(*, session: Session, model_name: str, project: str | None = None) -> ProjectPublic:
    """The project named (by name or id), or else the one project that has a model called ``model_name``."""
    if project is not None and str(project).strip():
        text = str(project).strip()
        if text.isdigit():
            try:
                return projects.get_project(session=session, project_id=int(text))
            except DomainError:
                pass  # a project may be called "2024"
        return projects.get_project_by_name(session=session, name=text)
    owners = sorted(set(session.exec(select(RegisteredModel.project_id)
                                     .where(RegisteredModel.name == model_name)).all()))
    if not owners:
        raise NotFound(f"There is no model called {model_name!r} in any project.")
    if len(owners) > 1:
        names = [projects.get_project(session=session, project_id=pid).name for pid in owners]
        raise InvalidInput(f"Several projects have a model called {model_name!r} ({', '.join(names)}). "
                           "Say which project.")
    return projects.get_project(session=session, project_id=owners[0])


def input_schema(run: TrainingRunPublic) -> list[dict[str, str]]:
    """The columns a model needs, with their types, in order."""
    return [{"name": name, "type": str(kind)} for name, kind in run.feature_types.items()]


# ── loading the model ───────────────────────────────────────────────────────────────────────────────


def _default_loader(settings: Settings) -> ModelLoader:
    return lambda run: runs.load_run_model(settings=settings, run=run)


def load_model(*, session: Session, actor: UserPublic | None, target: ScoringTarget, loader: ModelLoader):
    """The version's model, loaded only after its hash and types are checked; a refusal is audited."""
    try:
        return loader(target.run)
    except IntegrityFailed as error:
        session.rollback()
        audit.record_event(session, actor=actor, action="model.integrity_failed", entity_type="model_version",
                           entity_id=target.version.id,
                           details={"model": target.version.model_name, "number": target.version.number,
                                    "model_sha256": target.run.model_sha256, "error": str(error)})
        session.commit()
        raise IntegrityFailed(
            f"{target.label} was not used: its model file no longer matches the fingerprint recorded when it was "
            f"trained, or contains code Steward does not trust. Nothing was scored. Ask an administrator to "
            f"restore the file from a backup (details: {error})") from None
    except NotFound as error:
        raise NotFound(f"{target.label} cannot score: {error}") from None


# ── checking the input ──────────────────────────────────────────────────────────────────────────────


@dataclass
class CheckedInput:
    """The model's input columns in canonical form, and what the check found."""

    frame: pd.DataFrame
    report: dict[str, Any] = field(default_factory=dict)


def _fast_numbers(series: pd.Series, decimal: str) -> pd.Series:
    """Numbers from a column; text is parsed by Arrow when every cell is a plain number, else by the Data page rules."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.astype("float64")
    if decimal == "." and (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)):
        try:
            parsed = pc.cast(pa.array(series, type=pa.string(), from_pandas=True), pa.float64())
            return pd.Series(parsed.to_numpy(zero_copy_only=False), index=series.index, dtype="float64")
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass  # a blank, a thousands separator, a word: the slower rules decide, cell by cell
    return schema.to_number(series, decimal)


def _labels(series: pd.Series) -> pd.Series:
    """Text cells as the Data page stores them (stripped, blank is missing), worked out once per distinct value.

    The result is categorical: to the model's own column preparation it is the same text, and a million rows of
    a few hundred labels are converted, compared and stored without a string operation per row.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    text = pd.Series(uniques, dtype=object).map(lambda v: str(v).strip())
    text = text.where(text != "", None)
    # Labels that differ only by surrounding spaces become one category; blanks become missing.
    final_codes, categories = pd.factorize(text, use_na_sentinel=True)
    mapped = np.where(codes >= 0, final_codes[np.maximum(codes, 0)] if len(final_codes) else -1, -1)
    return pd.Series(pd.Categorical.from_codes(mapped, categories=pd.Index(categories, dtype=object)),
                     index=series.index)


def _boolean_numbers(series: pd.Series) -> pd.Series:
    """1/0 from a Parquet or JSON number column mean yes/no, as "1"/"0" do in a CSV; other numbers do not."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.map({0: "0", 1: "1"}, na_action="ignore").astype(object)
    return series


def _unconverted(original: pd.Series, converted: pd.Series) -> pd.Series:
    """Cells that held a value but did not convert (blank text counts as missing, not as wrong)."""
    suspect = converted.isna().to_numpy() & original.notna().to_numpy()
    if suspect.any():
        text = original[suspect].astype("string").str.strip()
        suspect[suspect] = (text != "").fillna(False).to_numpy(dtype=bool)
    return pd.Series(suspect, index=original.index)


_WHAT = {ColumnType.numeric: "numbers", ColumnType.boolean: "yes/no values", ColumnType.datetime: "dates"}


def _known_categories(model, feature_types: dict[str, str]) -> dict[str, set[str]]:
    """The categories each categorical column had in training, read from the model's own one-hot encoder."""
    try:
        preprocess = model.named_steps["preprocess"]
        for name, transformer, columns in preprocess.transformers_:
            if name == "categorical":
                encoder = transformer.named_steps["one_hot"]
                return {str(column): {str(c) for c in categories if str(c) != "(missing)"}
                        for column, categories in zip(columns, encoder.categories_, strict=True)
                        if column in feature_types}
    except (AttributeError, KeyError, TypeError, ValueError):
        pass  # a model without Steward's preprocessing: the contract's categories are used instead
    return {}


def _outside(values: pd.Series, allowed: set[str]) -> pd.Series:
    """Cells holding a category not in ``allowed`` (booleans compared as "true"/"false")."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        foreign = [position for position, label in enumerate(values.cat.categories) if str(label) not in allowed]
        return pd.Series(np.isin(values.cat.codes.to_numpy(), foreign), index=values.index)
    text = values.astype("string").str.lower() if pd.api.types.is_bool_dtype(values) else values.astype("string")
    return (text.notna() & ~text.isin(list(allowed))).fillna(False).astype(bool)


def check_input(frame: pd.DataFrame, *, run: TrainingRunPublic, model=None, contract: DataContractPublic | None = None,
                decimal: str = ".", what: str = "The file") -> CheckedInput:
    """Check a table (as read from a file, or made from JSON records) against a model's inputs and the contract.

    Refuses, naming them, missing columns and values that cannot be converted to the column's type; returns the
    canonical input columns and a report of extra columns, unseen categories, missing values and contract
    warnings.
    """
    names = [str(c) for c in frame.columns]
    features = dict(run.feature_types)
    if len(frame) == 0:
        raise InvalidInput("There are no rows to score. Give at least one row under the header.")
    missing = [name for name in features if name not in names]
    if missing:
        lowered = {n.lower(): n for n in names}
        near = [f"{lowered[m.lower()]!r} (should be {m!r})" for m in missing if m.lower() in lowered]
        hint = f" Column names must match exactly: the file has {', '.join(near)}." if near else ""
        raise InvalidInput(
            f"{what} lacks {len(missing)} column{'s' * (len(missing) != 1)} the model needs: "
            f"{', '.join(missing)}.{hint} The model needs: {', '.join(features)}.")
    extra = [name for name in dict.fromkeys(names) if name not in features]
    rules = (contract.content.get("columns", {}) if contract is not None else {})
    known = _known_categories(model, features) if model is not None else {}

    # Numbers and text one by one (fast paths for what files hold: plain numbers, repeated labels); every other
    # type in one call of the Data page's rules.
    converted: dict[str, pd.Series] = {}
    for name, kind in features.items():
        if kind == ColumnType.numeric:
            converted[name] = _fast_numbers(frame[name], decimal)
        elif kind in (ColumnType.categorical, ColumnType.text) and pd.api.types.is_object_dtype(frame[name]):
            converted[name] = _labels(frame[name])
    others = {name: kind for name, kind in features.items() if name not in converted}
    if others:
        prepared = pd.DataFrame({name: _boolean_numbers(frame[name]) if kind == ColumnType.boolean else frame[name]
                                 for name, kind in others.items()}, index=frame.index)
        converted.update(schema.apply_types(prepared, others, decimal).items())
    problems: list[str] = []
    for name, kind in features.items():
        if ColumnType(kind) in _WHAT:
            original = frame[name]
            wrong = _unconverted(original, converted[name])
            count = int(wrong.sum())
            if count:
                example = str(original[wrong].iloc[0])
                problems.append(f"column {name!r} should hold {_WHAT[ColumnType(kind)]}, but {count:,} "
                                f"value{'s are' if count != 1 else ' is'} not (for example {example!r})")
    if problems:
        raise InvalidInput("Some values do not fit the model's input types: " + "; ".join(problems)
                           + ". Fix these values (or leave the cells empty: the model handles missing values) and "
                             "score again.")
    inputs = pd.DataFrame({name: converted[name] for name in features}, index=frame.index)

    unseen: dict[str, dict[str, Any]] = {}
    missing_values: dict[str, int] = {}
    warnings: list[str] = []
    for name, kind in features.items():
        values = inputs[name]
        empty = int(values.isna().sum())  # blank text is missing too, already
        if empty:
            missing_values[name] = empty
        rule = rules.get(name) or {}
        if ColumnType(kind) in (ColumnType.categorical, ColumnType.boolean):
            allowed = known.get(name) or (set(map(str, rule["allowed_categories"]))
                                          if rule.get("allowed_categories") else None)
            if allowed:
                outside = _outside(values, allowed)
                count = int(outside.sum())
                if count:
                    found = values[outside]
                    examples = (found.astype(object) if isinstance(found.dtype, pd.CategoricalDtype) else found
                                ).value_counts().index[:EXAMPLES].tolist()
                    unseen[name] = {"count": count, "examples": [str(e).lower() if isinstance(e, bool | np.bool_)
                                                                 else str(e) for e in examples]}
        if rule and ColumnType(kind) is ColumnType.numeric and (rule.get("min") is not None
                                                                or rule.get("max") is not None):
            low, high = rule.get("min"), rule.get("max")
            numbers = values.to_numpy(dtype="float64", na_value=np.nan)
            outside = np.zeros(len(numbers), dtype=bool)
            if low is not None:
                outside |= numbers < low
            if high is not None:
                outside |= numbers > high
            if outside.any():
                allowed = (f"from {low:g} to {high:g}" if low is not None and high is not None
                           else f"at least {low:g}" if low is not None else f"at most {high:g}")
                warnings.append(f"Column {name!r} has {int(outside.sum()):,} value(s) outside the range the data "
                                f"contract allows ({allowed}); the model has seen few or no such values, so treat "
                                "those predictions with care.")
        limit = rule.get("max_missing_share")
        if limit is not None and len(values) and empty / len(values) > float(limit) + 1e-9:
            warnings.append(f"Column {name!r} is empty in {empty / len(values):.1%} of rows; the data contract "
                            f"allows at most {float(limit):.1%}. The model fills them in, but the predictions "
                            "rest on less information.")
    for name, found in unseen.items():
        warnings.append(f"Column {name!r} has {found['count']:,} value(s) in categories the model never saw in "
                        f"training ({', '.join(map(repr, found['examples']))}); the model treats them as a rare "
                        "category.")
    report = {"rows": int(len(frame)), "columns_used": list(features), "extra_columns": extra,
              "unseen_categories": unseen, "missing_values": missing_values, "warnings": warnings,
              "contract_number": contract.number if contract is not None else None}
    return CheckedInput(frame=inputs, report=report)


# ── predicting ──────────────────────────────────────────────────────────────────────────────────────


def prediction_columns(run: TrainingRunPublic) -> dict[str, str]:
    """How the prediction columns are named in exports: ``predicted_<target>``, ``probability_<class>``, ``coding``."""
    names = {"__predicted__": f"predicted_{run.target}"}
    for label in run.classes or []:
        names[f"__proba__{label}"] = f"probability_{label}"
    if run.task == "text":
        names["__coding__"] = "coding"
    return names


@lru_cache(maxsize=1)
def _thread_pools():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def predict(model, inputs: pd.DataFrame, run: TrainingRunPublic) -> pd.DataFrame:
    """Predictions for canonical inputs, named as in a run's test set (``__predicted__``, ``__proba__<class>``)."""
    if len(inputs) < SMALL_BATCH:
        # A tree model opens an OpenMP parallel region per tree; for a few rows starting the second thread costs
        # far more than it saves (and much more on a busy machine), so small batches use one thread.
        with _thread_pools().limit(limits=1, user_api="openmp"):
            return _predict(model, inputs, run)
    return _predict(model, inputs, run)


def _predict(model, inputs: pd.DataFrame, run: TrainingRunPublic) -> pd.DataFrame:
    if run.task == "regression":
        return pd.DataFrame({"__predicted__": np.asarray(model.predict(inputs), dtype="float64")}, index=inputs.index)
    proba = np.asarray(model.predict_proba(inputs), dtype="float64")
    classes = np.asarray([str(c) for c in model.classes_], dtype=object)
    if run.task == "binary":
        threshold = run.decision_threshold if run.decision_threshold is not None else 0.5
        predicted = np.where(proba[:, 1] >= threshold, classes[1], classes[0])
    else:
        predicted = classes[proba.argmax(axis=1)]
    out = {"__predicted__": predicted}
    for position, label in enumerate(classes):
        out[f"__proba__{label}"] = proba[:, position]
    if run.task == "text":
        confidence = proba.max(axis=1)
        threshold = run.coding_threshold
        out["__coding__"] = (np.where(confidence >= threshold, "automatic", "manual") if threshold is not None
                             else np.full(len(inputs), "manual", dtype=object))
    return pd.DataFrame(out, index=inputs.index)


def _prediction_summary(predicted: pd.DataFrame, run: TrainingRunPublic) -> dict[str, Any]:
    if run.task == "regression":
        values = predicted["__predicted__"]
        return {"mean": float(values.mean()), "min": float(values.min()), "max": float(values.max())}
    counts = predicted["__predicted__"].value_counts()
    summary: dict[str, Any] = {"classes": {str(k): int(v) for k, v in counts.items()}}
    if "__coding__" in predicted:
        coding = predicted["__coding__"].value_counts()
        summary["automatic"] = int(coding.get("automatic", 0))
        summary["manual"] = int(coding.get("manual", 0))
    return summary


def export_frame(raw: pd.DataFrame, predicted: pd.DataFrame, run: TrainingRunPublic) -> tuple[pd.DataFrame, list[str]]:
    """The user's columns as given, then the predictions; returns the columns of the input they replace."""
    names = prediction_columns(run)
    renamed = predicted.rename(columns=names)
    replaced = [c for c in raw.columns if str(c) in renamed.columns]
    kept = raw.drop(columns=replaced) if replaced else raw
    out = pd.concat([kept.reset_index(drop=True), renamed.reset_index(drop=True)], axis=1)
    return out, [str(c) for c in replaced]


# ── exports ─────────────────────────────────────────────────────────────────────────────────────────


def _risky(text: str) -> bool:
    return text[:1] != "" and text[0] in FORMULA_STARTS and re.fullmatch(_PLAIN_NUMBER, text) is None


def _neutralise(table: pa.Table) -> pa.Table:
    """Prefix an apostrophe to text cells (and column names) a spreadsheet would run as a formula."""
    table = table.rename_columns([f"'{name}" if _risky(name) else name for name in table.column_names])
    for index, field_ in enumerate(table.schema):
        if not (pa.types.is_string(field_.type) or pa.types.is_large_string(field_.type)):
            continue
        column = table.column(index)
        risky = pc.and_(pc.match_substring_regex(column, _FORMULA_START),
                        pc.invert(pc.match_substring_regex(column, _PLAIN_NUMBER)))
        if pc.any(risky).as_py():
            fixed = pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)
            table = table.set_column(index, field_.name, fixed)
    return table


def _arrow(frame: pd.DataFrame) -> pa.Table:
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Columns mixing numbers and text (JSON records, hand-made Parquet): written as text.
        return pa.Table.from_pandas(frame.astype({c: "string" for c in frame.columns
                                                  if pd.api.types.is_object_dtype(frame[c])}), preserve_index=False)


def write_csv(frame: pd.DataFrame, destination) -> None:
    """Write predictions as UTF-8 CSV, formula-like cells neutralised; ``destination`` is a path or a binary file."""
    import pyarrow.csv as pacsv

    table = _neutralise(_arrow(frame))
    pacsv.write_csv(table, str(destination) if isinstance(destination, Path) else destination)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    write_csv(frame, buffer)
    return buffer.getvalue()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(_arrow(frame), buffer)
    return buffer.getvalue()


def write_export(frame: pd.DataFrame, path: Path) -> str:
    """Write an export to ``path`` as CSV or Parquet, by its extension; returns the format."""
    suffix = Path(path).suffix.lower()
    if suffix in (".parquet", ".pq"):
        path.write_bytes(parquet_bytes(frame))
        return "parquet"
    if suffix not in (".csv", ".txt"):
        given = suffix or "files without an extension"
        raise InvalidInput(f"Steward writes predictions as .csv or .parquet files, not {given}. "
                           "Name the output file e.g. predictions.csv.")
    write_csv(frame, Path(path))
    return "csv"


# ── scoring and recording ───────────────────────────────────────────────────────────────────────────


@dataclass
class ScoringResult:
    batch: PredictionBatchPublic
    output: pd.DataFrame  # the user's columns and the predictions
    report: dict[str, Any]


def _name_of(session: Session, user_id: int | None) -> str:
    if user_id is None:
        return OPERATOR.label
    user = session.get(User, user_id)
    return (user.display_name or user.username) if user else f"user {user_id}"


def _public(session: Session, batch: PredictionBatch, version: ModelVersionPublic | None = None,
            actor: UserPublic | None = None) -> PredictionBatchPublic:
    version = version or registry.get_version(session=session, version_id=batch.version_id)
    by = actor.label if actor is not None and (actor.id or None) == batch.created_by_id else _name_of(
        session, batch.created_by_id)
    return PredictionBatchPublic(**batch.model_dump(), model_name=version.model_name,
                                 version_number=version.number, created_by_name=by)


def _forget_artifacts(session: Session, store: ArtifactStore, hashes: list[str]) -> None:
    """Remove files written for a batch that was not recorded, unless another batch uses the same content."""
    for sha256 in hashes:
        used = session.exec(select(PredictionBatch.id).where(
            (PredictionBatch.output_sha256 == sha256) | (PredictionBatch.input_sha256 == sha256))).first()
        if used is None and store.exists(sha256):
            store.path_for(sha256).unlink(missing_ok=True)


def score_frame(*, session: Session, settings: Settings, actor: UserPublic, target: ScoringTarget, frame: pd.DataFrame,
                channel: str, source: str, input_sha256: str, decimal: str = ".", model=None,
                loader: ModelLoader | None = None, keep_export: bool = False,
                progress: Progress | None = None, monitor: bool = True) -> ScoringResult:
    """Check, predict and record one batch; the rows the model saw and its predictions are kept for monitoring.

    ``monitor=False`` leaves the batch's monitoring report to the caller (the REST endpoint starts it once the
    answer has been sent, so a client never waits for it).

    ``model`` is the loaded model when the caller already has it (``load_model``); ``keep_export`` also stores the
    user-facing table (their columns and the predictions) so it can be downloaded later.
    """
    require_role(actor, *SCORERS)
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    report_progress = progress or (lambda _fraction, _message: None)
    started = time.perf_counter()
    if model is None:
        model = load_model(session=session, actor=actor, target=target, loader=loader or _default_loader(settings))
    report_progress(0.3, f"Checking {len(frame):,} rows against the model's inputs")
    checked = check_input(frame, run=target.run, model=model, contract=target.contract, decimal=decimal,
                          what="The file" if channel in ("file", "cli") else "The record" if len(frame) == 1
                          else "The records")
    report_progress(0.45, f"Scoring {len(frame):,} rows with {target.label}")
    predicted = predict(model, checked.frame, target.run)
    output, replaced = export_frame(frame, predicted, target.run)
    report = dict(checked.report)
    if replaced:
        report["warnings"] = [*report["warnings"], f"The file's column(s) {', '.join(replaced)} were replaced by the "
                                                   "new predictions."]
    report["replaced_columns"] = replaced

    report_progress(0.7, "Storing the batch for monitoring")
    store = ArtifactStore(settings.artifacts_path)
    rows = pd.concat([checked.frame.reset_index(drop=True), predicted.reset_index(drop=True)], axis=1)
    written: list[str] = []
    try:
        rows_artifact = store.put_bytes(parquet_bytes(rows))
        written.append(rows_artifact.sha256)
        export_sha256 = None
        if keep_export:
            export_sha256 = store.put_bytes(parquet_bytes(output)).sha256
            written.append(export_sha256)
        run = target.run
        summary = {
            "model": target.version.model_name, "version_number": target.version.number, "run_id": run.id,
            "task": run.task, "target": run.target, "model_sha256": run.model_sha256,
            "decision_threshold": run.decision_threshold if run.task == "binary" else None,
            "coding_threshold": run.coding_threshold if run.task == "text" else None,
            "check": report, "predictions": _prediction_summary(predicted, run),
            "prediction_columns": list(prediction_columns(run).values()),
            "export_sha256": export_sha256, "seconds": round(time.perf_counter() - started, 3),
        }
        batch = PredictionBatch(project_id=target.project.id, version_id=target.version.id, channel=channel,
                                source=(source or "")[:255], input_sha256=input_sha256, rows=int(len(frame)),
                                output_sha256=rows_artifact.sha256,
                                summary=json.loads(json.dumps(summary, default=str)),
                                created_by_id=actor.id or None)
        session.add(batch)
        session.flush()
        audit.record_event(session, actor=actor, action="prediction.batch", entity_type="prediction_batch",
                           entity_id=batch.id, details={"model": target.version.model_name,
                                                        "version": target.version.number, "channel": channel,
                                                        "rows": batch.rows, "input_sha256": input_sha256,
                                                        "source": batch.source})
        session.commit()
    except BaseException:
        session.rollback()
        _forget_artifacts(session, store, written)
        raise
    if monitor:
        from core import monitoring  # the batch's drift report is a job of its own; it never makes scoring fail

        report_progress(0.9, "Comparing the batch with the training data (monitoring)")
        monitoring.batch_stored(session=session, settings=settings, actor=actor, batch_id=batch.id)
    report_progress(1.0, "Done")
    return ScoringResult(batch=_public(session, batch, target.version, actor), output=output, report=report)


def _read(settings: Settings, filename: str, data: bytes | None, path: Path | None, options: ReadOptions,
          nrows: int | None = None):
    options = ReadOptions(encoding=options.encoding, delimiter=options.delimiter, sheet=options.sheet, nrows=nrows)
    if path is not None:
        return read_path(path, filename, limits=datasets.limits(settings), options=options)
    return read_table(data, filename, limits=datasets.limits(settings), options=options)


def _file_hash(data: bytes | None, path: Path | None) -> str:
    if data is not None:
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def score_file(*, session: Session, settings: Settings, actor: UserPublic, project_id: int, model_name: str,
               filename: str, data: bytes | None = None, path: Path | None = None, version_number: int | None = None,
               options: ReadOptions = ReadOptions(), channel: str = "file", loader: ModelLoader | None = None,
               keep_export: bool = False, progress: Progress | None = None) -> ScoringResult:
    """Score a whole file (bytes or a path on disk) with the model's production or chosen approved version."""
    require_role(actor, *SCORERS)
    report_progress = progress or (lambda _fraction, _message: None)
    target = resolve_target(session=session, project_id=project_id, model_name=model_name,
                            version_number=version_number)
    model = load_model(session=session, actor=actor, target=target, loader=loader or _default_loader(settings))
    report_progress(0.05, f"Reading {Path(filename).name}")
    raw = _read(settings, filename, data, path, options)
    return score_frame(session=session, settings=settings, actor=actor, target=target, frame=raw.frame,
                       channel=channel, source=Path(filename).name, input_sha256=_file_hash(data, path),
                       decimal=raw.decimal, model=model, keep_export=keep_export, progress=progress)


def check_file(*, session: Session, settings: Settings, actor: UserPublic, project_id: int, model_name: str,
               filename: str, data: bytes, version_number: int | None = None, options: ReadOptions = ReadOptions(),
               loader: ModelLoader | None = None) -> dict[str, Any]:
    """Check the first rows of an upload before it is scored (nothing is stored); refusals raise as in scoring."""
    require_role(actor, *SCORERS)
    target = resolve_target(session=session, project_id=project_id, model_name=model_name,
                            version_number=version_number)
    model = load_model(session=session, actor=actor, target=target, loader=loader or _default_loader(settings))
    raw = _read(settings, filename, data, None, options, nrows=PREVIEW_ROWS)
    checked = check_input(raw.frame, run=target.run, model=model, contract=target.contract, decimal=raw.decimal)
    return {**checked.report, "complete": raw.total_rows is not None, "notes": list(raw.notes),
            "filename": Path(filename).name, "version": target.label}


class TooManyRecords(InvalidInput):
    """More records in one request than the setting allows."""


def workbook_sheets(*, settings: Settings, filename: str, data: bytes) -> list[str]:
    """The sheets of an Excel upload (empty for other files, or when it cannot be read)."""
    if Path(filename).suffix.lower() != ".xlsx":
        return []
    try:
        return list(_read(settings, filename, data, None, ReadOptions(), nrows=1).sheets)
    except DomainError:
        return []


def records_frame(records: Any, *, max_records: int) -> pd.DataFrame:
    """JSON records (a list of objects with single values) as a table; refuses anything else in plain words."""
    if isinstance(records, dict) and "records" in records:
        records = records["records"]
    if not isinstance(records, list):
        raise InvalidInput('Send a JSON list of records, e.g. [{"age": 42, "region": "North"}], '
                           'or {"records": [...]}.')
    if not records:
        raise InvalidInput("The list of records is empty. Send at least one record.")
    if len(records) > max_records:
        raise TooManyRecords(f"{len(records):,} records is more than the {max_records:,} one request may score. "
                             "Split them into smaller requests, or score them as a file on the Predict page.")
    for position, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise InvalidInput(f"Record {position} is not an object of column names and values.")
        for name, value in record.items():
            if isinstance(value, dict | list):
                raise InvalidInput(f"Record {position}: {name!r} holds a list or object; give a single value "
                                   "(a number, text, true/false or null).")
    return pd.DataFrame.from_records(records)


def score_records(*, session: Session, settings: Settings, actor: UserPublic, project_id: int, model_name: str,
                  records: Any, version_number: int | None = None, channel: str = "api", source: str = "",
                  loader: ModelLoader | None = None, monitor: bool = True) -> ScoringResult:
    """Score JSON-like records (the REST endpoint, the one-record form)."""
    require_role(actor, *SCORERS)
    frame = records_frame(records, max_records=settings.api_max_records)
    target = resolve_target(session=session, project_id=project_id, model_name=model_name,
                            version_number=version_number)
    digest = hashlib.sha256(json.dumps(records, sort_keys=True, default=str).encode()).hexdigest()
    return score_frame(session=session, settings=settings, actor=actor, target=target, frame=frame, channel=channel,
                       source=source, input_sha256=digest, loader=loader, monitor=monitor)


def public_predictions(result: ScoringResult) -> list[dict[str, Any]]:
    """Each record's prediction, probabilities and coding flag, as plain JSON values."""
    summary = result.batch.summary
    names = summary["prediction_columns"]
    predicted_name = names[0]
    rows = []
    frame = result.output
    probability_names = [n for n in names if n.startswith("probability_")]
    for index in range(len(frame)):
        value = frame[predicted_name].iat[index]
        row: dict[str, Any] = {"prediction": value.item() if hasattr(value, "item") else value}
        if probability_names:
            row["probabilities"] = {n.removeprefix("probability_"): float(frame[n].iat[index])
                                    for n in probability_names}
        if "coding" in names:
            row["coding"] = str(frame["coding"].iat[index])
        rows.append(row)
    return rows


# ── the job for big files ───────────────────────────────────────────────────────────────────────────


def start_batch(*, session: Session, settings: Settings, runner, actor: UserPublic, project_id: int,
                model_name: str, filename: str, data: bytes, version_number: int | None = None,
                options: ReadOptions = ReadOptions()):
    """Score an uploaded file in a job (``serving.batch``): big files take a while to read, score and store."""
    from dataclasses import asdict

    from core import jobs

    require_role(actor, *SCORERS)
    target = resolve_target(session=session, project_id=project_id, model_name=model_name,
                            version_number=version_number)
    if len(data) > settings.max_upload_bytes:
        raise InvalidInput(f"The file is {len(data) / 1e6:.1f} MB; the limit is {settings.max_upload_mb} MB.")
    staging = settings.home / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    path = staging / f"{uuid.uuid4().hex}{Path(filename).suffix.lower()}"
    path.write_bytes(data)
    params = {"project_id": project_id, "model_name": model_name, "version_number": target.version.number,
              "path": str(path), "filename": Path(filename).name, "options": asdict(options)}
    try:
        job = jobs.create_job(session=session, actor=actor, kind="serving.batch", params=params,
                              title=f"Scoring {Path(filename).name} with {target.label}", project_id=project_id)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    runner.start(job.id)
    return job


def batch_job(ctx) -> dict[str, Any]:
    """Job ``serving.batch``: score the staged file and keep its export; the staged copy is always removed."""
    from core.config import get_settings

    params = ctx.params
    path = Path(params["path"])
    try:
        with ctx.session() as session:
            result = score_file(session=session, settings=get_settings(), actor=ctx.actor,
                                project_id=params["project_id"], model_name=params["model_name"],
                                version_number=params["version_number"], filename=params["filename"], path=path,
                                options=ReadOptions(**params["options"]), channel="file", keep_export=True,
                                progress=ctx.progress)
        return {"batch_id": result.batch.id, "rows": result.batch.rows}
    finally:
        path.unlink(missing_ok=True)


# ── reading batches back ────────────────────────────────────────────────────────────────────────────


def get_batch(*, session: Session, batch_id: int) -> PredictionBatchPublic:
    batch = session.get(PredictionBatch, batch_id)
    if batch is None:
        raise NotFound(f"There is no prediction batch {batch_id}.")
    return _public(session, batch)


def list_batches(*, session: Session, project_id: int, limit: int = 50) -> list[PredictionBatchPublic]:
    """The newest prediction batches of a project."""
    query = (select(PredictionBatch).where(PredictionBatch.project_id == project_id)
             .order_by(col(PredictionBatch.id).desc()).limit(limit))
    return [_public(session, batch) for batch in session.exec(query)]


def load_export(*, settings: Settings, batch: PredictionBatchPublic) -> pd.DataFrame:
    """A batch's stored export (the user's columns and the predictions), after its hash is checked."""
    sha256 = batch.summary.get("export_sha256")
    if not sha256:
        raise NotFound(f"Batch {batch.id} came through the {batch.channel} channel; its predictions were returned "
                       "then and are not kept for download.")
    return pd.read_parquet(ArtifactStore(settings.artifacts_path).verified_path(sha256))


def load_rows(*, settings: Settings, batch: PredictionBatchPublic) -> pd.DataFrame:
    """The rows the model saw and its predictions (for monitoring), after the hash is checked.

    Text columns come back as pandas' string type, as a dataset version's canonical frame has them (they are
    stored dictionary-encoded, which keeps big batches small and quick to write).
    """
    rows = pd.read_parquet(ArtifactStore(settings.artifacts_path).verified_path(batch.output_sha256))
    for name in rows.columns:
        if isinstance(rows[name].dtype, pd.CategoricalDtype):
            rows[name] = rows[name].astype("string")
    return rows
