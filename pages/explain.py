"""Explanations: which columns drive the model, and why it predicted what it did for one record."""

import pandas as pd
import streamlit as st

from app import auth, navigation, resources, training_views, widgets
from core import charts
from core.errors import DomainError
from core.training import runs

user = auth.require_user()
project = widgets.require_project()
st.title("Explanations")
st.write("See which columns the model relies on overall, and why it made a particular prediction. "
         "Explanations of single records stay inside Steward; exports only ever show the overall picture.")

run = training_views.choose_run(project.id)
if run is None or run.status != "succeeded":
    st.info("Explanations appear here once a model has been trained successfully in this project.")
    st.page_link(navigation.page_for("run.py"), label="Model results", icon=":material/insights:")
    st.stop()
with resources.db_session() as session:
    explanation = runs.get_explanation(session=session, run_id=run.id)

overall_tab, record_tab, typed_tab = st.tabs(["The model overall", "One record", "Type a record"])
with overall_tab:
    training_views.explanation_summary(explanation)
    result = explanation.result
    st.altair_chart(charts.importance_chart(result["overall"], explanation.scale))
    if result["beeswarm"]:  # free-text columns are explained by their words instead (below)
        st.altair_chart(charts.beeswarm_chart(result["beeswarm"], explanation.scale))
        top = list(dict.fromkeys(point["feature"] for point in result["beeswarm"]))[:3]
        feature = st.selectbox("Effect of one column by its value", top, key="explain_dependence")
        st.altair_chart(charts.dependence_chart(result["beeswarm"], feature, explanation.scale), width="content")
    if len(result["importance"]) > 1:
        with st.expander("Per class"):
            st.dataframe(pd.DataFrame(result["importance"]), width="stretch")
    training_views.text_terms(explanation)

with record_tab:
    order = st.radio("Show test records with", ["largest error", "most confident"], horizontal=True,
                     key="explain_order")
    search = st.text_input("…containing (any column)", key="explain_search")
    records = runs.find_test_records(run=run, test=resources.run_test_set(run), order=order, search=search)
    if records.empty:
        st.info("No test record matches. Clear the search.")
    else:
        chosen = st.dataframe(records, on_select="rerun", selection_mode="single-row", key="explain_records",
                              hide_index=True)
        picked = chosen.selection.rows[0] if chosen.selection.rows else 0
        local = runs.explain_record(settings=resources.settings(), run=run, model=resources.run_model(run),
                                    test=resources.run_test_set(run),
                                    record=records.iloc[[picked]].drop(columns=["actual", "predicted"]))
        training_views.record_explanation(local, actual=records.iloc[picked]["actual"])
        training_views.export_record(run, user, local)

with typed_tab:
    typed = training_views.typed_record(run)
    if typed is not None:
        try:
            local = runs.explain_record(settings=resources.settings(), run=run, model=resources.run_model(run),
                                        test=resources.run_test_set(run), record=typed)
        except DomainError as error:
            st.error(widgets.md(error))
        else:
            training_views.record_explanation(local, actual="(typed in)")
