"""Data contracts derived from a version accept similar files, fail broken ones and warn about shifted ones."""

import copy
import json
from pathlib import Path

import pandas as pd
import pytest

from core.data import contract as contracts
from core.data import schema
from core.errors import InvalidInput

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_data"


def _read_raw(name: str) -> pd.DataFrame:
    """A table as the readers hand it over: all text, empty cells as None."""
    frame = pd.read_csv(SAMPLE_DIR / name, dtype=str, keep_default_na=False)
    return frame.astype(object).where(frame != "", None)


@pytest.fixture(scope="module")
def labour():
    raw = _read_raw("labour_force.csv")
    types = schema.infer_types(raw)
    canonical = schema.apply_types(raw, types)
    return canonical, {name: kind.value for name, kind in types.items()}


@pytest.fixture(scope="module")
def contract(labour):
    return contracts.derive_contract(*labour)


@pytest.fixture
def batch():
    return _read_raw("labour_force_batch_similar.csv")


def _by_kind(report, kind):
    return {item["column"]: item["message"] for item in report["failures"] + report["warnings"] if item["kind"] == kind}


def test_derived_contract_requires_every_column_and_allows_what_was_seen(contract, labour):
    frame, _ = labour
    json.dumps(contract, allow_nan=False)
    columns = contract["columns"]
    assert list(columns) == list(frame.columns) and all(rule["required"] for rule in columns.values())
    assert columns["region"]["allowed_categories"] == sorted(frame["region"].dropna().unique())
    assert columns["urban"]["allowed_categories"] == ["false", "true"]
    assert columns["person_id"]["allowed_categories"] is None and columns["person_id"]["type"] == "identifier"
    # whole-number ages 16..74 widened by 5 % of the range and rounded outwards
    assert (columns["age"]["min"], columns["age"]["max"]) == (13.0, 77.0)
    assert columns["household_size"]["min"] == 0.0  # never below zero for a column that never was
    observed = frame["hours_usual"].isna().mean()
    assert columns["hours_usual"]["max_missing_share"] == pytest.approx(observed + 0.05, abs=1e-4)
    assert set(contract["reference"]) == set(columns) - {"person_id"}
    assert len(contract["reference"]["age"]["values"]) == contracts.REFERENCE_POINTS
    assert sum(contract["reference"]["region"]["shares"].values()) == pytest.approx(1.0)


def test_a_similar_batch_passes_without_failures_or_drift(contract, batch):
    report = contracts.validate_frame(batch, contract)
    assert report["ok"] is True and report["failures"] == [] and report["warnings"] == []
    assert report["rows"] == 1000 and report["checked_columns"] == list(contract["columns"])
    assert report["extra_columns"] == [] and all(not d["drifted"] for d in report["drift"])
    json.dumps(report, allow_nan=False)


def test_a_drifted_batch_warns_about_shifted_columns(contract):
    report = contracts.validate_frame(_read_raw("labour_force_batch_drifted.csv"), contract)
    drifted = _by_kind(report, "drift")
    assert {"age", "region", "education", "hours_usual"} <= set(drifted)
    assert "sex" not in drifted and "drift score" in drifted["age"]
    # ~20 % empty hours against ~5 % in the reference breaks the missing-share rule
    assert set(_by_kind(report, "missing_share")) == {"hours_usual"} and report["ok"] is False


def test_a_batch_without_a_required_column_fails(contract, batch):
    report = contracts.validate_frame(batch.drop(columns=["region"]), contract)
    assert report["ok"] is False
    assert _by_kind(report, "missing_column") == {"region": "The required column 'region' is not in the file."}
    assert "region" not in report["checked_columns"]


def test_a_renamed_column_is_pointed_out(contract, batch):
    report = contracts.validate_frame(batch.rename(columns={"region": "Region"}), contract)
    assert "The file has 'Region'" in _by_kind(report, "missing_column")["region"]
    assert report["extra_columns"] == ["Region"]


def test_an_unseen_category_fails_with_examples(contract, batch):
    batch = batch.copy()
    batch.loc[:2, "region"] = "Atlantis"
    report = contracts.validate_frame(batch, contract)
    message = _by_kind(report, "unseen_category")["region"]
    assert "3 value(s)" in message and "'Atlantis'" in message and report["ok"] is False


