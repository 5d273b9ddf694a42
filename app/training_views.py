"""Pieces of the Train and Model results pages: live progress, headline metrics, diagnostics, proof."""

import pandas as pd
import streamlit as st

from app import navigation, resources, state, widgets
from core import charts
from core.errors import DomainError
from core.models import Role, TrainingRunPublic, UserPublic
from core.training import evaluation, runs

VALIDATION_LABELS = {
    "stratified": "Shuffled folds, keeping class shares (usual choice)",
    "grouped": "Groups kept together (e.g. all rows of a household in one fold)",
    "time": "Time-ordered (train on the past, test on the later rows)",
}
SHORT_METRIC_NAMES = {"roc_auc": "ROC AUC", "f1": "F1", "f1_macro": "Macro F1", "rmse": "RMSE", "mae": "MAE",
                      "r2": "R²"}


def _run(run_id: int) -> TrainingRunPublic:
    with resources.db_session() as session:
        return runs.get_run(session=session, run_id=run_id)


def follow_training(run_id: int, user: UserPublic) -> None:
    """The running job's progress and the leaderboard so far; a link to the results when done."""
    run = _run(run_id)
    st.subheader(f"Run {run.id}: predicting {widgets.md(run.target)}")
    if run.job_id is not None:
        widgets.follow_job(run.job_id, user, key="train")

    @st.fragment(run_every=2.0 if run.status in ("queued", "running") else None)
    def _leaderboard() -> None:
        current = _run(run_id)
        if current.leaderboard:
            leaderboard(current)
        if current.status == "succeeded":
            st.page_link(navigation.page_for("run.py"), label="See the results", icon=":material/insights:")

    _leaderboard()


def leaderboard(run: TrainingRunPublic) -> None:
    better = evaluation.GREATER_IS_BETTER[run.primary_metric]
    ranked = sorted(run.leaderboard, key=lambda row: -row["mean"] if better else row["mean"])  # best first
    st.dataframe(pd.DataFrame([{"": "chosen" if row["candidate"] == run.chosen_candidate else "",
                                "Model": row["description"], "Mean": row["mean"], "± (std)": row["std"],
                                "Fit time (s)": row["fit_seconds"]} for row in ranked]),
                 hide_index=True, column_config={
                     "Model": st.column_config.TextColumn(width="large"),
                     "Mean": st.column_config.NumberColumn(evaluation.metric_label(run.primary_metric), format="%.4f"),
                     "± (std)": st.column_config.NumberColumn(format="%.4f"),
                     "Fit time (s)": st.column_config.NumberColumn(format="%.2f")})
    st.caption(f"{len(run.finished_candidates)} of {len(run.candidates)} candidates evaluated by cross-validation "
               "within the time budget.")


def headline(run: TrainingRunPublic) -> None:
    """The chosen model, its test metrics with 95% intervals, and the baseline to beat."""
    chosen = next(row for row in run.leaderboard if row["candidate"] == run.chosen_candidate)
    st.write(f"Chosen model: **{widgets.md(chosen['description'])}**, tested on "
             f"{run.evaluation['n_rows']:,} rows it never saw during the search.")
    metrics = run.evaluation["metrics"]
    names = [run.primary_metric] + [m for m in metrics if m != run.primary_metric]
    columns = st.columns(min(len(names), 4))
    for column, name in zip(columns, names[:4], strict=False):
        value, baseline = metrics[name]["value"], (run.baseline or {}).get(name)
        column.metric(short_metric_name(name), "—" if value is None else f"{value:.3f}",
                      None if value is None or baseline is None else f"{value - baseline:+.3f} vs baseline",
                      delta_color="normal" if evaluation.GREATER_IS_BETTER[name] else "inverse",
                      help=evaluation.metric_label(name))
    # A short header: a long one widens the column past the table, and its numbers end up out of sight.
    dummy = "always the average" if run.task == "regression" else "always the most common answer"
    st.dataframe(pd.DataFrame([
        {"Metric": evaluation.metric_label(name), "Value": m["value"], "95% interval from": m["low"],
         "to": m["high"], "Baseline": (run.baseline or {}).get(name)}
        for name, m in metrics.items()]), hide_index=True,
        column_config={"Baseline": st.column_config.NumberColumn(help=f"A model that gives {dummy}", format="%.3f"),
                       **{name: st.column_config.NumberColumn(format="%.3f")
                          for name in ("Value", "95% interval from", "to")}})


