"""Responsible-ML checklist: the builder's self-assessment of a model version, with evidence from the store."""

import streamlit as st

from app import auth, governance_views, navigation, report_views, resources, state, widgets
from core import checklist, registry, review
from core.errors import DomainError
from core.models import Role

user = auth.require_user()
project = widgets.require_project()
st.title("Responsible-ML checklist")
st.write("Answer each question for the model version, using the evidence Steward gathered from the store. "
         "When every required item is answered, submit it: a colleague reviews it before the model can go live.")
builder = user.has_role(Role.builder, Role.admin)

with resources.db_session() as session:
    names = registry.model_names(session=session, project_id=project.id)
    registered_runs = {v.run_id for v in registry.list_versions(session=session, project_id=project.id)}
if builder:
    with st.expander("Register a trained model for assessment", icon=":material/add_circle:",
                     expanded=not registered_runs):
        run = governance_views.choose_trained_run(project.id)
        if run is None:
            st.info("Train a model first.")
        elif run.id in registered_runs:
            st.caption("This run is registered already; pick it under Model version below.")
        else:
            with st.form("register_form"):
                name = st.text_input("Model name", value=names[0] if names else run.target,
                                     help="A new name starts a new model; an existing name adds its next version.")
                if st.form_submit_button("Register and start the self-assessment", type="primary"):
                    try:
                        with resources.db_session() as session:
                            version = registry.register_run(session=session, actor=user, run_id=run.id,
                                                            model_name=name)
                            checklist.start_assessment(session=session, actor=user, version_id=version.id)
                    except DomainError as error:
                        governance_views.show_error(error)
                    else:
                        state.put(state.VERSION_ID, version.id)
                        st.rerun()

version = governance_views.choose_version(project.id, key="checklist_version")
if version is None:
    st.info("No model version is registered in this project yet.")
    st.stop()
with resources.db_session() as session:
    view = checklist.get_assessment(session=session, version_id=version.id)
if view is None:
    st.info("This model version has no self-assessment yet.")
    if builder and st.button("Start the self-assessment", type="primary"):
        try:
            with resources.db_session() as session:
                checklist.start_assessment(session=session, actor=user, version_id=version.id)
        except DomainError as error:
            governance_views.show_error(error)
        else:
            st.rerun()
    st.stop()

with resources.db_session() as session:
    board = review.dashboard(session=session, settings=resources.settings(), version_id=version.id)
    rounds = review.round_views(session=session, version_id=version.id)
governance_views.dashboard(board)
report_views.download_button(user, "review", subject_label=version.label, key="checklist_review_pdf",
                             version_id=version.id)
if view.reopened_reason:
    st.info(widgets.md(view.reopened_reason), icon=":material/history:")
last = rounds[-1] if rounds else None
if last and last.decision:
    message = f"Round {last.number}: {review.DECISIONS[last.decision]} by {widgets.md(last.decided_by_name)}."
    for label, text in (("Conditions", last.conditions), ("Comment", last.comment)):
        if text:
            message += f"\n\n{label}: {widgets.md(text)}"
    (st.success if last.decision.startswith("approve") else st.warning)(message, icon=":material/gavel:")

if view.editable and builder:
    if st.button("Submit for review", type="primary", icon=":material/send:"):
        try:
            with resources.db_session() as session:
                review.submit(session=session, settings=resources.settings(), actor=user, version_id=version.id)
        except DomainError as error:
            governance_views.show_error(error)
        else:
            st.rerun()
elif view.status == "in_review":
    st.caption("Submitted: answers and evidence are frozen until the reviewer decides.")
if view.status in ("approved", "in_review") and user.has_role(Role.reviewer, Role.admin):
    st.page_link(navigation.page_for("review.py"), label="Open the peer review", icon=":material/rate_review:")

evidence = governance_views.checklist_evidence(version.id)
template = checklist.load_template()
verdicts = last.verdicts if last else {}
tabs = st.tabs([f"{code} · {name}" for code, name in template.dimensions.items()])
for tab, code in zip(tabs, template.dimensions, strict=True):
    with tab:
        for item in (i for i in template.items if i.dimension == code):
            answer = view.items[item.code]
            done = bool(answer.answer and answer.justification.strip()) or not item.required
            with st.expander(governance_views.item_label(item, evidence[item.code].status, done)):
                st.caption(f"Stage: {template.stages.get(item.stage, item.stage)}"
                           + ("" if item.required else " (answered in operation; optional before the first review)")
                           + f" · Rule: {widgets.md(item.rule)}")
                governance_views.evidence(evidence[item.code], key=f"ev_{item.code}")
                governance_views.reviewer_note(verdicts.get(item.code))
                if view.editable and builder:
                    governance_views.answer_form(view, item, user)
                else:
                    st.markdown(f"**Answer:** {checklist.ANSWERS.get(answer.answer, '—')}")
                    st.markdown(widgets.md(answer.justification) or ":gray[_no justification_]")
