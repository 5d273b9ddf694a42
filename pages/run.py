"""Model results: how well a trained model does, for whom, and the proof that it can be reproduced."""

import streamlit as st

from app import auth, navigation, training_views, widgets
from core.models import Role

user = auth.require_user()
project = widgets.require_project()
st.title("Model results")
st.write("Read how the chosen model did on data it never saw, compared with a simple baseline, overall and "
         "for each group of the sensitive columns. The intervals show how sure these figures are.")

run = training_views.choose_run(project.id)
if run is None:
    st.info("No model has been trained in this project yet.")
    if user.has_role(Role.builder, Role.admin):
        st.page_link(navigation.page_for("train.py"), label="Train a model", icon=":material/model_training:")
    st.stop()
if run.status != "succeeded":
    st.warning(f"This run is {run.status}." + (f" {widgets.md(run.error)}" if run.error else ""))
    if run.leaderboard:
        training_views.leaderboard(run)
    st.stop()

for warning in run.warnings:
    st.caption(f":material/info: {widgets.md(warning)}")
overview, groups, details, proof, elsewhere = st.tabs(
    ["Overview", "Subgroups", "Diagnostics", "Reproducibility", "Other data"])
with overview:
    training_views.headline(run)
    training_views.leaderboard(run)
with groups:
    training_views.subgroups(run)
with details:
    training_views.diagnostics(run, user)
with proof:
    training_views.reproducibility(run, user)
with elsewhere:
    training_views.evaluate_elsewhere(run, user)