def test_text_in_a_numeric_column_fails_as_retyped(contract, batch):
    batch = batch.copy()
    batch.loc[5, "age"] = "forty"
    report = contracts.validate_frame(batch, contract)
    assert _by_kind(report, "retyped") == {
        "age": "Column 'age' should hold numbers, but 1 value(s) are not (for example 'forty')."}


def test_a_value_out_of_range_fails_with_the_observed_range(contract, batch):
    batch = batch.copy()
    batch.loc[0, "age"] = "130"
    message = _by_kind(contracts.validate_frame(batch, contract), "out_of_range")["age"]
    assert "1 value(s) outside the allowed range (from 13 to 77)" in message and "to 130" in message


def test_an_unknown_yes_no_word_fails_as_retyped(contract, batch):
    batch = batch.copy()
    batch.loc[0, "urban"] = "maybe"
    assert "'maybe'" in _by_kind(contracts.validate_frame(batch, contract), "retyped")["urban"]


def test_extra_columns_are_listed_and_ignored(contract, batch):
    report = contracts.validate_frame(batch.assign(comment="x"), contract)
    assert report["ok"] is True and report["extra_columns"] == ["comment"]
    assert "will be ignored" in _by_kind(report, "extra_column")["comment"]


def test_an_optional_column_may_be_missing(contract, batch):
    relaxed = copy.deepcopy(contract)
    relaxed["columns"]["region"]["required"] = False
    report = contracts.validate_frame(batch.drop(columns=["region"]), relaxed)
    assert report["ok"] is True and "region" in _by_kind(report, "missing_column")


def test_native_types_from_parquet_are_understood(contract):
    native = pd.read_csv(SAMPLE_DIR / "labour_force_batch_similar.csv")  # ints, floats with NaN, text
    native["employed"] = native["employed"] == "yes"
    native["urban"] = (native["urban"] == "yes").astype(int)
    report = contracts.validate_frame(native, contract)
    assert report["failures"] == [] and report["ok"] is True


def test_decimal_commas_are_read_when_the_file_uses_them(contract, batch):
    batch = batch.copy()
    for name in ("hours_usual", "months_since_last_job"):
        batch[name] = batch[name].str.replace(".", ",", regex=False)
    assert contracts.validate_frame(batch, contract, decimal=",")["ok"] is True
    assert "hours_usual" in _by_kind(contracts.validate_frame(batch, contract), "retyped")


def test_an_empty_file_fails(contract, batch):
    report = contracts.validate_frame(batch.iloc[:0], contract)
    assert report["ok"] is False and _by_kind(report, "empty") == {None: "The file has no rows."}


def test_check_contract_refuses_min_above_max(contract):
    edited = copy.deepcopy(contract)
    edited["columns"]["age"].update({"min": 80, "max": 20})
    with pytest.raises(InvalidInput, match=r"Column 'age': 'min' \(80\) is greater than 'max' \(20\)"):
        contracts.check_contract(edited)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("type", "float", "'type' must be one of"),
        ("max_missing_share", 1.5, "'max_missing_share' must be a share between 0 and 1"),
        ("allowed_categories", ["North", 3], "'allowed_categories' must be a list of non-empty texts"),
        ("allowed_categories", [], "empty list"),
        ("required", "yes", "'required' must be true or false"),
        ("min", "ten", "'min' must be a number"),
        ("colour", "red", "unknown field"),
    ],
)
def test_check_contract_names_the_wrong_field(contract, field, value, message):
    edited = copy.deepcopy(contract)
    edited["columns"]["region" if "categories" in field else "age"][field] = value
    with pytest.raises(InvalidInput, match=message):
        contracts.check_contract(edited)


def test_check_contract_fills_in_defaults_and_keeps_matching_references(contract):
    edited = {"columns": {"age": {"type": "numeric", "min": 0}, "region": {"type": "text"}},
              "reference": contract["reference"]}
    checked = contracts.check_contract(edited)
    assert checked["columns"]["age"] == {"type": "numeric", "required": True, "allowed_categories": None,
                                         "min": 0.0, "max": None, "max_missing_share": 1.0}
    # region is now text, so its category shares no longer describe it
    assert set(checked["reference"]) == {"age"}
    with pytest.raises(InvalidInput, match="no columns"):
        contracts.check_contract({"columns": {}})


def test_check_contract_reports_a_damaged_reference_summary(contract):
    edited = copy.deepcopy(contract)
    edited["reference"]["age"]["values"] = ["a lot"]
    with pytest.raises(InvalidInput, match="reference summary of column 'age' is damaged"):
        contracts.check_contract(edited)
