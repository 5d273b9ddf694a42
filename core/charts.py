"""Altair chart specifications built from stored profiles and comparisons.

Pure functions: they take the JSON that ``core.data.profile`` stores and return Altair charts, so pages
show them with ``st.altair_chart`` and reports render the very same specs to images. Every chart states
its numbers in words as well as in shape or colour (axis titles, tooltips, text labels), because a
colour alone is lost on some readers and on a black-and-white printout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt

WIDTH = 480
HEIGHT = 240
BAR_HEIGHT = 22
OTHER_LABEL = "(all other values)"
STATUS_COLOURS = {"drifted": "#c0392b", "no drift": "#4c78a8", "not compared": "#9e9e9e"}


def _data(rows: list[dict[str, Any]]) -> alt.Data:
    return alt.Data(values=rows)


def histogram_chart(column_name: str, column_profile: Mapping[str, Any]) -> alt.Chart:
    """Bars of a numeric or datetime column's stored histogram."""
    histogram = column_profile.get("histogram") or {}
    edges, counts = list(histogram.get("edges") or []), list(histogram.get("counts") or [])
    rows = [{"start": start, "end": end, "count": count}
            for start, end, count in zip(edges[:-1], edges[1:], counts, strict=False)]
    kind = "temporal" if column_profile.get("type") == "datetime" else "quantitative"
    return alt.Chart(_data(rows), title=f"Distribution of {column_name}").mark_bar().encode(
        x=alt.X("start", type=kind, bin="binned", title=column_name),
        x2=alt.X2("end"),
        y=alt.Y("count:Q", title="Number of rows"),
        tooltip=[alt.Tooltip("start", type=kind, title="From"), alt.Tooltip("end", type=kind, title="To"),
                 alt.Tooltip("count:Q", title="Rows", format=",")],
    ).properties(width=WIDTH, height=HEIGHT)


def category_chart(column_name: str, column_profile: Mapping[str, Any],
                   count_title: str = "Number of rows") -> alt.LayerChart:
    """Horizontal bars of the most frequent categories, largest first, each labelled with its count."""
    items = sorted(column_profile.get("top_categories") or [], key=lambda item: -item["count"])
    rows = [{"value": str(item["value"]), "count": int(item["count"])} for item in items]
    if column_profile.get("other_count"):
        rows.append({"value": OTHER_LABEL, "count": int(column_profile["other_count"])})
    base = alt.Chart(_data(rows)).encode(
        y=alt.Y("value:N", sort=[row["value"] for row in rows], title=column_name),
        x=alt.X("count:Q", title=count_title),
    )
    bars = base.mark_bar().encode(tooltip=[alt.Tooltip("value:N", title="Value"),
                                           alt.Tooltip("count:Q", title=count_title, format=",")])
    labels = base.mark_text(align="left", baseline="middle", dx=3).encode(text=alt.Text("count:Q", format=","))
    # A step height (not a fixed one) keeps each bar BAR_HEIGHT tall when Streamlit stretches the chart to the
    # page: its "fit" autosize would otherwise squeeze title, axis and bars into a few bars' worth of pixels.
    return alt.layer(bars, labels, title=f"Most frequent values of {column_name}").properties(
        width=WIDTH, height=alt.Step(BAR_HEIGHT))


def drift_chart(comparison_columns: Sequence[Mapping[str, Any]]) -> alt.LayerChart:
    """One bar per column for its drift score, a dashed rule at the threshold, and a text status per bar."""
    rows = []
    for entry in comparison_columns:
        score = entry.get("score")
        status = "not compared" if score is None else "drifted" if entry.get("drifted") else "no drift"
        rows.append({"column": str(entry["column"]), "score": score, "bar": score or 0.0,
                     "threshold": entry.get("threshold"), "status": status})
    order = [row["column"] for row in sorted(rows, key=lambda row: -row["bar"])]
    base = alt.Chart(_data(rows)).encode(
        y=alt.Y("column:N", sort=order, title="Column"),
        x=alt.X("bar:Q", title="Drift score (0 means unchanged)", axis=alt.Axis(tickCount=5)),
    )
    bars = base.mark_bar().encode(
        color=alt.Color("status:N", title="Status", scale=alt.Scale(domain=list(STATUS_COLOURS),
                                                                    range=list(STATUS_COLOURS.values()))),
        tooltip=[alt.Tooltip("column:N", title="Column"), alt.Tooltip("score:Q", title="Drift score", format=".3f"),
                 alt.Tooltip("threshold:Q", title="Threshold", format=".2f"), alt.Tooltip("status:N", title="Status")],
    )
    # The status is written next to each bar so that it does not depend on telling the colours apart.
    labels = base.mark_text(align="left", baseline="middle", dx=4).encode(text=alt.Text("status:N"))
    thresholds = sorted({row["threshold"] for row in rows if row["threshold"] is not None})
    rule = alt.Chart(_data([{"threshold": t} for t in thresholds])).mark_rule(strokeDash=[4, 4]).encode(
        x=alt.X("threshold:Q"), tooltip=[alt.Tooltip("threshold:Q", title="Threshold", format=".2f")],
    )
    return alt.layer(bars, labels, rule, title="Distribution shift per column").properties(
        width=WIDTH, height=alt.Step(BAR_HEIGHT))