def short_metric_name(name: str) -> str:
    """A metric's name short enough for a headline figure (the full label is its help)."""
    return SHORT_METRIC_NAMES.get(name, name.replace("_", " ").capitalize())


def subgroups(run: TrainingRunPublic) -> None:
    rows = run.evaluation.get("subgroups") or []
    if not rows:
        st.info("No sensitive columns were marked for this data, so there are no subgroup results.")
        return
    st.altair_chart(charts.subgroup_chart(rows))
    st.dataframe(pd.DataFrame([{"Column": r["column"], "Group": r["group"], "Rows": r["count"],
                                "Value": r["value"], "Overall": r["overall"], "Worse than overall by": r["gap"],
                                "Small group": "yes" if r["small"] else ""} for r in rows]), hide_index=True)
    st.caption("Groups with fewer than 30 test rows are marked small: their results are uncertain.")


def diagnostics(run: TrainingRunPublic, user: UserPublic) -> None:
    found = run.evaluation["diagnostics"]
    if run.task == "regression":
        st.altair_chart(charts.residuals_chart(found["residuals"]), width="stretch")
        return
    if run.task == "binary":
        left, right = st.columns(2)
        # Square charts at their own size: stretched, Streamlit squeezes their titles away.
        left.altair_chart(charts.confusion_chart(found["confusion"]), width="content")
        right.altair_chart(charts.roc_chart(found["roc"]), width="content")
        left.altair_chart(charts.pr_chart(found["pr"]), width="content")
        right.altair_chart(charts.calibration_chart(found["calibration"]), width="content")
        _decision_threshold(run, user)
    else:  # many classes: each chart gets the full width
        st.altair_chart(charts.confusion_chart(found["confusion"]), width="content")
        st.altair_chart(charts.coding_tradeoff_chart(found["coding_tradeoff"], run.coding_threshold), width="content")
        _coding_threshold(run, user)


def _save_thresholds(run: TrainingRunPublic, user: UserPublic, **thresholds) -> None:
    try:
        with resources.db_session() as session:
            runs.set_thresholds(session=session, actor=user, run_id=run.id, **thresholds)
    except DomainError as error:
        st.error(widgets.md(error))
    else:
        st.rerun()


def _decision_threshold(run: TrainingRunPublic, user: UserPublic) -> None:
    st.subheader("Decision threshold")
    st.write(f"Records whose probability of {widgets.md(run.classes[1])!s} is at least the threshold are "
             "predicted as such. Move it to trade false alarms against misses.")
    chosen = st.slider("Threshold", 0.0, 1.0, float(run.decision_threshold or 0.5), 0.01, key="run_threshold")
    effect = runs.decision_threshold_effect(run=run, test=resources.run_test_set(run), threshold=chosen)
    counts = effect["confusion"]
    st.write(f"At {chosen:.2f}: {effect['predicted_positive_share']:.1%} of records predicted "
             f"{widgets.md(run.classes[1])}; precision {effect['precision'] or 0:.3f}, recall "
             f"{effect['recall'] or 0:.3f}, accuracy {effect['accuracy']:.3f} "
             f"(true positives {counts['tp']}, false positives {counts['fp']}, true negatives {counts['tn']}, "
             f"false negatives {counts['fn']}).")
    if user.has_role(Role.builder, Role.admin) and chosen != run.decision_threshold:
        if st.button(f"Use {chosen:.2f} as the decision threshold", key="run_save_threshold"):
            _save_thresholds(run, user, decision_threshold=chosen)


def _coding_threshold(run: TrainingRunPublic, user: UserPublic) -> None:
    st.subheader("Automatic coding")
    st.write("Records whose most likely class has at least this probability are coded automatically; the rest "
             "are marked for manual coding.")
    tradeoff = run.evaluation["diagnostics"]["coding_tradeoff"]
    chosen = st.slider("Confidence threshold", 0.0, 0.99, float(run.coding_threshold or 0.0), 0.01,
                       key="run_coding_threshold")
    point = min(tradeoff, key=lambda row: abs(row["threshold"] - chosen))
    accuracy = "—" if point["accuracy"] is None else f"{point['accuracy']:.1%}"
    st.write(f"At {chosen:.2f}: {point['coverage']:.1%} of records coded automatically, {accuracy} of them "
             "correctly (on the test set).")
    if user.has_role(Role.builder, Role.admin):
        left, right = st.columns(2)
        if left.button(f"Use {chosen:.2f}", key="run_save_coding", disabled=chosen == run.coding_threshold):
            _save_thresholds(run, user, coding_threshold=chosen)
        target = evaluation.threshold_for_accuracy(tradeoff, 0.95)
        if right.button("Reach 95% accuracy", key="run_reach_95", disabled=target is None,
                        help=None if target is not None else "No threshold reaches 95% accuracy on the test set."):
            _save_thresholds(run, user, coding_threshold=target)


