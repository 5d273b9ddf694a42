"""``steward pipeline run`` and ``steward scheduler``: the same pipeline and scheduler as the app, from a shell."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from core import alerts, datasets, pipelines, registry
from core.cli import cli
from core.db import create_store_engine, session_scope
from core.models import Alert, AlertDelivery, Job, PipelineConfig, utcnow
from tests import production
from tests.factories import make_dataset_version
from tests.servers import WebhookServer


@pytest.fixture
def settings(tmp_path_factory, tmp_path, monkeypatch):
    return production.use(production.template(tmp_path_factory), tmp_path, monkeypatch)


@pytest.fixture
def db(settings):
    engine = create_store_engine(settings.resolved_database_url)
    yield lambda: session_scope(engine)
    engine.dispose()


@pytest.fixture
def steward(settings):
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args), catch_exceptions=False)


def add_version(db, settings, tmp_path, first: int, count: int):
    with db() as session:
        bea = production.team(session).bea
        from core.projects import get_project_by_name

        return make_dataset_version(session, settings, bea, get_project_by_name(session=session, name="Labour force"),
                                    production.labour_rows(tmp_path, first, count),
                                    metadata=datasets.VersionMetadata(sensitive_columns=["sex"]))


def test_pipeline_run_retrains_on_a_chosen_version_and_reports_every_step(steward, db, settings, tmp_path):
    add_version(db, settings, tmp_path, 0, 600)  # v2
    add_version(db, settings, tmp_path, 0, 450)  # v3, the newest; the run is asked for v2

    result = steward("pipeline", "run", "Labour force", "employment", "--dataset-version", "2", "--user", "bea",
                     "--json")

    assert result.exit_code == 0, result.output
    done = json.loads(result.stdout)
    assert (done["status"], done["trigger"], done["dataset"], done["candidate"]) == (
        "succeeded", "manual", "labour_force v2", "employment v2")
    assert [s["name"] for s in done["steps"]] == list(pipelines.STEPS)
    with db() as session:
        job = session.get(Job, pipelines.get_run(session=session, pipeline_run_id=done["pipeline_run_id"]).job_id)
        assert (job.kind, job.status, job.created_by_id) == ("pipeline.run", "succeeded",
                                                              production.team(session).bea.id)
        model = registry.find_model(session=session, name="employment")
        assert registry.get_model(session=session, model_id=model.id).production.number == 1  # waits for review


def test_pipeline_run_refusals(steward):
    refused = steward("pipeline", "run", "Labour force", "employment", "--user", "rita")
    assert refused.exit_code == 2 and "builder" in refused.stderr
    missing = steward("pipeline", "run", "Labour force", "employment", "--dataset-version", "9", "--user", "bea")
    assert missing.exit_code == 2 and missing.stderr.strip() == "steward: labour_force has no version 9."
    stopped = steward("pipeline", "run", "Labour force", "employment", "--user", "bea")
    assert stopped.exit_code == 1
    first, step = stopped.stdout.splitlines()
    assert first.startswith("Pipeline run 1 of employment (Started by hand): stopped. There is no new data: the "
                            "newest version of labour_force (v1)")
    assert step.startswith("  stopped    Choose the new data ") and ": There is no new data" in step


def test_scheduler_once_runs_due_pipelines_and_retries_deliveries(steward, db, settings, tmp_path):
    webhook = WebhookServer().start()
    try:
        with db() as session:
            team = production.team(session)
            model = registry.find_model(session=session, name="employment")
            pipelines.save_config(session=session, actor=team.bea, model_id=model.id, schedule_days=1,
                                  on_new_data=False, auto_promote=False)
            config = session.get(PipelineConfig, 1)
            config.next_run_at = utcnow()  # due now
            session.add(config)
            session.commit()
            rule = alerts.save_rule(session=session, actor=team.bea, model_id=model.id, metric="volume",
                                    direction="above", threshold=1, channels=["webhook"], webhook_url=webhook.url)
            alert_row = Alert(
                rule_id=rule.id, model_id=model.id, version_id=registry.get_model(
                    session=session, model_id=model.id).production.id, metric="volume", value=5, threshold=1,
                severity="warning", message="test")
            session.add(alert_row)
            session.flush()
            session.add(AlertDelivery(alert_id=alert_row.id, channel="webhook", target=webhook.url,
                                      status="retrying", attempts=1, next_attempt_at=utcnow()))
            session.commit()

        result = steward("--json", "scheduler", "--once")

        assert result.exit_code == 0, result.output
        done = json.loads(result.stdout)
        assert [d["status"] for d in done["deliveries"]] == ["sent"] and len(webhook.posts) == 1
        assert done["scheduled_models"] == [model.id]
        assert [(r["trigger"], r["status"]) for r in done["runs"]] == [("schedule", "stopped")]

        again = steward("scheduler", "--once")
        assert again.exit_code == 0
        assert again.stdout.strip() == "Deliveries attempted: 0 (0 sent). Schedules due: 0. Pipeline runs: 0."
    finally:
        webhook.stop()