def column_chart(column_name: str, column_profile: Mapping[str, Any]) -> alt.Chart | alt.LayerChart | None:
    """The chart that suits a profiled column's type, or None when there is nothing to draw."""
    kind = column_profile.get("type")
    if kind in ("numeric", "datetime"):
        has_bars = bool((column_profile.get("histogram") or {}).get("counts"))
        return histogram_chart(column_name, column_profile) if has_bars else None
    if kind in ("categorical", "boolean"):
        return category_chart(column_name, column_profile) if column_profile.get("top_categories") else None
    if kind == "text" and column_profile.get("top_words"):
        words = {"top_categories": column_profile["top_words"]}
        return category_chart(column_name, words, count_title="Times used (in the sampled rows)")
    return None  # identifiers: every value is different, so their counts say nothing


# ── model evaluation ────────────────────────────────────────────────────────────────────────────────
# These take what ``core.training.evaluation`` stores for a run. Lines that share a chart differ in stroke
# dash and point shape as well as colour, and reference lines carry a text label.

SQUARE = 320
CELL = 44
# Streamlit gives a chart without an autosize of its own the "fit" mode, which shrinks the plot until title, axes
# and legend fit inside width x height: a 200-pixel confusion matrix became a sliver. "pad" keeps the plot's size.
FIXED_SIZE = alt.AutoSizeParams(type="pad", contains="padding")
MIN_MATRIX_SIZE = 200
MAX_MATRIX_SIZE = 640
REFERENCE_DASH = [4, 4]
REFERENCE_COLOUR = "#757575"


def _reference_diagonal(label: str) -> alt.LayerChart:
    """A dashed grey line from (0, 0) to (1, 1) with its meaning written on it."""
    line = alt.Chart(_data([{"x": 0.0, "y": 0.0}, {"x": 1.0, "y": 1.0}])).mark_line(
        strokeDash=REFERENCE_DASH, color=REFERENCE_COLOUR).encode(x="x:Q", y="y:Q")
    text = alt.Chart(_data([{"x": 0.62, "y": 0.56, "label": label}])).mark_text(
        angle=315, color=REFERENCE_COLOUR, align="center").encode(x="x:Q", y="y:Q", text="label:N")
    return alt.layer(line, text)


def _share_scale() -> alt.Scale:
    return alt.Scale(domain=[0, 1])


def confusion_chart(confusion: Mapping[str, Any]) -> alt.LayerChart:
    """Heat map of actual against predicted classes, every cell labelled with its number of rows."""
    classes = [str(label) for label in confusion.get("classes") or []]
    matrix = confusion.get("matrix") or []
    rows = []
    for actual, counts in zip(classes, matrix, strict=False):
        total = sum(counts)
        for predicted, count in zip(classes, counts, strict=False):
            rows.append({"actual": actual, "predicted": predicted, "count": int(count),
                         "share": count / total if total else 0.0,
                         "outcome": "correct" if actual == predicted else "wrong"})
    darkest = max((row["count"] for row in rows), default=0)
    base = alt.Chart(_data(rows)).encode(
        x=alt.X("predicted:N", sort=classes, title="Predicted class", axis=alt.Axis(labelAngle=-45)),
        y=alt.Y("actual:N", sort=classes, title="Actual class"),
    )
    cells = base.mark_rect().encode(
        # From zero, so that the half-way shade matches where the labels turn white (count > darkest / 2).
        color=alt.Color("count:Q", title="Rows", scale=alt.Scale(scheme="blues", domainMin=0)),
        tooltip=[alt.Tooltip("actual:N", title="Actual"), alt.Tooltip("predicted:N", title="Predicted"),
                 alt.Tooltip("count:Q", title="Rows", format=","),
                 alt.Tooltip("share:Q", title="Share of the actual class", format=".1%"),
                 alt.Tooltip("outcome:N", title="Prediction")],
    )
    # Light text on the dark cells, dark text on the light ones, so every count stays readable.
    labels = base.mark_text(baseline="middle").encode(
        text=alt.Text("count:Q", format=","),
        color=alt.when(alt.datum.count > darkest / 2).then(alt.value("white")).otherwise(alt.value("black")),
    )
    size = min(max(CELL * len(classes), MIN_MATRIX_SIZE), MAX_MATRIX_SIZE)
    return alt.layer(cells, labels, title="Actual against predicted class (rows per cell)").properties(
        width=size, height=size, autosize=FIXED_SIZE)


def _curve_rows(points: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{"x": point["x"], "y": point["y"], "threshold": point.get("threshold"), "order": i}
            for i, point in enumerate(points)]


def _curve_chart(points: Sequence[Mapping[str, Any]], x_title: str, y_title: str) -> alt.Chart:
    return alt.Chart(_data(_curve_rows(points))).mark_line(point=alt.OverlayMarkDef(size=12)).encode(
        x=alt.X("x:Q", title=x_title, scale=_share_scale()),
        y=alt.Y("y:Q", title=y_title, scale=_share_scale()),
        order=alt.Order("order:Q"),
        tooltip=[alt.Tooltip("threshold:Q", title="Threshold", format=".3f"),
                 alt.Tooltip("x:Q", title=x_title, format=".3f"), alt.Tooltip("y:Q", title=y_title, format=".3f")],
    )


