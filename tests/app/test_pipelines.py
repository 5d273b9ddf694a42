"""The Retraining page: triggers and automatic promotion, running the pipeline now, waiting runs, the history."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from app import resources
from core import datasets, jobs, pipelines, projects, registry
from core.db import create_store_engine, session_scope
from tests import production
from tests.app.conftest import button, open_page, page_title, plain, wait_until_finished
from tests.factories import make_dataset_version


@pytest.fixture
def store(tmp_path_factory, tmp_path, monkeypatch, sqlite_settings):
    return production.use(production.template(tmp_path_factory), tmp_path, monkeypatch, folder="production")


@pytest.fixture
def db(store):
    engine = create_store_engine(store.resolved_database_url)
    yield lambda: session_scope(engine)
    engine.dispose()


@pytest.fixture
def people(db):
    with db() as session:
        return production.team(session), projects.get_project_by_name(session=session, name="Labour force")


@pytest.fixture
def runner(store, monkeypatch):
    runner = jobs.JobRunner(database_url=store.resolved_database_url,
                            executor_factory=lambda: ThreadPoolExecutor(max_workers=1))
    monkeypatch.setattr(resources, "job_runner", lambda: runner)
    yield runner
    runner.shutdown(wait=True)
    jobs._worker_engine.cache_clear()


def config(db):
    with db() as session:
        return pipelines.get_config(session=session, model_id=1)


def test_a_builder_sets_a_schedule_and_only_a_manager_allows_automatic_promotion(app_test, db, people):
    team, project = people
    at = open_page(app_test(), team.bea, "pipelines.py", project)
    assert not at.exception and page_title(at) == "Retraining"
    settings_tab = at.tabs[1]
    automatic = next(c for c in settings_tab.checkbox if c.label.startswith("Promote retrained versions"))
    assert automatic.disabled  # a builder cannot switch it on

    next(c for c in settings_tab.checkbox if c.label == "Retrain on a schedule").check()
    next(n for n in settings_tab.number_input if n.label == "Every how many days").set_value(14)
    next(c for c in settings_tab.checkbox if c.label.startswith("Retrain on each new")).check()
    at = button(at, "Save the settings").click().run()

    assert not at.exception and plain(at.success) == ["Retraining settings saved."]
    saved = config(db)
    assert (saved.schedule_days, saved.on_new_data, saved.auto_promote) == (14, True, False)
    assert plain(at.tabs[1].markdown)[0].startswith("**Automatic triggers:** every 14 days; each new version of the "
                                                    "training data; alert “ROC AUC (performance) below 0.")

    at = open_page(app_test(), team.mo, "pipelines.py", project)
    next(c for c in at.tabs[1].checkbox if c.label.startswith("Promote retrained versions")).check()
    at = button(at, "Save the settings").click().run()
    assert config(db).auto_promote and config(db).auto_promote_by_name == "mo"
    assert "Automatic promotion allowed by mo." in plain(at.tabs[1].caption)


def test_running_the_pipeline_now_shows_each_step_and_the_candidate(app_test, db, store, people, runner, tmp_path):
    team, project = people
    with db() as session:
        make_dataset_version(session, store, team.bea, project, production.labour_rows(tmp_path, 0, 600),
                             metadata=datasets.VersionMetadata(sensitive_columns=["sex"]))
    at = open_page(app_test(), team.bea, "pipelines.py", project)
    assert plain(at.tabs[0].info) == ["The pipeline has not run for this model yet."]
    assert at.tabs[0].selectbox[0].value is not None  # the newest data version is chosen

    at = button(at, "Run the pipeline now").click().run()
    assert not at.exception
    with db() as session:
        [requested] = pipelines.list_runs(session=session, model_id=1)
    wait_until_finished(db, requested.job_id, timeout=120)
    at = at.run()
    assert not at.exception

    history = at.tabs[0].dataframe[0].value.to_dict("records")
    assert [(r["Trigger"], r["Data"], r["State"], r["Candidate"]) for r in history] == [
        ("Started by hand", "labour_force v2", "Candidate registered", "employment v2")]
    [expander] = at.tabs[0].expander
    assert expander.label.startswith("Run 1 · Started by hand · Candidate registered")
    done = ":green[:material/check_circle:]"
    steps = [m for m in plain(expander.markdown) if m.startswith(done)]
    assert len(steps) == len(pipelines.STEPS) and steps[0].startswith(f"{done} **Choose the new data** · ")
    assert any("promoted" not in t and "waits for the peer review" in t for t in plain(expander.text))
    with db() as session:
        model = registry.get_model(session=session, model_id=1)
    assert [v.number for v in model.versions] == [2, 1] and model.production.number == 1


def test_a_requested_run_waits_for_the_scheduler_or_is_started_by_hand(app_test, db, store, people, runner):
    team, project = people
    with db() as session:
        requested = pipelines.request_run(session=session, settings=store, model_id=1, trigger="schedule",
                                          trigger_ref="every 7 days")
    at = open_page(app_test(), team.rita, "pipelines.py", project)
    assert plain(at.tabs[0].info)[0] == (f"Pipeline run {requested.id} (schedule (every 7 days)) waits for `steward "
                                         "scheduler`, which starts requested runs on its next pass.")
    assert [b.label for b in at.tabs[0].button] == [] and not at.tabs[0].get("form")  # a reviewer only reads

    at = open_page(app_test(), team.mo, "pipelines.py", project)
    at = button(at, "Start it now").click().run()
    assert not at.exception
    with db() as session:
        started = pipelines.get_run(session=session, pipeline_run_id=requested.id)
    assert started.job_id is not None
    wait_until_finished(db, started.job_id)
    with db() as session:
        assert pipelines.get_run(session=session, pipeline_run_id=requested.id).status == "stopped"


def test_a_project_without_models_says_what_to_do(app_test, db, people):
    team, _project = people
    with db() as session:
        empty = projects.create_project(session=session, actor=team.bea, name="Empty")
    at = open_page(app_test(), team.bea, "pipelines.py", empty)

    assert not at.exception
    assert plain(at.info) == ["No model is registered in this project yet. Alerts and retraining start once a model "
                              "is in production."]
