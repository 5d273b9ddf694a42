"""Chart specs carry the profile's numbers, in words as well as in shapes."""

import pandas as pd
import pytest

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


# ── monitoring over time ────────────────────────────────────────────────────────────────────────────

POINTS = [
    {"batch_id": 1, "at": "2026-11-01T10:00:00+00:00", "rows": 1000, "status": "finished", "judged": True,
     "drift_share": 0.0, "value": 0.86, "low": 0.83, "high": 0.89, "metric": "roc_auc",
     "automation_rate": 0.7, "auto_accuracy": 0.97, "auto_low": 0.95, "auto_high": 0.99},
    {"batch_id": 2, "at": "2026-11-02T10:00:00+00:00", "rows": 40, "status": "finished", "judged": False,
     "drift_share": None, "value": None, "metric": None, "automation_rate": 0.6, "auto_accuracy": None},
    {"batch_id": 3, "at": "2026-11-03T10:00:00+00:00", "rows": 1000, "status": "finished", "judged": True,
     "drift_share": 0.5, "value": 0.80, "low": 0.77, "high": 0.83, "metric": "roc_auc",
     "automation_rate": 0.5, "auto_accuracy": 0.9, "auto_low": 0.85, "auto_high": 0.94},
]
EVENTS = [{"at": "2026-10-31T09:00:00+00:00", "kind": "promotion", "label": "v1 live", "detail": ""},
          {"at": "2026-11-03T10:05:00+00:00", "kind": "alert", "label": "alert: drift_share (warning)",
           "detail": "Half the columns drifted."}]


def _marks(spec) -> list[str]:
    return [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in _layers(spec)]


def test_drift_share_timeline_marks_verdicts_by_shape_and_events_in_words():
    spec = charts.drift_share_timeline_chart(POINTS, EVENTS, threshold=0.5).to_dict()
    layers = _layers(spec)
    dots = next(layer for layer in layers if layer["mark"].get("type") == "point" and "shape" in layer["encoding"]
                and layer["encoding"]["shape"]["field"] == "verdict")
    assert [(r["batch"], r["verdict"]) for r in _values(dots, spec)] == [
        ("Batch 1", "no drift"), ("Batch 2", "not judged (too few rows)"), ("Batch 3", "drifted")]
    assert dots["encoding"]["shape"]["scale"]["range"] == ["triangle-up", "circle", "cross"]
    texts = [value.get("label") for layer in layers if layer["mark"].get("type") == "text"
             for value in _values(layer, spec)]
    assert "counts as drifted from 50%" in texts and "v1 live" in texts and "alert: drift_share (warning)" in texts


def test_the_heat_map_writes_each_score_and_marks_drift_with_a_symbol():
    cells = [{"batch_id": 3, "column": "age", "score": 0.75, "threshold": 0.1, "verdict": "drift",
              "method": "Wasserstein distance (normed)", "lower_is_drift": False},
             {"batch_id": 2, "column": "age", "score": 0.3, "threshold": 0.1, "verdict": "not judged",
              "method": "Wasserstein distance (normed)", "lower_is_drift": False},
             {"batch_id": 4, "column": "sex", "score": 0.01, "threshold": 0.05, "verdict": "drift",
              "method": "chi-square p_value", "lower_is_drift": True}]
    spec = charts.drift_heatmap_chart(cells).to_dict()
    rows = {(r["batch"], r["column"]): r for r in _values(_layers(spec)[0], spec)}
    assert rows[("#3", "age")]["text"] == "0.75 ▲" and rows[("#2", "age")]["text"] == "0.30 ~"
    assert rows[("#4", "sex")]["strength"] == 3.0  # a p-value far below its threshold is as strong as it gets
    assert rows[("#2", "age")]["strength"] == pytest.approx(3.0) and rows[("#3", "age")]["strength"] == 3.0
    assert _layers(spec)[0]["encoding"]["x"]["sort"] == ["#2", "#3", "#4"]


def test_performance_timeline_draws_intervals_and_the_training_value():
    training = {"metric": "roc_auc", "value": 0.85, "low": 0.82, "high": 0.88, "version": 1}
    spec = charts.performance_timeline_chart(POINTS, EVENTS, training).to_dict()
    assert "errorbar" in _marks(spec)
    bars = next(layer for layer in _layers(spec) if _marks({"layer": [layer]}) == ["errorbar"])
    assert [(r["batch"], r["low"], r["high"]) for r in _values(bars, spec)] == [("Batch 1", 0.83, 0.89),
                                                                                ("Batch 3", 0.77, 0.83)]
    labels = [v.get("label") for layer in _layers(spec) if layer["mark"].get("type") == "text"
              for v in _values(layer, spec)]
    assert "training test set (v1): 0.850" in labels
    assert bars["encoding"]["y"]["title"].startswith("ROC AUC")


def test_volume_and_automation_charts_tell_series_apart_without_colour():
    volume = charts.volume_timeline_chart(POINTS).to_dict()
    dots = next(layer for layer in _layers(volume) if "shape" in layer.get("encoding", {}))
    assert dots["encoding"]["shape"]["scale"]["range"] == ["circle", "cross"]
    automation = charts.automation_timeline_chart(POINTS, EVENTS).to_dict()
    encodings = [layer["encoding"] for layer in _layers(automation) if "encoding" in layer]
    assert any("strokeDash" in e for e in encodings) and any("shape" in e for e in encodings)
    rows = _values(_layers(automation)[0], automation)
    assert [(r["batch"], r["measure"]) for r in rows] == [
        ("Batch 1", "Share coded automatically"), ("Batch 1", "Accuracy of the automatic codes"),
        ("Batch 2", "Share coded automatically"), ("Batch 3", "Share coded automatically"),
        ("Batch 3", "Accuracy of the automatic codes")]