def roc_chart(points: Sequence[Mapping[str, Any]]) -> alt.LayerChart:
    """The ROC curve, with the dashed diagonal a model guessing at random would draw."""
    curve = _curve_chart(points, "False positive rate (share of negatives flagged)",
                         "True positive rate (share of positives found)")
    return alt.layer(curve, _reference_diagonal("chance"), title="ROC curve").properties(
        width=SQUARE, height=SQUARE, autosize=FIXED_SIZE)


def pr_chart(points: Sequence[Mapping[str, Any]]) -> alt.Chart:
    """The precision-recall curve: how many flagged rows are right as more of the positives are found."""
    curve = _curve_chart(points, "Recall (share of positives found)",
                         "Precision (share of flagged rows that are right)")
    return curve.properties(title="Precision against recall", width=SQUARE, height=SQUARE, autosize=FIXED_SIZE)


def calibration_chart(bins: Sequence[Mapping[str, Any]]) -> alt.LayerChart:
    """Predicted probability against the observed share of positives per bin, with the perfect diagonal."""
    rows = [{"mean_predicted": b["mean_predicted"], "observed": b["observed"], "count": b["count"]} for b in bins]
    base = alt.Chart(_data(rows)).encode(
        x=alt.X("mean_predicted:Q", title="Predicted probability (average in the bin)", scale=_share_scale()),
        y=alt.Y("observed:Q", title="Observed share of positives", scale=_share_scale()),
        tooltip=[alt.Tooltip("mean_predicted:Q", title="Predicted probability", format=".3f"),
                 alt.Tooltip("observed:Q", title="Observed share", format=".3f"),
                 alt.Tooltip("count:Q", title="Rows in the bin", format=",")],
    )
    line = base.mark_line()
    # The legend goes below: beside the square it would not fit in half the page.
    dots = base.mark_circle().encode(size=alt.Size("count:Q", title="Rows in the bin",
                                                   legend=alt.Legend(orient="bottom")))
    return alt.layer(line, dots, _reference_diagonal("perfectly calibrated"),
                     title="Calibration: predicted against observed").properties(
        width=SQUARE, height=SQUARE, autosize=FIXED_SIZE)


def residuals_chart(points: Sequence[Mapping[str, Any]]) -> alt.LayerChart:
    """Residual against prediction for a sample of rows, with a dashed rule where the residual is zero."""
    rows = [{"predicted": p["predicted"], "residual": p["residual"]} for p in points]
    dots = alt.Chart(_data(rows)).mark_circle(opacity=0.5, size=20).encode(
        x=alt.X("predicted:Q", title="Predicted value", scale=alt.Scale(zero=False)),
        y=alt.Y("residual:Q", title="Residual (actual minus predicted)"),
        tooltip=[alt.Tooltip("predicted:Q", title="Predicted", format=",.3f"),
                 alt.Tooltip("residual:Q", title="Residual", format=",.3f")],
    )
    zero = alt.Chart(_data([{"residual": 0.0, "label": "no error"}])).encode(y="residual:Q")
    rule = zero.mark_rule(strokeDash=REFERENCE_DASH, color=REFERENCE_COLOUR)
    text = zero.mark_text(align="left", baseline="bottom", x=4, dy=-2, color=REFERENCE_COLOUR).encode(text="label:N")
    return alt.layer(dots, rule, text, title="Residuals of a sample of held-out rows").properties(
        width=WIDTH, height=HEIGHT)


def coding_tradeoff_chart(tradeoff: Sequence[Mapping[str, Any]],
                          chosen_threshold: float | None = None) -> alt.LayerChart:
    """Share coded automatically and their accuracy against the confidence threshold, and the chosen threshold."""
    measures = {"coverage": "Share coded automatically", "accuracy": "Accuracy of the automatic codes"}
    rows = [{"threshold": row["threshold"], "measure": title, "value": row[key], "count": row["count"]}
            for row in tradeoff for key, title in measures.items()]
    # Colour, dash and shape of "measure" all keep their legend: Streamlit's Vega-Lite merges them into one, but
    # draws none at all if any of them says legend=None (a long label limit keeps the names whole).
    legend = {"title": "Line", "sort": list(measures.values()), "legend": alt.Legend(labelLimit=300)}
    base = alt.Chart(_data(rows)).encode(
        x=alt.X("threshold:Q", title="Confidence threshold (top class probability)", scale=_share_scale()),
        y=alt.Y("value:Q", title="Share", scale=_share_scale(), axis=alt.Axis(format="%")),
        color=alt.Color("measure:N", **legend),
        tooltip=[alt.Tooltip("threshold:Q", title="Threshold", format=".2f"), alt.Tooltip("measure:N", title="Measure"),
                 alt.Tooltip("value:Q", title="Value", format=".1%"),
                 alt.Tooltip("count:Q", title="Records coded automatically", format=",")],
    )
    lines = base.mark_line().encode(strokeDash=alt.StrokeDash("measure:N", **legend))
    # A marker every 0.05 tells the lines apart by shape as well, without crowding them.
    markers = base.transform_filter("round(datum.threshold * 100) % 5 == 0").mark_point(filled=True, size=40).encode(
        shape=alt.Shape("measure:N", **legend))
    layers = [lines, markers]
    if chosen_threshold is not None:
        chosen = alt.Chart(_data([{"threshold": float(chosen_threshold),
                                   "label": f"chosen threshold {chosen_threshold:.2f}"}])).encode(x="threshold:Q")
        layers += [chosen.mark_rule(strokeDash=REFERENCE_DASH, color=REFERENCE_COLOUR),
                   chosen.mark_text(align="left", baseline="bottom", dx=4, y=HEIGHT - 4, color=REFERENCE_COLOUR).encode(
                       text="label:N")]
    return alt.layer(*layers, title="Automatic coding: how many records, how accurately").properties(
        width=WIDTH, height=HEIGHT, autosize=FIXED_SIZE)


