"""Dataset profiles, drift scores and version comparisons give the numbers and warnings a user relies on."""

import json

import numpy as np
import pandas as pd
import pytest

from core.data import profile
from core.errors import InvalidInput


def _strings(values):
    return pd.Series(values, dtype="string")


def _as_json(result):
    """The result survives the JSON column it is stored in: no numpy types, no NaN."""
    return json.loads(json.dumps(result, allow_nan=False))


@pytest.fixture
def small():
    frame = pd.DataFrame({
        "income": [1200.0, 950.5, np.nan, 3100.0, 2500.0, 950.5, 1800.0, np.nan, 4200.0, 2750.0],
        "region": _strings(["North", "South", "North", None, "East", "North", "South", "North", "East", "West"]),
        "urban": pd.Series([True, False, True, True, None, False, True, True, False, True], dtype="boolean"),
        "note": _strings(["works in the city", "part time job", None, "night shifts at the hospital",
                          "teaching", "driving a taxi", "cleaning offices in town", None, "cook", "cook"]),
        "joined": pd.to_datetime(["2023-01-05", "2023-01-20", "2023-02-11", None, "2023-04-30", "2023-04-01",
                                  "2023-02-02", "2023-01-15", "2023-03-03", "2023-04-04"]),
    })
    types = {"income": "numeric", "region": "categorical", "urban": "boolean", "note": "text", "joined": "datetime"}
    return frame, types


def test_numeric_profile_equals_pandas_own_statistics(small):
    frame, types = small
    income = _as_json(profile.profile_frame(frame, types))["columns_profile"]["income"]
    expected = frame["income"]
    assert income["min"] == expected.min() and income["max"] == expected.max()
    assert income["mean"] == pytest.approx(expected.mean())
    assert income["std"] == pytest.approx(expected.std())
    for name, q in profile.QUANTILES.items():
        assert income["quantiles"][name] == pytest.approx(expected.quantile(q))
    assert income["missing_share"] == pytest.approx(0.2)
    assert income["distinct"] == expected.nunique() == 7
    assert sum(income["histogram"]["counts"]) == 8
    assert len(income["histogram"]["edges"]) == len(income["histogram"]["counts"]) + 1 == profile.HISTOGRAM_BINS + 1
    assert income["histogram"]["edges"][0] == 950.5 and income["histogram"]["edges"][-1] == 4200.0


def test_category_profile_counts_match_value_counts(small):
    frame, types = small
    result = _as_json(profile.profile_frame(frame, types))
    region, urban = result["columns_profile"]["region"], result["columns_profile"]["urban"]
    counted = {item["value"]: item["count"] for item in region["top_categories"]}
    assert counted == frame["region"].value_counts().to_dict()
    assert region["top_categories"][0] == {"value": "North", "count": 4}
    assert region["other_count"] == 0 and region["distinct"] == 4 and region["missing_share"] == pytest.approx(0.1)
    assert urban["top_categories"] == [{"value": "true", "count": 6}, {"value": "false", "count": 3}]
    assert result["rows"] == 10 and result["columns"] == 5 and result["duplicate_rows"] == 0


def test_categories_beyond_the_top_twenty_are_counted_as_other():
    values = _strings([f"c{i:02d}" for i in range(25) for _ in range(i + 1)])
    column = profile.profile_frame(pd.DataFrame({"code": values}), {"code": "categorical"})["columns_profile"]["code"]
    assert [item["value"] for item in column["top_categories"]][:2] == ["c24", "c23"]
    assert len(column["top_categories"]) == 20
    assert column["other_count"] == sum(range(1, 6))  # c00..c04 hold 1..5 rows


