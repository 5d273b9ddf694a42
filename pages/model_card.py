"""Model card: what the store knows about a model, completed by its builder, exported for others."""

import streamlit as st

from app import auth, governance_views, navigation, report_views, resources, state, widgets
from core import model_card
from core.errors import DomainError
from core.models import Role

user = auth.require_user()
project = widgets.require_project()
st.title("Model card")
st.write("The card describes the model for everyone who relies on it. Facts the store knows are filled in "
         "automatically; you write the rest. Every save is kept as a revision.")

run = governance_views.choose_trained_run(project.id)
if run is None:
    st.info("No model has been trained in this project yet, so there is no card to write.")
    st.page_link(navigation.page_for("train.py"), label="Train a model", icon=":material/model_training:")
    st.stop()
if notice := state.pop(state.NOTICE):
    st.success(notice)

with resources.db_session() as session:
    document = model_card.card_document(session=session, run_id=run.id)
    revisions = model_card.list_revisions(session=session, run_id=run.id)
completeness = document.completeness
st.progress(completeness.percent / 100, text=f"Completeness: {completeness.percent}% of the required text")
if completeness.missing:
    st.caption("Still missing: " + widgets.md(", ".join(completeness.missing)))

can_edit = user.has_role(Role.builder, Role.admin)
tabs = st.tabs(["Edit", "Read", "History", "Export"] if can_edit else ["Read", "History", "Export"])
if can_edit:
    with tabs[0]:
        governance_views.card_editor(document, user)
    tabs = tabs[1:]
with tabs[0]:
    governance_views.card_sections(document)
with tabs[1]:
    if not revisions:
        st.caption("Not saved yet.")
    for revision in revisions:
        with st.expander(f"Revision {revision.number} · {revision.created_by_name} · "
                         f"{revision.created_at:%Y-%m-%d %H:%M} UTC"):
            st.dataframe(revision.changes, hide_index=True, key=f"changes_{revision.number}")
with tabs[2]:
    slug = f"model_card_run_{run.id}"
    report_views.download_button(user, "model-card", subject_label=run.label, key="card_report_pdf", run_id=run.id,
                                 label="Model card report (PDF)")
    st.download_button("Download as Markdown", model_card.to_markdown(document), file_name=f"{slug}.md",
                       mime="text/markdown", icon=":material/download:")
    try:
        data, errors = model_card.export_json(settings=resources.settings(), document=document)
    except DomainError as error:
        st.warning(widgets.md(error))
    else:
        if errors:
            st.error("The JSON export does not validate against the Model Card Toolkit schema, so it is not "
                     "offered:\n\n" + "\n".join(f"- {widgets.md(e)}" for e in errors))
        else:
            st.download_button("Download as Model Card Toolkit JSON", data, file_name=f"{slug}.json",
                               mime="application/json", icon=":material/data_object:")
            st.caption("Validated against the Model Card Toolkit schema v0.0.2.")
