"""UI pieces of the governance pages: model card, checklist evidence, review dashboard."""

from __future__ import annotations

import streamlit as st

from app import resources, state
from app.widgets import md
from core import charts, checklist, model_card, registry, review
from core.errors import DomainError, InvalidInput
from core.models import ModelVersionPublic, TrainingRunPublic, UserPublic
from core.training import runs

STATUS_BADGES = {"pass": ("Pass", "green", ":material/check_circle:"),
                 "warn": ("Warning", "orange", ":material/warning:"),
                 "fail": ("Fail", "red", ":material/cancel:"),
                 "not_applicable": ("Not applicable", "gray", ":material/remove_circle:"),
                 "info": ("Information", "blue", ":material/info:")}
LIGHT_ICONS = {"red": "🔴", "amber": "🟠", "green": "🟢"}
ASSESSMENT_STATUS = {"draft": "Draft: the builder is answering", "in_review": "Waiting for peer review",
                     "changes_requested": "Changes requested by the reviewer", "approved": "Approved",
                     "rejected": "Rejected"}


def show_error(error: DomainError) -> None:
    st.error(md(error), icon=":material/error:")


def choose_trained_run(project_id: int) -> TrainingRunPublic | None:
    """A finished run of the project (the newest unless one was chosen before)."""
    with resources.db_session() as session:
        found = [r for r in runs.list_runs(session=session, project_id=project_id) if r.status == "succeeded"]
    if not found:
        return None
    ids = [run.id for run in found]
    current = state.get(state.RUN_ID)
    chosen = st.selectbox("Trained model", found, index=ids.index(current) if current in ids else 0,
                          format_func=lambda r: r.label, key="card_run_choice")
    state.put(state.RUN_ID, chosen.id)
    return chosen


def choose_version(project_id: int, *, key: str) -> ModelVersionPublic | None:
    with resources.db_session() as session:
        found = registry.list_versions(session=session, project_id=project_id)
    if not found:
        return None
    ids = [v.id for v in found]
    current = state.get(state.VERSION_ID)
    chosen = st.selectbox("Model version", found, index=ids.index(current) if current in ids else 0,
                          format_func=lambda v: f"{v.label} · run {v.run_id} · {v.status.replace('_', ' ')}", key=key)
    state.put(state.VERSION_ID, chosen.id)
    return chosen


def badge(status: str) -> None:
    label, color, icon = STATUS_BADGES.get(status, (status, "gray", None))
    st.badge(label, color=color, icon=icon)


def evidence(found: checklist.Evidence, *, key: str) -> None:
    """One item's evidence: status, sentence, facts, table and chart."""
    badge(found.status)
    st.write(md(found.summary))
    if found.facts:
        st.dataframe([{"": k, "Value": v} for k, v in found.facts.items()], hide_index=True, key=f"{key}_facts")
    if found.table:
        st.dataframe(found.table, hide_index=True, key=f"{key}_table")
    chart = found.chart or {}
    if chart.get("kind") == "subgroups" and chart.get("rows"):
        st.altair_chart(charts.subgroup_chart(chart["rows"]), key=f"{key}_chart")
    elif chart.get("kind") == "bars" and chart.get("rows"):
        st.altair_chart(charts.counts_chart(chart["rows"], chart.get("title", "Rows")), key=f"{key}_chart")
    elif chart.get("kind") == "importance" and chart.get("overall"):
        st.altair_chart(charts.importance_chart(chart["overall"], chart.get("scale", "")), key=f"{key}_chart")


def dashboard(board: review.Dashboard) -> None:
    """Traffic lights per dimension, status, rounds, reviewers and dates."""
    st.markdown(f"**Status:** {ASSESSMENT_STATUS.get(board.status, board.status)}")
    columns = st.columns(len(board.dimensions))
    for column, dimension in zip(columns, board.dimensions, strict=True):
        column.metric(f"{LIGHT_ICONS[dimension['light']]} {dimension['name']}",
                      f"{dimension['open']} open" if dimension["open"] else "in order",
                      help=f"{dimension['items']} items. {review.LIGHTS[dimension['light']]}.")
    facts = [f"Review rounds: {board.rounds}", f"Reviewers: {', '.join(board.reviewers) or '—'}",
             f"Last submitted: {board.submitted_at:%Y-%m-%d}" if board.submitted_at else "Not submitted yet",
             f"Last decision: {board.decided_at:%Y-%m-%d}" if board.decided_at else "No decision yet",
             f"Reassess by: {board.reassess_by:%Y-%m-%d}" if board.reassess_by else "Reassess by: set at approval"]
    st.caption(" · ".join(md(f) for f in facts))
    if board.open_items:
        with st.expander(f"Open items ({len(board.open_items)})"):
            st.dataframe(board.open_items, hide_index=True)


