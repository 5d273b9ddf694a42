"""Alerts: what monitoring raised for the project's models, the rules that raise them, and their delivery."""

import streamlit as st

from app import auth, operations_views, widgets

user = auth.require_user()
project = widgets.require_project()
st.title("Alerts")
st.write("When a scored batch crosses a rule's threshold (drift, performance once labels arrive, volume, automation "
         "rate), an alert is raised: shown here, sent to the model's builders and the managers in the app, and by "
         "e-mail or webhook when the rule says so. Acknowledge it when you look into it and resolve it with a note "
         "saying what was done.")
operations_views.notice()

current, rules_tab, log_tab = st.tabs(["Alerts", "Rules", "Delivery log"])
with current:
    show_resolved = st.toggle("Show resolved alerts too", key="alerts_show_resolved")
    operations_views.alert_list(project, user, show_resolved=show_resolved)
with rules_tab:
    model = operations_views.choose_model(project, key="alerts_model")
    if model is None:
        operations_views.no_model(user)
    operations_views.rules(model, user)
with log_tab:
    operations_views.delivery_log(project, user)
