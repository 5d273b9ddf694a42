"""Chart specs carry the profile's numbers, in words as well as in shapes."""

import pandas as pd

from core import charts
from core.data import profile

AGE = {"type": "numeric", "histogram": {"edges": [15.5, 25.5, 35.5, 45.5], "counts": [3, 7, 2]}}
REGION = {"type": "categorical", "top_categories": [{"value": "South", "count": 5}, {"value": "North", "count": 9}],
          "other_count": 4}


def _layers(spec):
    return spec.get("layer", [spec])


def _values(layer, chart=None):
    """Inline rows of a layer; Altair lifts data shared by every layer up to the layered chart."""
    return (layer.get("data") or chart["data"])["values"]


def test_histogram_draws_one_binned_bar_per_stored_bin():
    spec = charts.histogram_chart("age", AGE).to_dict()
    assert spec["mark"]["type"] == "bar"
    encoding = spec["encoding"]
    assert encoding["x"]["field"] == "start" and encoding["x"]["bin"] == "binned" and encoding["x"]["title"] == "age"
    assert encoding["x2"]["field"] == "end" and encoding["y"]["field"] == "count"
    assert encoding["y"]["title"] == "Number of rows"
    assert [t["field"] for t in encoding["tooltip"]] == ["start", "end", "count"]
    assert _values(spec) == [{"start": 15.5, "end": 25.5, "count": 3}, {"start": 25.5, "end": 35.5, "count": 7},
                             {"start": 35.5, "end": 45.5, "count": 2}]


def test_datetime_histogram_uses_a_time_axis():
    column = {"type": "datetime", "histogram": {"edges": ["2024-01-01T00:00:00", "2024-02-01T00:00:00"],
                                                "counts": [4], "unit": "month"}}
    spec = charts.histogram_chart("joined", column).to_dict()
    assert spec["encoding"]["x"]["type"] == "temporal"
    assert _values(spec) == [{"start": "2024-01-01T00:00:00", "end": "2024-02-01T00:00:00", "count": 4}]


def test_category_chart_sorts_bars_and_writes_the_counts():
    spec = charts.category_chart("region", REGION).to_dict()
    bars, labels = _layers(spec)
    assert bars["mark"]["type"] == "bar" and labels["mark"]["type"] == "text"
    assert bars["encoding"]["y"]["field"] == "value" and bars["encoding"]["x"]["field"] == "count"
    assert bars["encoding"]["y"]["sort"] == ["North", "South", charts.OTHER_LABEL]
    assert labels["encoding"]["text"]["field"] == "count"
    assert _values(bars, spec) == [{"value": "North", "count": 9}, {"value": "South", "count": 5},
                             {"value": charts.OTHER_LABEL, "count": 4}]
    assert spec["title"] == "Most frequent values of region"


def test_drift_chart_marks_drifted_columns_in_words_and_shows_the_threshold():
    entries = [{"column": "sex", "score": 0.02, "drifted": False, "threshold": 0.1},
               {"column": "age", "score": 0.75, "drifted": True, "threshold": 0.1},
               {"column": "person_id", "score": None, "drifted": False, "threshold": None}]
    bars, labels, rule = _layers(charts.drift_chart(entries).to_dict())
    assert (bars["mark"]["type"], labels["mark"]["type"], rule["mark"]["type"]) == ("bar", "text", "rule")
    assert bars["encoding"]["y"]["sort"] == ["age", "sex", "person_id"]
    assert labels["encoding"]["text"]["field"] == "status"
    status = {row["column"]: row["status"] for row in _values(bars)}
    assert status == {"sex": "no drift", "age": "drifted", "person_id": "not compared"}
    assert rule["encoding"]["x"]["field"] == "threshold" and _values(rule) == [{"threshold": 0.1}]


def test_column_chart_picks_the_chart_for_each_profiled_type():
    frame = pd.DataFrame({"age": [20.0, 30.0, 30.0], "zone": pd.Series(["a", "b", "a"], dtype="string"),
                          "id": pd.Series(["x", "y", "z"], dtype="string"),
                          "note": pd.Series(["night shift nurse", "nurse", "cook"], dtype="string")})
    types = {"age": "numeric", "zone": "categorical", "id": "identifier", "note": "text"}
    columns = profile.profile_frame(frame, types)["columns_profile"]
    assert charts.column_chart("age", columns["age"]).to_dict()["mark"]["type"] == "bar"
    zone = charts.column_chart("zone", columns["zone"]).to_dict()
    assert _values(_layers(zone)[0], zone) == [{"value": "a", "count": 2}, {"value": "b", "count": 1}]
    words = charts.column_chart("note", columns["note"]).to_dict()
    assert _values(_layers(words)[0], words)[0] == {"value": "nurse", "count": 2}
    assert charts.column_chart("id", columns["id"]) is None
    assert charts.column_chart("empty", {"type": "numeric", "histogram": {"edges": [], "counts": []}}) is None
