"""Reports: PDF reports for managers, to read in five minutes and file."""

import streamlit as st

from app import auth, report_views, resources, state, widgets
from core import reports
from core.errors import DomainError

user = auth.require_user()
project = widgets.require_project()
st.title("Reports")
st.write("Each report starts with one page in plain language, then the details. Every page says what it describes, "
         "who generated it and when; generating one is recorded in the audit trail.")

kind = st.radio("Report", list(reports.KINDS), format_func=reports.KINDS.get, horizontal=True, key="reports_kind")
st.caption(report_views.KIND_HELP[kind])
subject = report_views.choose_subject(kind, project)
if subject is not None and st.button("Generate the report", type="primary", icon=":material/picture_as_pdf:"):
    try:
        with st.spinner("Writing the PDF…"), resources.db_session() as session:
            made = reports.render_report(session=session, settings=resources.settings(), actor=user, kind=kind,
                                         **subject)
    except DomainError as error:
        st.error(widgets.md(error), icon=":material/error:")
    else:
        state.put(state.REPORT_SHA256, made.sha256)

chosen = state.get(state.REPORT_SHA256)
with resources.db_session() as session:
    latest = next((r for r in reports.recent_reports(session=session, actor=user, limit=50) if r.sha256 == chosen),
                  None)
    data = reports.load_pdf(session=session, settings=resources.settings(), actor=user, sha256=chosen) \
        if latest else None
if latest is not None:
    st.success(f"{latest.title} of {widgets.md(latest.subject)}: {latest.pages} pages, generated "
               f"{latest.generated_at:%Y-%m-%d %H:%M} UTC. SHA-256 {latest.sha256[:16]}…",
               icon=":material/task:")
    st.download_button("Download the PDF", data, file_name=latest.filename, mime="application/pdf",
                       icon=":material/download:", type="primary", on_click="ignore")
report_views.recent(user, project)
