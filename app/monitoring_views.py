"""The pieces of the Monitoring page: project overview, a model's dashboards, its batches and one batch's report."""

from datetime import timedelta

import pandas as pd
import streamlit as st
import streamlit.components.v1 as components

from app import navigation, resources, state, widgets
from core import charts, jobs, monitoring, registry
from core.errors import DomainError
from core.models import ProjectPublic, Role, UserPublic

HEALTH_WORDS = {"alert": ":material/error: Alert", "warning": ":material/warning: Warning",
                "ok": ":material/check_circle: OK", "no data": ":material/hourglass_empty: No batches yet"}
HEALTH_TEXT = {"alert": "ALERT", "warning": "warning", "ok": "ok", "no data": "no batches yet"}
VERDICT_TEXT = {"drift": "▲ drift", "no drift": "no drift", "not judged": "~ not judged", "not compared": "–"}


def _when(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment is not None else "–"


def _share(value) -> str:
    return "–" if value is None else f"{value:.0%}"


def _percent(value) -> str:
    return "–" if value is None else f"{value:.1%}"


def _can_write(user: UserPublic) -> bool:
    return user.has_role(Role.builder, Role.admin)


def notice() -> None:
    """A success message saved before the rerun that shows what changed."""
    if message := state.pop(state.NOTICE):
        st.success(message)


# ── project overview ────────────────────────────────────────────────────────────────────────────────


def overview(project: ProjectPublic) -> list[monitoring.ModelHealth]:
    """Every model of the project with its health, those needing attention first; stops when there is none."""
    with resources.db_session() as session:
        found = monitoring.project_health(session=session, project_id=project.id)
    if not found:
        st.info("No model is registered in this project yet. Once a model is in production and scores data, its "
                "batches are compared with its training data here.")
        if any(spec.file == "registry.py" for spec in navigation.PAGES):
            st.page_link(navigation.page_for("registry.py"), label="Go to the Model registry",
                         icon=":material/inventory_2:")
        st.stop()
    st.dataframe(pd.DataFrame([{
        "Model": h.name, "Health": HEALTH_TEXT[h.health], "Why": " ".join(h.reasons),
        "In production": f"v{h.production}" if h.production else "–", "Batches": h.batches,
        "Last batch": _when(h.last_batch_at), "Open alerts": h.open_alerts,
        "Newest judged drift share": _share(h.drift_share)} for h in found]),
        hide_index=True, width="stretch",
        column_config={"Why": st.column_config.TextColumn(width="large")})
    return found


def choose_model(found: list[monitoring.ModelHealth]) -> monitoring.ModelHealth:
    names = [h.name for h in found]
    name = st.selectbox("Model", names, key="monitor_model",
                        format_func=lambda n: f"{n} ({HEALTH_TEXT[next(h.health for h in found if h.name == n)]})")
    health = next(h for h in found if h.name == name)
    message = f"**{HEALTH_WORDS[health.health]}** — " + " ".join(widgets.md(r) for r in health.reasons)
    {"alert": st.error, "warning": st.warning}.get(health.health, st.info)(message)
    return health


# ── dashboards ──────────────────────────────────────────────────────────────────────────────────────


def dashboards(health: monitoring.ModelHealth) -> None:
    with resources.db_session() as session:
        line = monitoring.timeline(session=session, model_id=health.model_id)
    points = line["points"]
    if not points:
        st.info("No batch has been scored with this model yet. Score data on the Predict page (or with "
                "`steward predict`); every batch is compared with the training data automatically.")
        return
    threshold = next((p["threshold"] for p in points if p.get("threshold")), 0.5)
    events = line["events"]
    st.altair_chart(charts.drift_share_timeline_chart(points, events, threshold), width="content")
    st.caption("Each point is a scored batch: the share of the model's input columns whose distribution differs from "
               "the training data. Batches too small to judge are drawn as crosses on the axis. Dashed lines with a "
               "marker at the top are events: ◆ a version went into production, ▲ an alert, ■ a retraining run.")
    if line["cells"]:
        st.altair_chart(charts.drift_heatmap_chart(line["cells"]), width="content")
        st.caption("Each cell is one column in one batch; the number is the drift score of the method evidently "
                   "uses for that column (see the batch's report), the shade how far it is past its threshold.")
    if any(p.get("value") is not None for p in points):
        st.altair_chart(charts.performance_timeline_chart(points, events, line["training"]), width="content")
    else:
        st.caption(":material/info: Performance appears here once true values are uploaded for a batch (Batches "
                   "tab).")
    st.altair_chart(charts.volume_timeline_chart(points, events), width="content")
    if line["task"] == "text":
        st.altair_chart(charts.automation_timeline_chart(points, events), width="content")


# ── batches ─────────────────────────────────────────────────────────────────────────────────────────


def _performance_text(report: monitoring.ReportView) -> str:
    found = report.primary_performance()
    if not found:
        return "–"
    low, high = found.get("low"), found.get("high")
    interval = f" ({low:.3f}–{high:.3f})" if low is not None and high is not None else ""
    return f"{registry.SHORT_METRICS.get(found['metric'], found['metric'])} {found['value']:.3f}{interval}"


def _verdict(report: monitoring.ReportView) -> str:
    if report.status != "finished":
        return {"missing": "no report", "failed": "report failed"}.get(report.status, report.status)
    if not report.judged:
        return "~ not judged"
    return "▲ drift" if report.dataset_drift else "no drift"


def batches(health: monitoring.ModelHealth) -> monitoring.ReportView | None:
    """The model's batches as a table; returns the one chosen for details."""
    with resources.db_session() as session:
        found = monitoring.list_reports(session=session, model_id=health.model_id)
    if not found:
        st.info("No batch has been scored with this model yet.")
        return None
    st.dataframe(pd.DataFrame([{
        "Batch": r.batch_id, "Scored": _when(r.batch_created_at), "Version": f"v{r.version_number}",
        "Channel": r.channel, "Rows": r.rows, "Verdict": _verdict(r),
        "Drifted columns": (f"{r.drifted_columns} of {len(r.columns)}" if r.finished and r.judged else "–"),
        "Prediction drift": {True: "▲ yes", False: "no"}.get(r.prediction_drift.get("drifted"), "–"),
        "Performance": _performance_text(r), "Labels": "yes" if r.labels_sha256 else "–"} for r in found]),
        hide_index=True, width="stretch")
    ids = [r.batch_id for r in found]
    chosen = st.selectbox("Batch", ids, key=f"monitor_batch_{health.model_id}",
                          format_func=lambda i: next(r.label for r in found if r.batch_id == i))
    return next(r for r in found if r.batch_id == chosen)


def _running_job(report: monitoring.ReportView):
    if report.job_id is None:
        return None
    with resources.db_session() as session:
        job = jobs.get_job(session=session, job_id=report.job_id,
                           stale_after=timedelta(seconds=resources.settings().job_stale_seconds))
    return None if job.finished else job


def _columns_table(report: monitoring.ReportView) -> None:
    quality = (report.quality or {}).get("columns") or {}
    rows = []
    for column in report.columns:
        found = quality.get(column["column"]) or {}
        outside = (found.get("below_range") or 0) + (found.get("above_range") or 0)
        rows.append({
            "Column": column["column"], "Type": column.get("type", ""), "Method": column.get("method_name") or "–",
            "Score": column.get("score"), "Threshold": column.get("threshold"),
            "Verdict": VERDICT_TEXT.get(column["verdict"], column["verdict"]),
            "Empty (batch)": _percent(found.get("missing_share")),
            "Empty (training)": _percent(found.get("reference_missing_share")),
            "New categories / out of range": (f"{found['unseen']:,} new" if "unseen" in found else
                                              f"{outside:,} outside" if "below_range" in found else "–"),
            "Note": column.get("note") or ""})
    table = pd.DataFrame(rows)
    if not table["Note"].str.len().any():
        table = table.drop(columns="Note")
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "Score": st.column_config.NumberColumn(format="%.4f"), "Threshold": st.column_config.NumberColumn(format="%g")})


