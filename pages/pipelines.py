"""Retraining: the level-1 pipeline of a model — its triggers, a run started by hand, and every run's steps."""

import streamlit as st

from app import auth, operations_views, widgets

user = auth.require_user()
project = widgets.require_project()
st.title("Retraining")
st.write("One pipeline retrains a production model, whoever starts it (this page, `steward pipeline run`, the "
         "schedule, a new data version or an alert): it checks the new data against the data contract, trains with "
         "the production configuration, scores the new and the production model on the same new test rows, "
         "registers the candidate, carries the model card over, pre-fills the self-assessment and applies the "
         "gates. The candidate then waits for the peer review and a manager, unless automatic promotion is "
         "allowed.")
operations_views.notice()

model = operations_views.choose_model(project, key="pipelines_model")
if model is None:
    operations_views.no_model(user)

runs_tab, settings_tab = st.tabs(["Runs", "Triggers and promotion"])
with runs_tab:
    operations_views.active_run(model, user)
    operations_views.start_panel(model, user)
    operations_views.history(model)
with settings_tab:
    operations_views.pipeline_settings(model, user)