def reproducibility(run: TrainingRunPublic, user: UserPublic) -> None:
    """What identifies the run, and the certificate from re-executing it."""
    env = run.environment
    st.text(f"Dataset {run.dataset_name} v{run.dataset_number}, SHA-256 {run.dataset_sha256}\n"
            f"Seed {run.seed}; candidates evaluated: {', '.join(run.finished_candidates)}\n"
            f"Model file SHA-256 {run.model_sha256}\nTest predictions hash {run.prediction_hash}\n"
            f"{run.code_version}; Python {env.get('python')}; "
            + ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items() if v and k != "steward"))
    st.caption("Reproduce re-runs the same search on the same data with the same seed, evaluating exactly the "
               "candidates listed above, and checks that the test predictions are identical.")
    with resources.db_session() as session:
        certificate = runs.latest_certificate(session=session, run_id=run.id)
    if certificate is not None and certificate.job_id is not None and certificate.status == "running":
        widgets.follow_job(certificate.job_id, user, key="reproduce")
    elif certificate is not None and certificate.status == "passed":
        st.success(f"Reproducibility certificate {certificate.id}: re-running gave identical predictions "
                   f"({certificate.finished_at:%Y-%m-%d %H:%M} UTC).", icon=":material/verified:")
    elif certificate is not None:
        st.error(f"Reproducibility certificate {certificate.id} failed: the re-run differs.")
        st.json(certificate.differences)
    if user.has_role(Role.builder, Role.reviewer, Role.admin) and st.button("Reproduce this run", key="run_reproduce"):
        try:
            with resources.db_session() as session:
                runs.start_reproduction(session=session, runner=resources.job_runner(), actor=user, run_id=run.id)
        except DomainError as error:
            st.error(widgets.md(error))
        else:
            st.rerun()


def evaluate_elsewhere(run: TrainingRunPublic, user: UserPublic) -> None:
    """Evaluate the model on another labelled file; earlier evaluations are listed."""
    upload = st.file_uploader("A labelled file with the same columns", key="run_evaluate_upload",
                              type=["csv", "tsv", "txt", "xlsx", "parquet", "pq"],
                              max_upload_size=resources.settings().max_upload_mb)
    if upload is not None and st.button("Evaluate on this file", key="run_evaluate"):
        try:
            with resources.db_session() as session:
                runs.evaluate_on_file(session=session, settings=resources.settings(), actor=user, run_id=run.id,
                                      filename=upload.name, data=upload.getvalue())
        except DomainError as error:
            st.error(widgets.md(error))
    with resources.db_session() as session:
        found = runs.list_evaluations(session=session, run_id=run.id)
    for item in found:
        metric = item.result["metrics"].get(run.primary_metric, {})
        st.write(f"**{widgets.md(item.source)}** ({item.rows:,} rows, {item.created_at:%Y-%m-%d %H:%M} UTC): "
                 f"{short_metric_name(run.primary_metric)} {metric.get('value', 0):.3f} "
                 f"(95% interval {metric.get('low') or 0:.3f}–{metric.get('high') or 0:.3f})")


def choose_run(project_id: int) -> TrainingRunPublic | None:
    """The run to show: the one chosen before in this session, else the newest."""
    with resources.db_session() as session:
        found = runs.list_runs(session=session, project_id=project_id)
    if not found:
        return None
    ids = [run.id for run in found]
    current = state.get(state.RUN_ID)
    chosen = st.selectbox("Training run", found, index=ids.index(current) if current in ids else 0,
                          format_func=lambda r: f"{r.label} · {r.status}", key="run_choice")
    state.put(state.RUN_ID, chosen.id)
    # The widget hands back the copy kept when the run was picked: show the run as stored now (new thresholds).
    return found[ids.index(chosen.id)]