def _prediction_drift(report: monitoring.ReportView) -> None:
    found = report.prediction_drift or {}
    for column in found.get("columns") or []:
        score = "–" if column.get("score") is None else f"{column['score']:.4f}"
        st.markdown(f"- **Prediction drift, {widgets.md(column['column'])}**: {widgets.md(column.get('method_name'))} "
                    f"{score} (threshold {column.get('threshold')}): "
                    f"{VERDICT_TEXT.get(column['verdict'], column['verdict'])}")
    if found.get("automation_rate") is not None:
        reference = found.get("reference_automation_rate")
        st.markdown(f"- **Coded automatically**: {found['automation_rate']:.1%} of the records"
                    + (f" (test rows at training: {reference:.1%})" if reference is not None else ""))


def _performance(report: monitoring.ReportView) -> None:
    perf = report.performance
    if not perf:
        return
    st.markdown(f"**Performance** on {perf['labelled_rows']:,} of {perf['rows']:,} rows with a true value "
                f"(matched by {widgets.md(perf['matched_by'])}, from {widgets.md(perf['source'])}, uploaded by "
                f"{widgets.md(perf['uploaded_by'])})")
    training = perf.get("training") or {}
    st.dataframe(pd.DataFrame([{
        "Metric": registry.SHORT_METRICS.get(name, name), "This batch": m.get("value"), "95% interval": (
            f"{m['low']:.3f} – {m['high']:.3f}" if m.get("low") is not None else "–"),
        "Training test set": (training.get(name) or {}).get("value")}
        for name, m in perf["metrics"].items()]), hide_index=True, width="stretch", column_config={
        "This batch": st.column_config.NumberColumn(format="%.4f"),
        "Training test set": st.column_config.NumberColumn(format="%.4f")})
    coding = perf.get("coding") or {}
    if coding:
        auto, manual = coding.get("automatic") or {}, coding.get("manual") or {}
        accuracy = "–" if auto.get("accuracy") is None else (
            f"{auto['accuracy']:.1%} (95% interval {auto['low']:.1%} – {auto['high']:.1%})")
        st.markdown(f"- **Automation rate**: {coding['automation_rate']:.1%} of the records were coded automatically "
                    f"(threshold {coding.get('coding_threshold')})\n"
                    f"- **Accuracy of the automatic codes**: {accuracy}, on {auto.get('labelled', 0):,} records with "
                    f"a true code\n- **Accuracy of the codes left to a person**: "
                    + ("–" if manual.get("accuracy") is None else f"{manual['accuracy']:.1%}"))