def test_text_profile_counts_words_and_characters(small):
    frame, types = small
    note = profile.profile_frame(frame, types)["columns_profile"]["note"]
    present = frame["note"].dropna()
    assert note["mean_chars"] == pytest.approx(present.str.len().mean())
    assert note["max_chars"] == present.str.len().max()
    assert note["max_words"] == 5 and note["mean_words"] == pytest.approx(present.str.split().str.len().mean())
    assert note["top_words"][0] == {"value": "cook", "count": 2}
    assert "the" not in [item["value"] for item in note["top_words"]]


def test_datetime_profile_gives_iso_range_and_monthly_bars(small):
    frame, types = small
    joined = _as_json(profile.profile_frame(frame, types))["columns_profile"]["joined"]
    assert joined["min"] == "2023-01-05T00:00:00" and joined["max"] == "2023-04-30T00:00:00"
    assert joined["histogram"]["unit"] == "month"
    assert joined["histogram"]["edges"][0] == "2023-01-01T00:00:00"
    assert joined["histogram"]["counts"] == [3, 2, 1, 3]


def test_long_date_ranges_use_equal_bins():
    dates = pd.Series(pd.date_range("1990-01-01", "2020-01-01", periods=100))
    joined = profile.profile_frame(pd.DataFrame({"d": dates}), {"d": "datetime"})["columns_profile"]["d"]
    assert joined["histogram"]["unit"] == "equal bins"
    assert len(joined["histogram"]["counts"]) == profile.HISTOGRAM_BINS and sum(joined["histogram"]["counts"]) == 100


def test_whole_numbers_get_one_bar_per_value_when_the_range_is_small():
    frame = pd.DataFrame({"rooms": [1.0, 2.0, 2.0, 3.0, 5.0]})
    rooms = profile.profile_frame(frame, {"rooms": "numeric"})["columns_profile"]["rooms"]
    assert rooms["histogram"] == {"edges": [0.5, 1.5, 2.5, 3.5, 4.5, 5.5], "counts": [1, 2, 1, 0, 1]}


def _kinds(result, column):
    return {w["kind"] for w in result["warnings"] if w["column"] == column}


