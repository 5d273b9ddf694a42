"""Predict: score new data with the registry's production version (or a chosen approved version)."""

import streamlit as st

from app import auth, serving_views, widgets
from core.models import Role

user = auth.require_user(Role.builder, Role.admin)
project = widgets.require_project()
st.title("Predict")
st.write("Score new data with a registered model: its production version, unless you choose an approved one. "
         "Every batch is checked against the model's input columns and the data contract, and kept (with its "
         "predictions) for monitoring.")

target = serving_views.choose_target(project)
file_tab, record_tab, history_tab = st.tabs(["Score a file", "Score one record", "Earlier batches"])
with file_tab:
    serving_views.score_file(target, user)
with record_tab:
    serving_views.score_record(target, user)
with history_tab:
    serving_views.batches(project)