@st.cache_data(max_entries=4, show_spinner="Loading the full report…")
def _html(sha256: str) -> str:
    from core.artifacts import ArtifactStore

    return ArtifactStore(resources.settings().artifacts_path).read_bytes(sha256).decode("utf-8")


def _evidently(report: monitoring.ReportView, user: UserPublic) -> None:
    st.markdown("##### Full evidently report")
    if report.html_sha256:
        html = _html(report.html_sha256)
        sizes = report.quality.get("html") or {}
        if sizes.get("sampled"):
            st.caption(f"Made by evidently on seeded samples ({sizes['reference_rows']:,} training rows, "
                       f"{sizes['current_rows']:,} batch rows); the table above uses every row.")
        st.download_button("Download the full report (HTML)", html.encode("utf-8"),
                           file_name=f"drift_report_batch_{report.batch_id}.html", mime="text/html",
                           key=f"monitor_html_download_{report.batch_id}", icon=":material/download:")
        if st.toggle("Show the full report here", key=f"monitor_html_show_{report.batch_id}"):
            components.html(html, height=900, scrolling=True)
        return
    st.caption("evidently's own interactive report (distributions of every column) is made on request: loading "
               "evidently takes a little while.")
    if st.button("Make the full evidently report", key=f"monitor_html_make_{report.batch_id}",
                 disabled=not report.finished, icon=":material/summarize:"):
        try:
            with resources.db_session() as session:
                monitoring.request_html(session=session, settings=resources.settings(), runner=resources.job_runner(),
                                        actor=user, batch_id=report.batch_id)
        except DomainError as error:
            st.error(widgets.md(error))
        else:
            st.rerun()