def test_warnings_flag_constant_identifier_and_missing_columns_but_not_a_normal_one():
    n = 40
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({
        "record": _strings([f"R{i:04d}" for i in range(n)]),
        "email": _strings(["a@example.org", "b@example.org"] * (n // 2)),
        "country": _strings(["NL"] * n),
        "empty": _strings([None] * n),
        "sparse": _strings(["x"] + [None] * (n - 1)),
        "age": rng.integers(20, 60, n).astype(float),
        "sex": _strings(["f", "m"] * (n // 2)),
        "person": _strings([f"P{i}" for i in range(n)]),
        "story": _strings([f"a story of {i} words" for i in range(n)]),
    })
    types = {"record": "categorical", "email": "categorical", "country": "categorical", "empty": "categorical",
             "sparse": "categorical", "age": "numeric", "sex": "categorical", "person": "identifier",
             "story": "text"}
    result = _as_json(profile.profile_frame(frame, types))
    assert _kinds(result, "record") == {"identifier"}
    assert _kinds(result, "email") == {"identifier"}
    assert _kinds(result, "country") == {"constant"}
    assert _kinds(result, "empty") == {"all_missing"}
    assert _kinds(result, "sparse") == {"mostly_missing", "constant"}
    assert _kinds(result, "age") == set() and _kinds(result, "sex") == set()
    # typed as an identifier: a reminder that it is never a model input; free text is naturally all different
    assert _kinds(result, "person") == {"identifier"} and _kinds(result, "story") == set()
    assert "never used to train" in next(w["message"] for w in result["warnings"] if w["column"] == "person")
    assert _kinds(result, None) == set()
    message = next(w["message"] for w in result["warnings"] if w["column"] == "record")
    assert "different value in every row" in message


def test_duplicate_rows_are_counted_and_warned_about():
    frame = pd.DataFrame({"a": [1.0, 1.0, 2.0, 1.0, np.nan, np.nan], "b": _strings(["x", "x", "y", "x", None, None])})
    result = profile.profile_frame(frame, {"a": "numeric", "b": "categorical"})
    assert result["duplicate_rows"] == int(frame.duplicated().sum()) == 3
    warning = next(w for w in result["warnings"] if w["kind"] == "duplicate_rows")
    assert warning["column"] is None and warning["message"].startswith("3 rows are exact copies")


def test_duplicate_detection_survives_many_high_cardinality_columns():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({f"c{i}": rng.integers(0, 5000, 3000).astype(float) for i in range(8)})
    frame = pd.concat([frame, frame.iloc[:7]], ignore_index=True)
    result = profile.profile_frame(frame, dict.fromkeys(frame.columns, "numeric"))
    assert result["duplicate_rows"] == int(frame.duplicated().sum()) == 7


def test_many_categories_are_flagged_as_high_cardinality():
    frame = pd.DataFrame({"city": _strings([f"town {i % 30}" for i in range(50)])})
    result = profile.profile_frame(frame, {"city": "categorical"})
    assert _kinds(result, "city") == {"high_cardinality"}


def test_ignored_columns_are_left_out_and_empty_frames_profile():
    frame = pd.DataFrame({"keep": [1.0, 2.0], "drop": _strings(["a", "b"])})
    result = profile.profile_frame(frame, {"keep": "numeric", "drop": "ignore"})
    assert list(result["columns_profile"]) == ["keep"] and result["columns"] == 1
    empty = _as_json(profile.profile_frame(frame.iloc[:0], {"keep": "numeric", "drop": "categorical"}))
    assert empty["rows"] == 0 and empty["columns_profile"]["keep"]["histogram"] == {"edges": [], "counts": []}


def test_unknown_type_is_refused_in_plain_words():
    with pytest.raises(InvalidInput, match="unknown type"):
        profile.profile_frame(pd.DataFrame({"a": [1.0]}), {"a": "float"})


def test_numeric_drift_is_small_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(3)
    reference = pd.Series(rng.normal(40, 10, 5000))
    same = profile.drift_score(reference, pd.Series(rng.normal(40, 10, 1000)), "numeric")
    shifted = profile.drift_score(reference, pd.Series(rng.normal(48, 10, 1000)), "numeric")
    assert same["method"] == "wasserstein" and same["threshold"] == 0.1
    assert same["score"] < 0.1 and not same["drifted"]
    assert shifted["score"] == pytest.approx(0.8, abs=0.1) and shifted["drifted"]
    _as_json(shifted)


def test_category_drift_is_small_for_the_same_shares_and_large_for_a_shift():
    rng = np.random.default_rng(4)
    regions = ["North", "South", "East", "West"]
    reference = _strings(rng.choice(regions, 4000, p=[0.4, 0.3, 0.2, 0.1]))
    same = profile.drift_score(reference, _strings(rng.choice(regions, 1000, p=[0.4, 0.3, 0.2, 0.1])), "categorical")
    shifted = profile.drift_score(reference, _strings(rng.choice(regions, 1000, p=[0.1, 0.2, 0.3, 0.4])),
                                  "categorical")
    assert same["method"] == "jensen-shannon" and same["score"] < 0.1 and not same["drifted"]
    assert shifted["score"] > 0.2 and shifted["drifted"]


def test_a_category_that_appears_only_in_the_current_data_counts_as_drift():
    result = profile.drift_score(_strings(["a"] * 50 + ["b"] * 50), _strings(["c"] * 100), "categorical")
    assert result["score"] == pytest.approx(1.0) and result["drifted"]


def test_boolean_and_datetime_drift_and_uncompared_types():
    flags = pd.Series([True] * 80 + [False] * 20, dtype="boolean")
    assert profile.drift_score(flags, pd.Series([False] * 80 + [True] * 20, dtype="boolean"), "boolean")["drifted"]
    dates = pd.Series(pd.date_range("2020-01-01", periods=365, freq="D"))
    assert not profile.drift_score(dates, dates.sample(100, random_state=0), "datetime")["drifted"]
    assert profile.drift_score(dates, dates + pd.Timedelta(days=200), "datetime")["drifted"]
    text = profile.drift_score(_strings(["a b c"]), _strings(["d e f"]), "text")
    assert text["method"] == "not compared" and text["score"] is None and text["drifted"] is False


def test_drift_with_an_empty_side_is_reported_without_a_score():
    result = profile.drift_score(pd.Series([1.0, 2.0]), pd.Series([np.nan, np.nan]), "numeric")
    assert result["score"] is None and result["drifted"] is False and "current" in result["note"]
    result = profile.drift_score(_strings([None, None]), _strings(["a"]), "categorical")
    assert result["score"] is None and result["drifted"] is False and "reference" in result["note"]


def test_drift_against_a_constant_reference_still_ranks_changes():
    constant = pd.Series([5.0] * 100)
    assert profile.drift_score(constant, pd.Series([5.0] * 50), "numeric")["score"] == 0.0
    assert profile.drift_score(constant, pd.Series([6.0] * 50), "numeric")["drifted"]


def test_compare_versions_reports_columns_types_rows_and_drift():
    old = pd.DataFrame({"id": _strings(["a", "b", "c", "d"]), "age": [30.0, 40.0, 50.0, 60.0],
                        "zone": _strings(["1", "2", "1", "2"]), "gone": _strings(["x"] * 4)})
    new = pd.DataFrame({"id": _strings(["c", "d", "e", "f", "g"]), "age": [31.0, 41.0, 51.0, 61.0, np.nan],
                        "zone": [1.0, 2.0, 1.0, 2.0, 1.0], "extra": [0.0] * 5})
    old_types = {"id": "identifier", "age": "numeric", "zone": "categorical", "gone": "categorical"}
    new_types = {"id": "identifier", "age": "numeric", "zone": "numeric", "extra": "numeric"}
    result = _as_json(profile.compare_versions(old, old_types, new, new_types, key="id"))
    assert result["rows"] == {"old": 4, "new": 5}
    assert result["columns"]["added"] == ["extra"] and result["columns"]["removed"] == ["gone"]
    assert result["columns"]["retyped"] == [{"column": "zone", "old_type": "categorical", "new_type": "numeric"}]
    keyed = result["keyed_rows"]
    assert (keyed["added"], keyed["removed"], keyed["kept"]) == (3, 2, 2)
    assert keyed["added_examples"] == ["e", "f", "g"] and keyed["removed_examples"] == ["a", "b"]
    drift = {entry["column"]: entry for entry in result["drift"]}
    assert set(drift) == {"id", "age", "zone"}
    assert drift["age"]["method"] == "wasserstein" and drift["age"]["missing_share_new"] == pytest.approx(0.2)
    assert drift["zone"]["method"] == "not compared" and drift["id"]["method"] == "not compared"


def test_compare_versions_without_key_and_with_numeric_keys():
    old = pd.DataFrame({"n": [1.0, 2.0, 3.0]})
    new = pd.DataFrame({"n": [2.0, 3.0, 4.0]})
    assert profile.compare_versions(old, {"n": "numeric"}, new, {"n": "numeric"})["keyed_rows"] is None
    keyed = profile.compare_versions(old, {"n": "numeric"}, new, {"n": "numeric"}, key="n")["keyed_rows"]
    assert keyed["added_examples"] == ["4"] and keyed["removed_examples"] == ["1"]


def test_compare_versions_refuses_a_key_missing_from_one_version():
    old = pd.DataFrame({"id": _strings(["a"])})
    new = pd.DataFrame({"code": _strings(["a"])})
    with pytest.raises(InvalidInput, match="'id' is not in the newer version"):
        profile.compare_versions(old, {"id": "identifier"}, new, {"code": "identifier"}, key="id")