def leaderboard_chart(rows: Sequence[Mapping[str, Any]],
                      score_title: str = "Mean score across folds") -> alt.LayerChart:
    """One bar per candidate for its mean score, an error bar of one standard deviation, and the numbers as text."""
    data = []
    for row in rows:
        mean, std = row.get("mean"), row.get("std") or 0.0
        low, high = (None, None) if mean is None else (mean - std, mean + std)
        text = "no score" if mean is None else f"{mean:.3f} ± {std:.3f}"
        data.append({"candidate": str(row["candidate"]), "mean": mean, "std": std, "low": low, "high": high,
                     "label": text, "label_at": high if high is not None else 0.0})
    y = alt.Y("candidate:N", sort=[row["candidate"] for row in data], title="Candidate")
    tooltip = [alt.Tooltip("candidate:N", title="Candidate"), alt.Tooltip("mean:Q", title="Mean", format=".4f"),
               alt.Tooltip("std:Q", title="Standard deviation", format=".4f")]
    base = alt.Chart(_data(data))
    bars = base.mark_bar(opacity=0.8).encode(y=y, x=alt.X("mean:Q", title=score_title), tooltip=tooltip)
    errors = base.mark_errorbar(ticks=True).encode(y=y, x=alt.X("low:Q", title=score_title), x2="high:Q",
                                                   tooltip=tooltip)
    labels = base.mark_text(align="left", baseline="middle", dx=6).encode(y=y, x="label_at:Q", text="label:N")
    return alt.layer(bars, errors, labels, title="Candidates compared (bar: mean, line: ± one standard deviation)"
                     ).properties(width=WIDTH, height=alt.Step(BAR_HEIGHT))


def subgroup_chart(rows: Sequence[Mapping[str, Any]]) -> alt.LayerChart:
    """The metric per group as bars, a dashed rule at the value on all rows, and small groups marked in words."""
    from core.training.evaluation import metric_label  # scikit-learn loads only where evaluation is drawn

    metric = rows[0]["metric"] if rows else ""
    data = []
    for row in rows:
        value = row.get("value")
        size = "small group: too few rows to trust" if row.get("small") else "enough rows"
        note = "no value" if value is None else f"{value:.3f}"
        data.append({"group": f"{row['column']} = {row['group']}", "value": value, "bar": value or 0.0,
                     "count": row.get("count"), "gap": row.get("gap"), "size": size,
                     "label": f"{note} (n={row.get('count')}{', small group' if row.get('small') else ''})"})
    title = metric_label(metric) if metric else "Value"
    sizes = ["enough rows", "small group: too few rows to trust"]
    base = alt.Chart(_data(data)).encode(
        y=alt.Y("group:N", sort=[row["group"] for row in data], title="Group"),
        x=alt.X("bar:Q", title=title),
        tooltip=[alt.Tooltip("group:N", title="Group"), alt.Tooltip("value:Q", title=title, format=".4f"),
                 alt.Tooltip("count:Q", title="Rows", format=","),
                 alt.Tooltip("gap:Q", title="How much worse than all rows", format="+.4f"),
                 alt.Tooltip("size:N", title="Group size")],
    )
    # The legend sits below the chart: on the right it covers the value labels at the ends of the bars.
    legend = alt.Legend(orient="bottom")
    bars = base.mark_bar().encode(opacity=alt.Opacity("size:N", title="Group size", sort=sizes, legend=legend,
                                                      scale=alt.Scale(domain=sizes, range=[0.85, 0.35])))
    marks = base.mark_point(filled=True, size=60).encode(
        shape=alt.Shape("size:N", title="Group size", sort=sizes, legend=legend,
                        scale=alt.Scale(domain=sizes, range=["circle", "triangle-down"])))
    labels = base.mark_text(align="left", baseline="middle", dx=8).encode(text="label:N")
    overall = sorted({row["overall"] for row in rows if row.get("overall") is not None})
    layers = [bars, marks, labels]
    if overall:
        reference = alt.Chart(_data([{"overall": value, "label": f"all rows: {value:.3f}"} for value in overall]))
        layers += [reference.mark_rule(strokeDash=REFERENCE_DASH, color=REFERENCE_COLOUR).encode(x="overall:Q"),
                   reference.mark_text(align="left", baseline="bottom", dx=4, y=-4, color=REFERENCE_COLOUR).encode(
                       x="overall:Q", text="label:N")]
    return alt.layer(*layers, title=f"{title} per group").properties(width=WIDTH,
                                                                     height=alt.Step(BAR_HEIGHT))


