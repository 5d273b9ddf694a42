"""The Alerts page: alerts with acknowledge, resolve and retrain, the rule editor, the delivery log, role gating."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlmodel import select

from app import resources
from core import alerts, jobs, pipelines, projects, registry
from core.db import create_store_engine, session_scope
from core.models import Alert, AlertDelivery, MonitoringReport, PredictionBatch
from tests import production
from tests.app.conftest import button, open_page, page_title, plain, wait_until_finished


@pytest.fixture
def store(tmp_path_factory, tmp_path, monkeypatch, sqlite_settings):
    """The production store (employment v1 promoted) instead of the empty one every page test gets."""
    return production.use(production.template(tmp_path_factory), tmp_path, monkeypatch, folder="production")


@pytest.fixture
def db(store):
    engine = create_store_engine(store.resolved_database_url)

    def open_session():
        return session_scope(engine)

    yield open_session
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


def raise_alert(db, store, drift_share: float = 0.6) -> int:
    with db() as session:
        model = registry.find_model(session=session, name="employment")
        version_id = registry.get_model(session=session, model_id=model.id).production.id
        batch = PredictionBatch(project_id=1, version_id=version_id, channel="file", input_sha256="0" * 64, rows=500)
        session.add(batch)
        session.flush()
        report = MonitoringReport(batch_id=batch.id, version_id=version_id, status="finished", rows=500,
                                  drift_share=drift_share)
        session.add(report)
        session.commit()
        [alert] = alerts.evaluate_report(session=session, settings=store, report_id=report.id)
        return alert.id


def alert_row(db, alert_id: int) -> Alert:
    with db() as session:
        return session.get(Alert, alert_id)


def test_without_alerts_the_page_says_so_and_shows_the_default_rules(app_test, people):
    team, project = people
    at = open_page(app_test(), team.rita, "alerts.py", project)

    assert not at.exception and page_title(at) == "Alerts"
    assert plain(at.tabs[0].info) == ["No open alerts. Alerts appear here when a scored batch crosses a rule's "
                                      "threshold."]
    rules = at.tabs[1].dataframe[0].value
    assert list(rules["Watches"])[0] == "Share of drifted input columns above 0.3"
    assert plain(at.tabs[1].caption) == ["Builders, managers and administrators change the rules."]
    assert not at.tabs[1].get("form")  # a reviewer reads, does not edit


def test_a_builder_acknowledges_then_a_manager_resolves_with_a_note(app_test, db, store, people):
    team, project = people
    alert_id = raise_alert(db, store)
    at = open_page(app_test(), team.bea, "alerts.py", project)
    assert any(f"Alert {alert_id}: employment v1, warning" in text for text in plain(at.tabs[0].markdown))

    at.text_input(key=f"alerts_note_{alert_id}").input("Looking at the region codes.")
    at = button(at, "Acknowledge").click().run()

    assert not at.exception
    assert plain(at.success) == [f"Alert {alert_id} acknowledged."]
    stored = alert_row(db, alert_id)
    assert stored.status == "acknowledged" and stored.note == "Acknowledged by bea: Looking at the region codes."

    at = open_page(app_test(), team.mo, "alerts.py", project)
    at = button(at, "Resolve").click().run()
    assert plain(at.error) == ["Write what was done about the alert (a sentence): it stays with the alert."]
    at.text_input(key=f"alerts_note_{alert_id}").input("Feed fixed upstream.")
    at = button(at, "Resolve").click().run()
    assert alert_row(db, alert_id).status == "resolved"
    assert plain(at.tabs[0].info) == ["No open alerts. Alerts appear here when a scored batch crosses a rule's "
                                      "threshold."]
    at = at.toggle(key="alerts_show_resolved").set_value(True).run()
    assert any("resolved by mo" in caption for caption in plain(at.tabs[0].caption))


def test_a_reviewer_sees_alerts_but_cannot_act_on_them(app_test, db, store, people):
    team, project = people
    raise_alert(db, store)
    at = open_page(app_test(), team.rita, "alerts.py", project)

    assert not at.exception and any("employment v1, batch" in t for t in plain(at.tabs[0].markdown))
    assert [b.label for b in at.tabs[0].button] == []


def test_retrain_now_starts_the_pipeline_for_the_alert(app_test, db, store, people, runner):
    team, project = people
    alert_id = raise_alert(db, store)
    at = open_page(app_test(), team.bea, "alerts.py", project)

    at = button(at, "Retrain now").click().run()

    assert not at.exception
    pipeline_run_id = alert_row(db, alert_id).pipeline_run_id
    with db() as session:
        requested = pipelines.get_run(session=session, pipeline_run_id=pipeline_run_id)
    assert (requested.trigger, requested.trigger_ref) == ("drift_alert", f"alert {alert_id}")
    wait_until_finished(db, requested.job_id)
    with db() as session:
        done = pipelines.get_run(session=session, pipeline_run_id=pipeline_run_id)
    assert done.status == "stopped" and "There is no new data" in done.outcome
    at = at.run()
    assert [link.label for link in at.tabs[0].get("page_link")] == [
        f"Retraining: pipeline run {pipeline_run_id}, stopped by a check"]
    assert not button(at, "Retrain now").disabled  # that run has ended: another may start


def test_a_builder_adds_a_column_drift_rule(app_test, db, people):
    team, project = people
    at = open_page(app_test(), team.bea, "alerts.py", project)
    at = at.selectbox(key="alerts_metric_1_None").select("column_drift").run()
    rules = at.tabs[1]
    next(s for s in rules.selectbox if s.label == "Input column").select("hours_usual")
    next(n for n in rules.number_input if n.label == "Threshold").set_value(0.25)
    next(m for m in rules.multiselect if m.label == "Channels").set_value(["app", "webhook"])
    next(t for t in rules.text_input if t.label.startswith("Webhook")).input("https://hooks.example.org/lfs")
    at = button(at, "Save the rule").click().run()

    assert not at.exception and plain(at.success) == ["Rule saved."]
    with db() as session:
        rule = alerts.list_rules(session=session, model_id=1)[-1]
    assert (rule.description, rule.channels, rule.webhook_url) == (
        "Drift score of column hours_usual above 0.25", ["app", "webhook"], "https://hooks.example.org/lfs")

    next(t for t in at.tabs[1].text_input if t.label.startswith("Webhook")).input("")  # webhook without address
    at = button(at, "Save the rule").click().run()
    assert plain(at.error) == ["Give the webhook address (https://…) the alert is posted to."]
    with db() as session:
        assert len(alerts.list_rules(session=session, model_id=1)) == 3  # the two defaults and the one saved


def test_the_delivery_log_shows_failures_and_an_admin_tries_again(app_test, db, store, people):
    team, project = people
    with db() as session:
        rule = next(r for r in alerts.list_rules(session=session, model_id=1) if r.metric == "drift_share")
        alerts.save_rule(session=session, actor=team.bea, model_id=1, rule_id=rule.id, metric=rule.metric,
                         threshold=rule.threshold, channels=["email"], recipients=["lfs@stats.example.org"])
    raise_alert(db, store)

    at = open_page(app_test(), team.admin, "alerts.py", project)
    [log] = at.tabs[2].dataframe
    row = log.value.to_dict("records")[0]
    assert (row["To"], row["State"], row["Attempts"]) == ("lfs@stats.example.org", "retrying", 1)
    assert row["Last error"].startswith("No SMTP server is set up")
    at = button(at, "Try again now").click().run()

    assert not at.exception
    with db() as session:
        delivery = session.exec(select(AlertDelivery)).one()
    assert delivery.attempts == 2 and delivery.status == "retrying"

    at = open_page(app_test(), team.bea, "alerts.py", project)
    assert [b.label for b in at.tabs[2].button] == []  # only administrators retry by hand


def test_without_a_project_the_page_points_to_projects(app_test, people):
    team, _project = people
    at = open_page(app_test(), team.bea, "alerts.py")

    assert not at.exception
    assert plain(at.info) == ["Open a project first: data, models and reviews always belong to a project."]
