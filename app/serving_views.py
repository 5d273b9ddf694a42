"""The pieces of the Predict page: which version scores, a file scored as a job, one typed-in record, history."""

import pandas as pd
import streamlit as st

from app import navigation, resources, state, widgets
from core import charts, jobs, registry, serving
from core.data.reading import ReadOptions
from core.errors import DomainError
from core.models import PredictionBatchPublic, ProjectPublic, UserPublic, VersionStatus
from core.training import runs

STATUS_WORDS = {VersionStatus.production: "in production", VersionStatus.approved: "approved"}


def _registry_link() -> None:
    if any(spec.file == "registry.py" for spec in navigation.PAGES):
        st.page_link(navigation.page_for("registry.py"), label="Go to the Registry", icon=":material/inventory_2:")


def choose_target(project: ProjectPublic) -> serving.ScoringTarget:
    """The model and version to score with (the production version unless an approved one is chosen), or stop."""
    with resources.db_session() as session:
        names = registry.model_names(session=session, project_id=project.id)
    if not names:
        st.info("No model is registered in this project yet. Register a trained run as a model version; once it "
                "is reviewed and promoted to production, it scores data here.")
        _registry_link()
        st.stop()
    left, right = st.columns(2)
    name = left.selectbox("Model", names, key="predict_model")
    with resources.db_session() as session:
        versions = serving.scorable_versions(session=session, project_id=project.id, model_name=name)
    if not versions:
        with resources.db_session() as session:
            try:
                serving.resolve_target(session=session, project_id=project.id, model_name=name)
            except DomainError as error:
                st.warning(widgets.md(error), icon=":material/block:")
        _registry_link()
        st.stop()
    version = right.selectbox("Version", versions, key=f"predict_version_{name}",
                              format_func=lambda v: f"v{v.number} ({STATUS_WORDS.get(v.status, v.status)})")
    with resources.db_session() as session:
        target = serving.resolve_target(session=session, project_id=project.id, model_name=name,
                                        version_number=None if version.status == VersionStatus.production
                                        else version.number)
    run = target.run
    contract = (f"Values are also checked against data contract {target.contract.number} of "
                f"{widgets.md(run.dataset_name)}." if target.contract else
                f"{widgets.md(run.dataset_name)} has no data contract, so only the model's own input columns are "
                "checked.")
    st.caption(f"{widgets.md(target.label)}: a {run.task} model for {widgets.md(run.target)}, trained in run {run.id} "
               f"on {widgets.md(run.dataset_name)} v{run.dataset_number}. It needs these {len(run.feature_types)} "
               f"columns: {widgets.md(', '.join(run.feature_types))}. {contract}")
    return target


# ── a file ──────────────────────────────────────────────────────────────────────────────────────────


def _check_summary(report: dict) -> None:
    """What the check found: columns ignored, categories the model never saw, empty cells, contract warnings."""
    if report["extra_columns"]:
        st.markdown(f"- :material/info: **Ignored** (the model does not use them): "
                    f"{widgets.md(', '.join(report['extra_columns']))}")
    missing = report.get("missing_values") or {}
    if missing:
        listed = ", ".join(f"{name} {count:,}" for name, count in missing.items())
        st.markdown(f"- :material/info: **Empty cells** (the model fills them in): {widgets.md(listed)}")
    for message in report["warnings"]:
        st.markdown(f"- :material/warning: {widgets.md(message)}")


def _preview_check(target: serving.ScoringTarget, user: UserPublic, upload, options: ReadOptions) -> dict | None:
    try:
        with resources.db_session() as session:
            report = serving.check_file(session=session, settings=resources.settings(), actor=user,
                                        project_id=target.project.id, model_name=target.version.model_name,
                                        version_number=target.version.number, filename=upload.name,
                                        data=upload.getvalue(), options=options, loader=resources.run_model)
    except DomainError as error:
        st.error(widgets.md(error))
        return None
    finally:  # a workbook's data may be on another sheet than the first: offer them all, whatever the check said
        sheets = serving.workbook_sheets(settings=resources.settings(), filename=upload.name, data=upload.getvalue())
        if len(sheets) > 1:
            st.selectbox("Sheet", sheets, key="predict_sheet")
    rows = (f"all {report['rows']:,} rows" if report["complete"]
            else f"the first {report['rows']:,} rows (the rest are checked when scored)")
    st.success(f"{widgets.md(report['filename'])} fits {widgets.md(target.label)}: checked {rows}.")
    for note in report["notes"]:
        st.caption(widgets.md(note))
    _check_summary(report)
    return report