def running_run_id(project_id: int, user: UserPublic) -> int | None:
    """The user's newest unfinished run in the project, so a refresh finds the training again."""
    with resources.db_session() as session:
        found = runs.list_runs(session=session, project_id=project_id)
    return next((r.id for r in found if r.created_by_id == user.id and r.status in ("queued", "running")), None)


def explanation_summary(explanation) -> None:
    """How the explanation was made, whether it adds up, and how stable the top features are."""
    stability = explanation.stability
    overlap = stability.get("mean_overlap")
    st.caption(f"{explanation.method} on {explanation.rows_explained:,} test records (seed {explanation.seed}); "
               f"values on the {explanation.scale} scale. "
               + ("They add up to the model's output (checked)." if explanation.additive
                  else f"Warning: they miss the model's output by up to {explanation.additivity_max_error:.2g}."))
    columns = len(explanation.result.get("overall", {}))
    if overlap is not None and columns <= stability["top"]:  # every column is in every top list: 100 % says nothing
        st.caption(f"Stability: not measured. The model has only {columns} input columns, so all of them are in the "
                   f"top {stability['top']} of every model refitted on {stability['folds']} cross-validation folds.")
    elif overlap is not None:
        st.caption(f"Stability: the top {stability['top']} columns agree {overlap:.0%} between models refitted on "
                   f"{stability['folds']} cross-validation folds.")


def text_terms(explanation) -> None:
    if not explanation.text_terms:
        return
    st.subheader("Words that push each class up or down")
    label = st.selectbox("Class", list(explanation.text_terms), key="explain_terms_class")
    terms = explanation.text_terms[label]
    left, right = st.columns(2)
    left.dataframe(pd.DataFrame(terms["up"]).rename(columns={"term": "Raises it", "weight": "Weight"}),
                   hide_index=True)
    right.dataframe(pd.DataFrame(terms["down"]).rename(columns={"term": "Lowers it", "weight": "Weight"}),
                    hide_index=True)


def record_explanation(local: dict, *, actual) -> None:
    """The plain-language sentence first, then the waterfall and, for text models, the words."""
    st.info(widgets.md(local["sentence"]), icon=":material/lightbulb:")
    st.caption(f"Actual value: {widgets.md(actual)}. Contributions are rescaled to the probability scale and add "
               "up from the average prediction to this one." if local["probability"] is not None else
               f"Actual value: {widgets.md(actual)}.")
    st.altair_chart(charts.waterfall_chart(local))
    if local.get("terms", {}).get("terms"):
        st.dataframe(pd.DataFrame(local["terms"]["terms"]).rename(columns={"term": "Word or n-gram",
                                                                           "effect": "Effect"}), hide_index=True)


def typed_record(run: TrainingRunPublic):
    """A form built from the model's input columns; returns the record once submitted, else None."""
    fields = runs.record_form_fields(run=run, test=resources.run_test_set(run))
    with st.form("explain_typed"):
        values = {}
        for field in fields:
            key = f"explain_field_{field['name']}"
            if field["kind"] == "number":
                values[field["name"]] = st.number_input(field["name"], value=field["default"], key=key)
            elif field["kind"] == "choice":
                choices = field["choices"]
                index = choices.index(field["default"]) if field["default"] in choices else 0
                values[field["name"]] = st.selectbox(field["name"], choices, index=index, key=key)
            else:
                values[field["name"]] = st.text_area(field["name"], key=key)
        if not st.form_submit_button("Explain this record", type="primary"):
            return None
    return runs.record_from_form(run=run, values=values)


def export_record(run: TrainingRunPublic, user: UserPublic, local: dict) -> None:
    """Builders and administrators may take one record's explanation out of the app; it is audited."""
    if not user.has_role(Role.builder, Role.admin):
        return
    if st.checkbox("I need this record's explanation outside Steward", key="explain_export_confirm",
                   help="Explanations of single records stay in the app unless you export them on purpose; "
                        "the export is recorded in the audit trail."):
        with resources.db_session() as session:
            data = runs.export_record_explanation(session=session, actor=user, run_id=run.id, explanation=local)
        st.download_button("Download this record's explanation (JSON)", data, file_name=f"run-{run.id}-record.json",
                           mime="application/json", key="explain_export")