# ── explanations ────────────────────────────────────────────────────────────────────────────────────


def importance_chart(overall: Mapping[str, float], scale: str) -> alt.LayerChart:
    """Mean |SHAP| per input column, largest first, each bar labelled with its value."""
    rows = [{"feature": name, "importance": float(value)} for name, value in overall.items()]
    base = alt.Chart(_data(rows)).encode(
        y=alt.Y("feature:N", sort=[row["feature"] for row in rows], title=None),
        x=alt.X("importance:Q", title=f"Average effect on the prediction ({scale}, mean |SHAP|)"),
    )
    bars = base.mark_bar().encode(tooltip=[alt.Tooltip("feature:N", title="Column"),
                                           alt.Tooltip("importance:Q", title="Average effect", format=".4f")])
    labels = base.mark_text(align="left", dx=3).encode(text=alt.Text("importance:Q", format=".3f"))
    return alt.layer(bars, labels, title="Which columns matter most").properties(width=WIDTH,
                                                                                  height=alt.Step(BAR_HEIGHT))


def beeswarm_chart(points: Sequence[Mapping[str, Any]], scale: str) -> alt.Chart:
    """Each dot a record: its SHAP value per column; the value's rank is shown by colour and by dot size."""
    order = list(dict.fromkeys(point["feature"] for point in points))
    # Values of different columns mix numbers and words: shown as text (the tooltip), ranked by "relative".
    rows = [dict(p) | {"rank": p.get("relative"), "value": "" if p["value"] is None else str(p["value"])}
            for p in points]
    return alt.Chart(_data(rows),
                     title="How each column pushes individual predictions").mark_circle(opacity=0.6).encode(
        x=alt.X("shap:Q", title=f"Effect on the prediction ({scale}); right = towards the outcome"),
        y=alt.Y("feature:N", sort=order, title=None),
        yOffset=alt.YOffset("jitter:Q"),
        color=alt.Color("rank:Q", title="Value (low → high)", scale=alt.Scale(scheme="viridis")),
        size=alt.Size("rank:Q", title="Value (low → high)", scale=alt.Scale(range=[10, 60])),
        tooltip=[alt.Tooltip("feature:N", title="Column"), alt.Tooltip("value:N", title="Value"),
                 alt.Tooltip("shap:Q", title="Effect", format=".3f")],
    ).transform_calculate(jitter="random()").properties(width=WIDTH, height=alt.Step(28))


def dependence_chart(points: Sequence[Mapping[str, Any]], feature: str, scale: str) -> alt.Chart:
    """SHAP value against the column's value, for one column (a category per row, its name read across)."""
    rows = [p for p in points if p["feature"] == feature and p["value"] is not None]
    numeric = all(isinstance(p["value"], int | float) for p in rows)
    effect = f"Effect on the prediction ({scale})"
    chart = alt.Chart(_data(rows), title=f"Effect of {feature} by its value").mark_point(filled=True).encode(
        tooltip=[alt.Tooltip("value:N", title=feature), alt.Tooltip("shap:Q", title="Effect", format=".3f")])
    if numeric:
        return chart.encode(x=alt.X("value:Q", title=feature), y=alt.Y("shap:Q", title=effect)).properties(
            width=WIDTH, height=HEIGHT)
    # Category names along an x axis are turned on end and, in a fixed height, squeeze the plot to a line.
    return chart.encode(x=alt.X("shap:Q", title=effect), y=alt.Y("value:N", title=feature)).properties(
        width=WIDTH, height=alt.Step(BAR_HEIGHT))


def waterfall_chart(explanation: Mapping[str, Any], top: int = 8) -> alt.LayerChart:
    """From the base value to this record's prediction, one step per column (the rest grouped)."""
    steps = list(explanation["steps"])
    shown, rest = steps[:top], steps[top:]
    if rest:
        shown.append({"feature": f"{len(rest)} other columns", "value": None,
                      "contribution": float(sum(s["contribution"] for s in rest))})
    rows, level = [], float(explanation["base"])
    rows.append({"label": "average prediction", "start": 0.0, "end": level, "kind": "start", "text": f"{level:.3f}"})
    for step in shown:
        value = "" if step["value"] is None else f" = {step['value']}"
        end = level + float(step["contribution"])
        rows.append({"label": f"{step['feature']}{value}", "start": level, "end": end,
                     "kind": "raises" if step["contribution"] >= 0 else "lowers",
                     "text": f"{step['contribution']:+.3f}"})
        level = end
    rows.append({"label": "this prediction", "start": 0.0, "end": level, "kind": "end", "text": f"{level:.3f}"})
    order = [row["label"] for row in rows]
    base = alt.Chart(_data(rows)).encode(y=alt.Y("label:N", sort=order, title=None))
    bars = base.mark_bar().encode(
        x=alt.X("start:Q", title="Prediction"), x2="end:Q",
        color=alt.Color("kind:N", title="Step", scale=alt.Scale(domain=["start", "raises", "lowers", "end"],
                                                                 range=["#9aa5b1", "#1f5f8b", "#c0504d", "#4d4d4d"])),
        tooltip=[alt.Tooltip("label:N", title="Step"), alt.Tooltip("text:N", title="Change")])
    labels = base.mark_text(align="left", dx=4).encode(x=alt.X("max_end:Q"), text="text:N").transform_calculate(
        max_end="max(datum.start, datum.end)")
    return alt.layer(bars, labels, title="From the average prediction to this one").properties(
        width=WIDTH, height=alt.Step(BAR_HEIGHT))