def _downloads(batch: PredictionBatchPublic, where: str) -> None:
    settings = resources.settings()
    stem = f"predictions-{batch.model_name}-v{batch.version_number}-batch{batch.id}"
    left, right = st.columns(2)
    # Made when clicked, not on every rerun: a million rows take a few seconds to write.
    left.download_button("Download CSV", lambda: serving.csv_bytes(serving.load_export(settings=settings, batch=batch)),
                         file_name=f"{stem}.csv", mime="text/csv", key=f"predict_{where}_csv_{batch.id}",
                         type="primary", icon=":material/download:")
    right.download_button("Download Parquet",
                          lambda: serving.parquet_bytes(serving.load_export(settings=settings, batch=batch)),
                          file_name=f"{stem}.parquet", mime="application/octet-stream",
                          key=f"predict_{where}_parquet_{batch.id}", icon=":material/download:")
    st.caption("In the CSV, cells that a spreadsheet would run as a formula (starting with =, +, -, @) get a "
               "leading apostrophe; the Parquet file keeps every value as it is.")


def _prediction_counts(batch: PredictionBatchPublic) -> str:
    found = batch.summary["predictions"]
    if "classes" not in found:
        return f"Predictions from {found['min']:,.4g} to {found['max']:,.4g}, mean {found['mean']:,.4g}."
    counts = ", ".join(f"{label} {count:,}" for label, count in found["classes"].items())
    text = f"Predicted: {counts}."
    if "automatic" in found:
        threshold = batch.summary.get("coding_threshold")
        rule = f"probability at least {threshold:.2f}" if threshold is not None else "no threshold chosen yet"
        text += (f" Coding: {found['automatic']:,} automatic, {found['manual']:,} for manual coding ({rule}).")
    return text


def batch_result(batch: PredictionBatchPublic) -> None:
    """A scored file: what was checked, what was predicted, the first rows and the downloads."""
    st.success(f"Scored {batch.rows:,} rows of {widgets.md(batch.source)} with {widgets.md(batch.model_name)} "
               f"v{batch.version_number} (batch {batch.id}).")
    st.write(widgets.md(_prediction_counts(batch)))
    _check_summary(batch.summary["check"])
    try:
        export = serving.load_export(settings=resources.settings(), batch=batch)
    except DomainError as error:
        st.error(widgets.md(error))
        return
    predicted = [c for c in batch.summary["prediction_columns"] if c in export.columns]
    st.caption("The first 20 rows, predictions first; the downloads hold every row with your columns first.")
    st.dataframe(export.head(20)[predicted + [c for c in export.columns if c not in predicted]], hide_index=True)
    _downloads(batch, "latest")


def score_file(target: serving.ScoringTarget, user: UserPublic) -> None:
    job_id = state.get(state.PREDICT_JOB_ID)
    if job_id is not None:
        with resources.db_session() as session:
            job = jobs.get_job(session=session, job_id=job_id)
        if job.project_id == target.project.id:
            job = widgets.follow_job(job_id, user, key="predict", announce_success=False)
            if not job.finished:
                return  # one file at a time: the uploader comes back when this one is done
            if job.status == "succeeded":
                state.put(state.PREDICT_BATCH_ID, job.result["batch_id"])
                state.pop(state.PREDICT_JOB_ID)
    batch_id = state.get(state.PREDICT_BATCH_ID)
    if batch_id is not None:
        with resources.db_session() as session:
            batch = serving.get_batch(session=session, batch_id=batch_id)
        if batch.project_id == target.project.id:
            with st.container(border=True):
                batch_result(batch)

    upload = st.file_uploader("Drop a file to score (CSV, Excel or Parquet, with the model's input columns)",
                              type=["csv", "tsv", "txt", "xlsx", "parquet", "pq"],
                              key=f"predict_upload_{state.get(state.PREDICT_UPLOADS, 0)}",
                              max_upload_size=resources.settings().max_upload_mb)
    if upload is None:
        return
    with st.expander("Reading options"):
        encoding = st.selectbox("Text encoding", ["auto", "utf-8", "cp1252", "latin-1", "utf-16"],
                                key="predict_encoding")
        delimiter = st.selectbox("Separator", ["auto", ",", ";", "\t", "|"], key="predict_delimiter",
                                 format_func=lambda d: {"\t": "tab"}.get(d, d))
    # The sheet picker appears below once a workbook with several sheets is read; its choice is read back here.
    options = ReadOptions(encoding=encoding, delimiter=delimiter, sheet=st.session_state.get("predict_sheet"))
    report = _preview_check(target, user, upload, options)
    if report is None:
        return
    if st.button("Score all rows", type="primary", key="predict_score", icon=":material/play_arrow:"):
        try:
            with resources.db_session() as session:
                job = serving.start_batch(session=session, settings=resources.settings(),
                                          runner=resources.job_runner(), actor=user, project_id=target.project.id,
                                          model_name=target.version.model_name,
                                          version_number=target.version.number, filename=upload.name,
                                          data=upload.getvalue(), options=options)
        except DomainError as error:
            st.error(widgets.md(error))
        else:
            state.put(state.PREDICT_JOB_ID, job.id)
            state.pop(state.PREDICT_BATCH_ID)
            state.put(state.PREDICT_UPLOADS, state.get(state.PREDICT_UPLOADS, 0) + 1)  # an empty uploader next
            st.rerun()


