"""Monitoring: every scored batch compared with the model's training data, performance once true values arrive."""

import streamlit as st

from app import auth, monitoring_views, report_views, widgets

user = auth.require_user()
project = widgets.require_project()
st.title("Monitoring")
st.write("Every batch a model scores is compared with the data it was trained on (drift of each input column and of "
         "the predictions, missing values, new categories, volume). Upload the true values of a batch when they "
         "arrive to see how well the model did.")
monitoring_views.notice()

st.subheader("Models in this project", divider="gray")
found = monitoring_views.overview(project)
health = monitoring_views.choose_model(found)
report_views.download_button(user, "monitoring", subject_label=health.name, key="monitor_report_pdf",
                             model_id=health.model_id, label="Monitoring report, all batches (PDF)")

dashboards_tab, batches_tab = st.tabs(["Dashboards", "Batches"])
with dashboards_tab:
    monitoring_views.dashboards(health)
with batches_tab:
    chosen = monitoring_views.batches(health)
    if chosen is not None:
        monitoring_views.batch_report(chosen, user)