def card_sections(document: model_card.CardDocument) -> None:
    """The card to read: the automatic facts and the builder's text, section by section."""
    auto, text = document.auto, document.content
    details = auto["model_details"]
    by_section: dict[str, list[model_card.CardField]] = {}
    for field in model_card.FIELDS:
        by_section.setdefault(field.section, []).append(field)
    for section, title in model_card.SECTIONS.items():
        st.subheader(title)
        facts = _auto_facts(section, auto, details)
        if facts:
            st.caption(":material/bolt: Filled automatically from the store")
            st.dataframe([{"": k, "Value": str(v)} for k, v in facts.items()], hide_index=True,
                         key=f"read_{section}")
        if section == "metrics":
            st.dataframe([{"Metric": r["metric"] + (" (primary)" if r["primary"] else ""), "Value": r["value"],
                           "95% low": r["low"], "95% high": r["high"], "Dummy baseline": r["baseline"]}
                          for r in auto["metrics"]["rows"]], hide_index=True, key="read_metric_rows")
        if section == "quantitative_analyses" and auto["quantitative_analyses"]["subgroups"]:
            st.altair_chart(charts.subgroup_chart(auto["quantitative_analyses"]["subgroups"]), key="read_subgroups")
        if section == "ethical_considerations":
            risks = text.get(model_card.RISKS_KEY) or []
            if risks:
                st.dataframe([{"Risk": r["name"], "Mitigation": r["mitigation"]} for r in risks], hide_index=True,
                             key="read_risks")
            else:
                st.caption("No risk recorded yet.")
        for field in by_section.get(section, []):
            st.markdown(f"**{field.label}**")
            st.markdown(md(text.get(field.key)) if text.get(field.key) else ":gray[_not written yet_]")


def _auto_facts(section: str, auto: dict, details: dict) -> dict:
    if section == "model_details":
        return {"Model": details["name"], "Project": details["project"], "Owner": details["project_owner"],
                "Trained by": details["trained_by"], "Trained at": f"{details['trained_at']:%Y-%m-%d %H:%M}",
                "Algorithm": details["algorithm"],
                "Parameters": ", ".join(f"{k}={v}" for k, v in details["parameters"].items()) or "—",
                "Seed": details["seed"], "Code version": details["code_version"],
                "Model SHA-256": details["model_sha256"], "Dataset SHA-256": details["dataset_sha256"],
                "Prediction hash": details["prediction_hash"]}
    if section == "factors":
        return {"Sensitive columns": ", ".join(auto["factors"]["sensitive_columns"]) or "none tagged"}
    if section == "evaluation_data":
        evaluation = auto["evaluation_data"]
        return {"Test rows": evaluation["rows"], "Split": evaluation["split"], "Seed": evaluation["seed"]}
    if section == "training_data":
        data, profile = auto["training_data"], auto["training_data"]["profile"]
        return {"Dataset": data["dataset"], "Source file": data["source_file"], "Source": data["source"] or "—",
                "Legal basis": data["legal_basis"] or "—", "Target": data["target"],
                "Features": ", ".join(data["features"]), "Rows × columns": f"{profile['rows']} × {profile['columns']}",
                "Duplicate rows": profile["duplicate_rows"],
                "Most missing": ", ".join(f"{m['column']} {m['missing_share']:.0%}" for m in profile["most_missing"])
                or "nothing missing"}
    if section == "quantitative_analyses":
        facts = {}
        explanation, reproduced = auto["explanation"], auto["reproducibility"]
        if explanation:
            facts["Explanation"] = (f"{explanation['method']} on {explanation['rows']} rows; top features "
                                    f"{', '.join(map(str, explanation['top_features']))}")
            facts["Explanations add up"] = "yes" if explanation["additive"] else "no"
        facts["Reproducibility"] = (f"{reproduced['status']} ({reproduced['checked_at']:%Y-%m-%d})" if reproduced
                                    else "not checked yet")
        return facts
    return {}


def card_editor(document: model_card.CardDocument, user: UserPublic) -> None:
    """The free-text fields in one form; saving is refused if someone else saved since this form was loaded."""
    run_id = document.run_id
    base_key = f"card_base_{run_id}"
    if state.get(base_key) is None:
        state.put(base_key, document.revision.number if document.revision else 0)
    base = state.get(base_key)
    current = document.revision.number if document.revision else 0
    if base != current:
        st.warning(f"Someone saved revision {current} since you opened this card. Reload to edit their version.",
                   icon=":material/sync_problem:")
    if st.button("Reload the card", key=f"card_reload_{run_id}", icon=":material/refresh:"):
        for key in [k for k in st.session_state if str(k).startswith(f"card_{run_id}_")]:
            del st.session_state[key]
        state.pop(base_key)
        st.rerun()
    with st.form(f"card_form_{run_id}"):
        values: dict = {}
        for section, title in model_card.SECTIONS.items():
            fields = [f for f in model_card.FIELDS if f.section == section]
            if not fields and section != "ethical_considerations":
                continue
            st.markdown(f"#### {title}")
            for field in fields:
                values[field.key] = st.text_area(
                    field.label + ("" if field.required else " (optional)"), value=document.content.get(field.key, ""),
                    help=field.help, key=f"card_{run_id}_{field.key}", height=80)
            if section == "ethical_considerations":
                st.caption("Risks to people, groups or the published statistics, each with how it is mitigated.")
                risks = st.data_editor(
                    document.content.get(model_card.RISKS_KEY) or [{"name": "", "mitigation": ""}],
                    num_rows="dynamic", key=f"card_{run_id}_risks", width="stretch",
                    column_config={"name": st.column_config.TextColumn("Risk", width="medium"),
                                   "mitigation": st.column_config.TextColumn("Mitigation", width="large")})
                values[model_card.RISKS_KEY] = [dict(row) for row in risks]
        saved = st.form_submit_button("Save the card", type="primary", icon=":material/save:")
    if saved:
        try:
            with resources.db_session() as session:
                revision = model_card.save_card(session=session, actor=user, run_id=run_id, content=values,
                                                based_on=base)
        except DomainError as error:
            show_error(error)
        else:
            state.put(base_key, revision.number)
            state.put(state.NOTICE, f"Saved revision {revision.number} of the card.")
            st.rerun()


