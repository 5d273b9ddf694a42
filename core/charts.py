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
    return alt.layer(bars, labels, title=f"Most frequent values of {column_name}").properties(
        width=WIDTH, height=BAR_HEIGHT * max(len(rows), 1))


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
        width=WIDTH, height=BAR_HEIGHT * max(len(rows), 1))


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