# ── one record ──────────────────────────────────────────────────────────────────────────────────────


def score_record(target: serving.ScoringTarget, user: UserPublic) -> None:
    """A form made from the model's input columns; the prediction and why, read back from the stored batch."""
    run = target.run
    fields = runs.record_form_fields(run=run, test=resources.run_test_set(run))
    with st.form("predict_record"):
        values = {}
        columns = st.columns(2)
        for position, field in enumerate(fields):
            where, key = columns[position % 2], f"predict_field_{run.id}_{field['name']}"
            if field["kind"] == "number":
                values[field["name"]] = where.number_input(field["name"], value=field["default"], key=key)
            elif field["kind"] == "choice":
                choices = field["choices"]
                index = choices.index(field["default"]) if field["default"] in choices else 0
                values[field["name"]] = where.selectbox(field["name"], choices, index=index, key=key)
            else:
                values[field["name"]] = where.text_area(field["name"], key=key)
        submitted = st.form_submit_button("Predict", type="primary")
    if submitted:
        try:
            with resources.db_session() as session:
                result = serving.score_records(session=session, settings=resources.settings(), actor=user,
                                               project_id=target.project.id, model_name=target.version.model_name,
                                               version_number=target.version.number, records=[values],
                                               channel="form", source="one record typed in",
                                               loader=resources.run_model)
        except DomainError as error:
            st.error(widgets.md(error))
            return
        state.put(state.PREDICT_RECORD_BATCH_ID, result.batch.id)
    batch_id = state.get(state.PREDICT_RECORD_BATCH_ID)
    if batch_id is None:
        return
    with resources.db_session() as session:
        batch = serving.get_batch(session=session, batch_id=batch_id)
    if batch.version_id != target.version.id:
        return  # a record scored with another version
    record_result(batch, target)


def record_result(batch: PredictionBatchPublic, target: serving.ScoringTarget) -> None:
    run = target.run
    rows = serving.load_rows(settings=resources.settings(), batch=batch)
    predicted = rows["__predicted__"].iloc[0]
    shown = f"{predicted:,.4g}" if run.task == "regression" else str(predicted)
    lines = [f"**Prediction: {widgets.md(shown)}**"]
    if run.classes:
        probability = rows[f"__proba__{predicted}"].iloc[0]
        lines.append(f"probability {probability:.2f}")
    if "__coding__" in rows:
        lines.append(f"coding: {rows['__coding__'].iloc[0]}")
    st.markdown(" · ".join(lines))
    for message in batch.summary["check"]["warnings"]:
        st.markdown(f"- :material/warning: {widgets.md(message)}")
    local = runs.explain_record(settings=resources.settings(), run=run, model=resources.run_model(run),
                                test=resources.run_test_set(run), record=rows[list(run.feature_types)])
    st.info(widgets.md(local["sentence"]), icon=":material/lightbulb:")
    if run.task == "binary" and str(local["predicted"]) != str(predicted):
        st.caption(f"The explanation describes the most likely class, {widgets.md(local['predicted'])}; with the "
                   f"decision threshold of {run.decision_threshold:.2f} chosen for this model the decision is "
                   f"{widgets.md(predicted)}.")
    st.altair_chart(charts.waterfall_chart(local))


# ── history ─────────────────────────────────────────────────────────────────────────────────────────


def batches(project: ProjectPublic) -> None:
    with resources.db_session() as session:
        found = serving.list_batches(session=session, project_id=project.id)
    if not found:
        st.info("Nothing has been scored in this project yet.")
        return
    st.dataframe(pd.DataFrame([{
        "Batch": b.id, "When (UTC)": b.created_at.strftime("%Y-%m-%d %H:%M"),
        "Model": f"{b.model_name} v{b.version_number}", "Channel": b.channel, "Source": b.source, "Rows": b.rows,
        "By": b.created_by_name, "Input SHA-256": b.input_sha256[:12] + "…"} for b in found]),
        hide_index=True, width="stretch")
    st.caption("Every batch keeps the rows the model saw and its predictions, for monitoring.")
    files = {b.id: b for b in found if b.summary.get("export_sha256")}
    if files:
        chosen = st.selectbox("Download the predictions of a scored file", list(files), key="predict_earlier",
                              format_func=lambda i: f"Batch {i}: {files[i].source} ({files[i].rows:,} rows, "
                                                    f"{files[i].model_name} v{files[i].version_number})")
        _downloads(files[chosen], "earlier")
