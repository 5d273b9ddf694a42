"""Model registry: named models and their versions, the gates before production, promotion and rollback."""

import streamlit as st

from app import auth, registry_views, report_views, widgets
from core.models import Role

user = auth.require_user()
project = widgets.require_project()
st.title("Model registry")
st.write("A registered run becomes an immutable version of a named model. A version reaches production only "
         "when its gates pass, and only a manager or administrator who did not build it can promote it; the "
         "version it replaces stays ready as the fallback.")
registry_views.notice()

model = registry_views.choose_model(project)
registry_views.register_panel(project, user, expanded=model is None)
if model is None:
    st.info("No model is registered in this project yet. A builder registers a trained run here.")
    st.stop()

version = registry_views.model_overview(model, user)
report_views.version_reports(user, version, key="registry")
gates, history, lineage, compare, maturity = st.tabs(
    ["Gates and promotion", "History", "Lineage", "Compare versions", "Maturity"])
with gates:
    registry_views.gates_panel(version, user)
    if version.status != "production" and not user.has_role(Role.manager, Role.admin):
        # The promote form is for managers; everyone else is told who promotes and why they cannot.
        st.info("Only a manager or an administrator who did not build this model promotes it to production "
                "(four-eyes rule). Once every gate passes, ask one of them.", icon=":material/front_hand:")
with history:
    registry_views.history(version)
with lineage:
    registry_views.lineage(version, user)
with compare:
    registry_views.compare(model)
with maturity:
    registry_views.maturity(model, project)
    report_views.download_button(user, "portfolio", subject_label=project.name, key="registry_portfolio_pdf",
                                 project_id=project.id, label="Portfolio report of this project (PDF)")