def counts_chart(rows: Sequence[Mapping[str, Any]], title: str = "Rows") -> alt.LayerChart:
    """Horizontal bars of a count per label, with the number beside each bar (checklist evidence)."""
    data = [{"label": str(row["label"]), "value": row["value"]} for row in rows]
    y = alt.Y("label:N", sort=None, title=None)
    base = alt.Chart(_data(data))
    bars = base.mark_bar(opacity=0.8).encode(y=y, x=alt.X("value:Q", title=title),
                                             tooltip=[alt.Tooltip("label:N"), alt.Tooltip("value:Q", format=",")])
    labels = base.mark_text(align="left", baseline="middle", dx=4).encode(y=y, x="value:Q",
                                                                        text=alt.Text("value:Q", format=","))
    return alt.layer(bars, labels, title=title).properties(width=WIDTH, height=alt.Step(BAR_HEIGHT))


# ── monitoring over time ────────────────────────────────────────────────────────────────────────────
# These take ``core.monitoring.timeline``. Every series differs by point shape (and dash) as well as colour, verdicts
# are written as text or symbols, and events (alerts, promotions, retraining) are dashed rules with a shaped marker
# and a word at the top of the chart.

EVENT_STYLE = {"alert": ("triangle-up", "#c0392b"), "promotion": ("diamond", "#2e7d32"),
               "retraining": ("square", "#6a1b9a")}
VERDICT_STYLE = {"drifted": ("triangle-up", "#c0392b"), "no drift": ("circle", "#4c78a8"),
                 "not judged (too few rows)": ("cross", "#9e9e9e")}
TIMELINE_WIDTH, TIMELINE_HEIGHT = 640, 260
TIME_AXIS = alt.X("at:T", title="Scored at", axis=alt.Axis(labelAngle=-30, labelOverlap=True),
                  scale=alt.Scale(padding=24))


def _event_layers(events: Sequence[Mapping[str, Any]]) -> list[alt.Chart]:
    """A dashed rule, a shaped marker and a short label per event, at the top of a time chart.

    Each kind of event is its own layer with a fixed shape and colour, so the events need no legend (the label says
    what happened) and do not share a colour or shape scale with the chart's own series.
    """
    rows = [{"at": e["at"], "kind": e["kind"], "label": e["label"], "detail": e.get("detail") or ""}
            for e in events if e.get("at")]
    if not rows:
        return []
    # Three rows of labels, in turn, so that events close in time do not write over each other.
    for index, row in enumerate(sorted(rows, key=lambda r: r["at"])):
        row["y"] = 6 + 14 * (index % 3)
    tooltip = [alt.Tooltip("label:N", title="Event"), alt.Tooltip("at:T", title="When", format="%Y-%m-%d %H:%M"),
               alt.Tooltip("detail:N", title="Details")]
    base = alt.Chart(_data(rows)).encode(x=TIME_AXIS, tooltip=tooltip)
    at_top = alt.Y("y:Q", scale=None)  # pixels from the top, whatever the chart's own y scale
    layers = [base.mark_rule(strokeDash=REFERENCE_DASH, color=REFERENCE_COLOUR)]
    for kind, (shape, colour) in EVENT_STYLE.items():
        if any(row["kind"] == kind for row in rows):
            layers.append(base.transform_filter(alt.datum.kind == kind).mark_point(
                shape=shape, color=colour, filled=True, size=80, opacity=1).encode(y=at_top))
    layers.append(base.mark_text(align="left", baseline="middle", dx=7, fontSize=10, limit=140).encode(
        y=at_top, text="label:N"))
    return layers


def _time_chart(layers: list, events: Sequence[Mapping[str, Any]], title: str) -> alt.LayerChart:
    # "pad" keeps the plot at its size: Streamlit's "fit" would squeeze it to make room for legends and labels.
    # The legend goes below, clear of the event labels near the right edge.
    return alt.layer(*layers, *_event_layers(events), title=title).properties(
        width=TIMELINE_WIDTH, height=TIMELINE_HEIGHT, autosize=FIXED_SIZE).configure_legend(orient="bottom")


