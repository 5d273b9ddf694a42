"""Train: pick a dataset version and a target; Steward searches for a good, reproducible model."""

import streamlit as st

from app import auth, resources, state, training_views, widgets
from core import datasets
from core.errors import DomainError
from core.models import Role
from core.training import evaluation, runs

user = auth.require_user(Role.builder, Role.admin)
project = widgets.require_project()
st.title("Train")
st.write("Choose the data and the column to predict. Steward tries a fixed list of well-tested models, "
         "checks each by cross-validation, and tests the best one on data it never saw.")

found = widgets.require_datasets(project)

left, right = st.columns(2)
dataset = left.selectbox("Dataset", found, format_func=lambda d: d.name, key="train_dataset")
with resources.db_session() as session:
    versions = datasets.list_versions(session=session, dataset_id=dataset.id)
version = right.selectbox("Version", versions, format_func=lambda v: f"version {v.number} ({v.rows:,} rows)",
                          key="train_version")
target = left.selectbox("Column to predict", list(version.types), key="train_target",
                        index=len(version.types) - 1)
excluded = right.multiselect("Columns not to use", [c for c in version.types if c != target], key="train_exclude")
try:
    plan = resources.training_plan(version.id, target, None, tuple(excluded))
except DomainError as error:
    st.error(widgets.md(error))
    st.stop()
for warning in plan.warnings:
    st.warning(widgets.md(warning), icon=":material/warning:")

with st.form("train_form"):
    tasks = list(evaluation.PRIMARY_METRIC)
    task = st.selectbox("Kind of problem", tasks, index=tasks.index(plan.task), key="train_task",
                        help="Detected from the target; change it only if the guess is wrong.")
    budget = st.radio("Time budget", list(runs.BUDGET_PRESETS), index=1, horizontal=True, key="train_budget",
                      format_func=lambda p: f"{p} ({runs.BUDGET_PRESETS[p]} s)")
    metric = st.selectbox("Choose the model by", evaluation.METRICS[plan.task], key="train_metric",
                          format_func=evaluation.metric_label)
    validation = st.selectbox("Validation", ["stratified", "grouped", "time"], key="train_cv",
                              format_func=training_views.VALIDATION_LABELS.get)
    cv_column = st.selectbox("Group or time column (for grouped or time-ordered validation)",
                             [None, *version.types], key="train_cv_column", format_func=lambda c: c or "—")
    seed = st.number_input("Random seed", value=42, step=1, key="train_seed")
    start = st.form_submit_button("Start training", type="primary")

if start:
    try:
        with resources.db_session() as session:
            run = runs.start_training(
                session=session, settings=resources.settings(), runner=resources.job_runner(), actor=user,
                version_id=version.id, target=target, task=task, budget_seconds=runs.BUDGET_PRESETS[budget],
                metric=metric if task == plan.task else None, excluded=excluded, seed=int(seed), cv=validation,
                cv_column=cv_column)
    except DomainError as error:
        st.error(widgets.md(error))
    else:
        state.put(state.TRAIN_RUN_ID, run.id)
        state.put(state.RUN_ID, run.id)
        st.rerun()

run_id = state.get(state.TRAIN_RUN_ID) or training_views.running_run_id(project.id, user)  # after a refresh
if run_id is not None:
    training_views.follow_training(run_id, user)