def checklist_evidence(version_id: int) -> dict[str, checklist.Evidence]:
    with resources.db_session() as session:
        return checklist.evidence_for(session=session, settings=resources.settings(), version_id=version_id)


def answer_form(view: checklist.AssessmentView, item: checklist.ChecklistItem, user: UserPublic) -> None:
    """The builder's answer to one item, saved on top of the revision this page loaded."""
    current = view.items[item.code]
    prefix = f"answer_{view.id}_{item.code}"
    base_key = f"{prefix}_base"
    if state.get(base_key) is None:
        state.put(base_key, current.revision)
    options = list(checklist.ANSWERS)
    with st.form(f"{prefix}_form"):
        answer = st.radio("Your answer", options, format_func=checklist.ANSWERS.get, horizontal=True,
                          index=options.index(current.answer) if current.answer in options else None,
                          key=f"{prefix}_answer")
        justification = st.text_area("Justification", value=current.justification, key=f"{prefix}_why",
                                     placeholder="Why, and which evidence supports it.", height=90)
        saved = st.form_submit_button("Save answer", icon=":material/save:")
    if current.updated_by_name:
        st.caption(f"Last saved by {md(current.updated_by_name)} at {current.updated_at:%Y-%m-%d %H:%M} UTC "
                   f"(revision {current.revision}).")
    if saved:
        try:
            with resources.db_session() as session:
                stored = checklist.save_answer(session=session, actor=user, assessment_id=view.id, code=item.code,
                                               answer=answer or "", justification=justification or "",
                                               expected_revision=state.get(base_key))
        except DomainError as error:
            show_error(error)
            if st.button("Reload this item", key=f"{prefix}_reload", icon=":material/refresh:"):
                for key in (f"{prefix}_answer", f"{prefix}_why", base_key):
                    st.session_state.pop(key, None)
                st.rerun()
        else:
            state.put(base_key, stored.revision)
            st.toast(f"Saved {item.code}.", icon=":material/check:")
            st.rerun()


def item_label(item: checklist.ChecklistItem, status: str, done: bool) -> str:
    icon = STATUS_BADGES.get(status, ("", "", ":material/help:"))[2]
    return f"{icon} {item.code} · {item.question}" + ("" if done else " · :orange[unanswered]")


def reviewer_note(verdict: review.VerdictState | None) -> None:
    if verdict is None:
        return
    text = f"**Reviewer ({md(verdict.reviewer_name)}): {review.VERDICTS[verdict.verdict]}.**"
    if verdict.comment:
        text += f" {md(verdict.comment)}"
    (st.success if verdict.verdict == "agree" else st.warning)(text, icon=":material/rate_review:")


def verdict_form(version_id: int, round_number: int, code: str, verdict: review.VerdictState | None,
                 user: UserPublic) -> None:
    """The reviewer's verdict on one item, saved on top of the revision this page loaded."""
    prefix = f"verdict_{version_id}_{round_number}_{code}"
    base_key = f"{prefix}_base"
    if state.get(base_key) is None:
        state.put(base_key, verdict.revision if verdict else 0)
    options = list(review.VERDICTS)
    with st.form(f"{prefix}_form"):
        choice = st.radio("Your verdict", options, format_func=review.VERDICTS.get, horizontal=True,
                          index=options.index(verdict.verdict) if verdict else None, key=f"{prefix}_choice")
        comment = st.text_area("Comment", value=verdict.comment if verdict else "", key=f"{prefix}_comment",
                               height=70, placeholder="Required when you disagree or something needs work.")
        saved = st.form_submit_button("Save verdict", icon=":material/save:")
    if saved:
        try:
            if choice is None:
                raise InvalidInput("Choose a verdict first.")
            with resources.db_session() as session:
                stored = review.save_verdict(session=session, actor=user, version_id=version_id, code=code,
                                             verdict=choice, comment=comment or "",
                                             expected_revision=state.get(base_key))
        except DomainError as error:
            show_error(error)
        else:
            state.put(base_key, stored.revision)
            st.toast(f"Saved your verdict on {code}.", icon=":material/check:")
            st.rerun()