def drift_share_timeline_chart(points: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]] = (),
                               threshold: float = 0.5) -> alt.LayerChart:
    """Share of drifted input columns per batch, the share at which a batch counts as drifted, and the events."""
    rows = []
    for point in points:
        if point.get("status") != "finished":
            continue
        if point.get("judged") and point.get("drift_share") is not None:
            verdict = "drifted" if point["drift_share"] >= threshold else "no drift"
            share = point["drift_share"]
        else:
            verdict, share = "not judged (too few rows)", 0.0
        rows.append({"at": point["at"], "batch": f"Batch {point['batch_id']}", "share": share, "verdict": verdict,
                     "rows": point.get("rows"), "shown": "—" if verdict.startswith("not") else f"{share:.0%}"})
    verdicts = [v for v in VERDICT_STYLE if any(row["verdict"] == v for row in rows)] or ["no drift"]
    scale = {"domain": verdicts}
    tooltip = [alt.Tooltip("batch:N", title="Batch"), alt.Tooltip("at:T", title="Scored at", format="%Y-%m-%d %H:%M"),
               alt.Tooltip("rows:Q", title="Rows", format=","), alt.Tooltip("shown:N", title="Drifted columns"),
               alt.Tooltip("verdict:N", title="Verdict")]
    base = alt.Chart(_data(rows)).encode(
        x=TIME_AXIS, y=alt.Y("share:Q", title="Share of input columns drifted", scale=_share_scale(),
                             axis=alt.Axis(format="%")))
    line = base.transform_filter("datum.verdict != 'not judged (too few rows)'").mark_line(color=REFERENCE_COLOUR)
    dots = base.mark_point(filled=True, size=80, opacity=1).encode(
        shape=alt.Shape("verdict:N", title="Batch", scale=alt.Scale(**scale, range=[VERDICT_STYLE[v][0]
                                                                                   for v in verdicts])),
        color=alt.Color("verdict:N", title="Batch", scale=alt.Scale(**scale, range=[VERDICT_STYLE[v][1]
                                                                                   for v in verdicts])),
        tooltip=tooltip)
    limit = alt.Chart(_data([{"share": threshold, "label": f"counts as drifted from {threshold:.0%}"}])).encode(
        y="share:Q")
    layers = [line, dots, limit.mark_rule(strokeDash=REFERENCE_DASH, color=REFERENCE_COLOUR),
              limit.mark_text(align="right", baseline="bottom", x=TIMELINE_WIDTH - 4, dy=-2,
                              color=REFERENCE_COLOUR).encode(text="label:N")]
    return _time_chart(layers, events, "Drifted input columns per batch")


def drift_heatmap_chart(cells: Sequence[Mapping[str, Any]]) -> alt.LayerChart:
    """Drift score per input column and batch; shade = how far past its threshold, ▲ = drift, ~ = not judged."""
    rows = []
    for cell in cells:
        score, threshold = cell["score"], cell.get("threshold")
        if threshold and cell.get("lower_is_drift"):
            strength = min(threshold / max(score, 1e-12), 3.0)  # p-values: smaller means more drift
        else:
            strength = min(score / threshold, 3.0) if threshold else 0.0
        mark = {"drift": " ▲", "not judged": " ~"}.get(cell["verdict"], "")
        rows.append({"batch": f"#{cell['batch_id']}", "batch_id": cell["batch_id"], "column": cell["column"],
                     "score": score, "threshold": threshold, "strength": strength, "verdict": cell["verdict"],
                     "method": cell.get("method") or "", "text": f"{score:.2f}{mark}"})
    batches = [f"#{b}" for b in sorted({row["batch_id"] for row in rows})]
    base = alt.Chart(_data(rows)).encode(
        x=alt.X("batch:N", sort=batches, title="Batch", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("column:N", title="Input column"))
    cells_layer = base.mark_rect(stroke="white").encode(
        color=alt.Color("strength:Q", title="Score ÷ threshold", legend=alt.Legend(orient="bottom"),
                        scale=alt.Scale(domain=[0, 1, 3], range=["#f7fbff", "#fdd49e", "#b30000"],
                                        interpolate="rgb")),
        tooltip=[alt.Tooltip("batch:N", title="Batch"), alt.Tooltip("column:N", title="Column"),
                 alt.Tooltip("method:N", title="Method"), alt.Tooltip("score:Q", title="Score", format=".4f"),
                 alt.Tooltip("threshold:Q", title="Threshold", format=".3g"),
                 alt.Tooltip("verdict:N", title="Verdict")])
    text = base.mark_text(baseline="middle", fontSize=10).encode(
        text="text:N", color=alt.when(alt.datum.strength > 2).then(alt.value("white")).otherwise(alt.value("black")))
    width = min(max(56 * len(batches), 240), 900)
    return alt.layer(cells_layer, text, title="Drift score per column (▲ drift, ~ batch too small to judge)"
                     ).properties(width=width, height=alt.Step(BAR_HEIGHT))


def performance_timeline_chart(points: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]] = (),
                               training: Mapping[str, Any] | None = None) -> alt.LayerChart:
    """The primary metric per labelled batch with its 95% interval, the training test value, and the events."""
    from core.training.evaluation import metric_label

    rows = [{"at": p["at"], "batch": f"Batch {p['batch_id']}", "value": p["value"], "low": p.get("low"),
             "high": p.get("high"), "metric": p["metric"]} for p in points if p.get("value") is not None]
    metric = rows[0]["metric"] if rows else (training or {}).get("metric", "")
    title = metric_label(metric) if metric else "Metric"
    tooltip = [alt.Tooltip("batch:N", title="Batch"), alt.Tooltip("value:Q", title=title, format=".3f"),
               alt.Tooltip("low:Q", title="95% interval from", format=".3f"),
               alt.Tooltip("high:Q", title="95% interval to", format=".3f")]
    base = alt.Chart(_data(rows)).encode(x=TIME_AXIS)
    layers = [base.mark_errorbar(ticks=True).encode(y=alt.Y("low:Q", title=title, scale=alt.Scale(zero=False)),
                                                    y2="high:Q", tooltip=tooltip),
              base.mark_line(point=alt.OverlayMarkDef(filled=True, size=60, shape="circle")).encode(
                  y=alt.Y("value:Q", title=title), tooltip=tooltip),
              base.mark_text(align="left", dx=6, dy=-8, fontSize=10).encode(
                  y="value:Q", text=alt.Text("value:Q", format=".3f"))]
    if training and training.get("value") is not None:
        ref = alt.Chart(_data([{"value": training["value"],
                                "label": f"training test set (v{training.get('version')}): "
                                         f"{training['value']:.3f}"}])).encode(y="value:Q")
        layers += [ref.mark_rule(strokeDash=REFERENCE_DASH, color=REFERENCE_COLOUR),
                   ref.mark_text(align="right", baseline="bottom", x=TIMELINE_WIDTH - 4, dy=-2,
                                 color=REFERENCE_COLOUR).encode(text="label:N")]
    return _time_chart(layers, events, "Performance on labelled batches (bars: 95% interval)")