def _recompute(report: monitoring.ReportView, user: UserPublic) -> None:
    if st.button("Recompute this report", key=f"monitor_recompute_{report.batch_id}", icon=":material/refresh:",
                 help="Compare the batch with the training data again and make the full evidently report."):
        try:
            with resources.db_session() as session:
                monitoring.recompute(session=session, settings=resources.settings(), runner=resources.job_runner(),
                                     actor=user, batch_id=report.batch_id)
        except DomainError as error:
            st.error(widgets.md(error))
        else:
            st.rerun()


def _labels_form(report: monitoring.ReportView, user: UserPublic) -> None:
    st.markdown("##### True values arrived?")
    if not _can_write(user):
        st.caption("Builders and administrators upload the true values of a batch.")
        return
    st.write("Upload a file with the true values of this batch's rows (a column named like the model's target). "
             "Rows are matched by a key column both have, or by their order.")
    with st.form(f"monitor_labels_{report.batch_id}", clear_on_submit=True):
        upload = st.file_uploader("File with the true values", type=["csv", "tsv", "txt", "xlsx", "parquet"],
                                  key=f"monitor_labels_file_{report.batch_id}")
        how = st.radio("Match rows by", ["a key column", "row order"], horizontal=True,
                       key=f"monitor_labels_how_{report.batch_id}")
        key = st.text_input("Key column (when matching by a key column)", key=f"monitor_labels_key_{report.batch_id}",
                            placeholder="e.g. person_id")
        submitted = st.form_submit_button("Add the true values", type="primary")
    if not submitted:
        return
    if upload is None:
        st.warning("Choose a file first.")
        return
    if how == "a key column" and not key.strip():
        st.warning("Type the name of the key column, or match by row order.")
        return
    try:
        with resources.db_session() as session:
            updated = monitoring.attach_labels(session=session, settings=resources.settings(), actor=user,
                                               batch_id=report.batch_id, filename=upload.name, data=upload.getvalue(),
                                               key=key if how == "a key column" else None)
    except DomainError as error:
        st.error(widgets.md(error))
        return
    perf = updated.performance
    state.put(state.NOTICE, f"Added true values for {perf['labelled_rows']:,} of {perf['rows']:,} rows of batch "
                            f"{report.batch_id}.")
    st.rerun()


def batch_report(report: monitoring.ReportView, user: UserPublic) -> None:
    """One batch: its report's state, the compact drift table, quality, performance, the full report and labels."""
    running = _running_job(report)
    if running is not None:
        widgets.follow_job(running.id, user, key="monitor_job")
    st.markdown(f"**{widgets.md(report.label)}**, scored by {widgets.md(report.model_name)} v{report.version_number} "
                f"through the {widgets.md(report.channel)} channel ({widgets.md(report.source) or 'no file name'}).")
    if report.status == "missing":
        st.info("This batch has no monitoring report yet.")
    elif report.status == "failed":
        st.error(f"The report could not be computed: {widgets.md(report.error)}")
    elif report.finished:
        st.caption(f"Method: {widgets.md(report.method)}")
        if not report.judged:
            st.info(f"This batch has {report.rows:,} rows, fewer than the {report.quality['thresholds']['min_rows']:,} "
                    "needed to judge drift: its scores are shown, but no verdict is drawn and no alert raised.")
        elif report.dataset_drift:
            st.warning(f"**Drift**: {report.drifted_columns} of {len(report.columns)} input columns drifted "
                       f"({report.drift_share:.0%}; the batch counts as drifted from "
                       f"{report.drift_share_threshold:.0%}).")
        else:
            st.success(f"{report.drifted_columns} of {len(report.columns)} input columns drifted "
                       f"({report.drift_share:.0%}); the batch counts as drifted from "
                       f"{report.drift_share_threshold:.0%}.")
        _columns_table(report)
        _prediction_drift(report)
        for finding in report.quality.get("findings") or []:
            st.markdown(f"- :material/warning: **Data quality**: {widgets.md(finding)}")
        for note in report.notes:
            st.caption(f":material/info: {widgets.md(note)}")
    _performance(report)
    if _can_write(user) and running is None:
        _recompute(report, user)
    if report.finished and running is None:
        _evidently(report, user)
    _labels_form(report, user)