def volume_timeline_chart(points: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]] = ()
                          ) -> alt.LayerChart:
    """Rows per batch over time, each point labelled with its count; small (not judged) batches as crosses."""
    rows = [{"at": p["at"], "batch": f"Batch {p['batch_id']}", "rows": p["rows"],
             "size": "judged" if p.get("judged") else "not judged (too few rows)"} for p in points]
    sizes = [s for s in ("judged", "not judged (too few rows)") if any(row["size"] == s for row in rows)] or ["judged"]
    base = alt.Chart(_data(rows)).encode(x=TIME_AXIS, y=alt.Y("rows:Q", title="Rows in the batch"))
    layers = [base.mark_line(color=REFERENCE_COLOUR),
              base.mark_point(filled=True, size=70, opacity=1).encode(
                  shape=alt.Shape("size:N", title="Batch", scale=alt.Scale(
                      domain=sizes, range=["circle" if s == "judged" else "cross" for s in sizes])),
                  color=alt.Color("size:N", title="Batch", scale=alt.Scale(
                      domain=sizes, range=["#4c78a8" if s == "judged" else "#9e9e9e" for s in sizes])),
                  tooltip=[alt.Tooltip("batch:N", title="Batch"), alt.Tooltip("rows:Q", title="Rows", format=","),
                           alt.Tooltip("size:N", title="Drift")]),
              base.mark_text(align="left", dx=6, dy=-8, fontSize=10).encode(text=alt.Text("rows:Q", format=","))]
    return _time_chart(layers, events, "Volume: rows per batch")


def automation_timeline_chart(points: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]] = ()
                              ) -> alt.LayerChart:
    """A coding model's share of records coded automatically, and the accuracy of those codes once labelled."""
    measures = ["Share coded automatically", "Accuracy of the automatic codes"]
    rows = []
    for p in points:
        if p.get("automation_rate") is not None:
            rows.append({"at": p["at"], "batch": f"Batch {p['batch_id']}", "measure": measures[0],
                         "value": p["automation_rate"], "low": None, "high": None})
        if p.get("auto_accuracy") is not None:
            rows.append({"at": p["at"], "batch": f"Batch {p['batch_id']}", "measure": measures[1],
                         "value": p["auto_accuracy"], "low": p.get("auto_low"), "high": p.get("auto_high")})
    legend = {"title": "Line", "scale": alt.Scale(domain=measures), "legend": alt.Legend(labelLimit=300)}
    base = alt.Chart(_data(rows)).encode(
        x=TIME_AXIS, y=alt.Y("value:Q", title="Share", scale=_share_scale(), axis=alt.Axis(format="%")),
        color=alt.Color("measure:N", **legend),
        tooltip=[alt.Tooltip("batch:N", title="Batch"), alt.Tooltip("measure:N", title="Measure"),
                 alt.Tooltip("value:Q", title="Value", format=".1%"),
                 alt.Tooltip("low:Q", title="95% interval from", format=".1%"),
                 alt.Tooltip("high:Q", title="95% interval to", format=".1%")])
    layers = [base.mark_line().encode(strokeDash=alt.StrokeDash("measure:N", **legend)),
              base.mark_point(filled=True, size=60, opacity=1).encode(shape=alt.Shape("measure:N", **legend)),
              base.transform_filter("isValid(datum.low)").mark_errorbar(ticks=True).encode(
                  y=alt.Y("low:Q", title="Share"), y2="high:Q"),
              base.mark_text(align="left", dx=7, fontSize=10).encode(text=alt.Text("value:Q", format=".0%"),
                                                                      color=alt.value("black"))]
    return _time_chart(layers, events, "Automatic coding: how many records, how accurately")
