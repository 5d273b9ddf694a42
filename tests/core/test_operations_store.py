"""Alerts, deliveries and pipeline runs on every supported store (SQLite and PostgreSQL): default rules at
promotion, an alert raised and its delivery claimed and retried, a requested run claimed once, the schedule."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from core import alerts, auth, datasets, pipelines, registry
from core.db import create_store_engine
from core.models import AlertDelivery, MonitoringReport, PipelineRun, PredictionBatch, utcnow
from tests import production
from tests.factories import make_dataset_version, make_project, make_trained_run, make_user


def test_alerts_and_pipeline_runs_work_on_this_store(session, settings, tmp_path):
    bea = make_user(session, "bea")
    mo = make_user(session, "mo", roles=("manager",))
    admin = auth.get_user_by_name(session=session, username="admin")
    project = make_project(session, bea)
    data = make_dataset_version(session, settings, bea, project, production.labour_rows(tmp_path, 0, 300),
                                metadata=datasets.VersionMetadata(sensitive_columns=["sex"]))
    run = make_trained_run(session, settings, bea, data)
    version = registry.register_run(session=session, actor=bea, run_id=run.id, model_name="employment")
    for gate in ("review", "model_card", "reproducibility"):
        registry.override_gate(session=session, settings=settings, actor=admin, version_id=version.id, gate=gate,
                               reason="Pilot, accepted by the board.")
    registry.promote_version(session=session, settings=settings, actor=mo, version_id=version.id)
    assert {r.metric for r in alerts.list_rules(session=session, model_id=version.model_id)} == {
        "drift_share", "performance"}

    rule = next(r for r in alerts.list_rules(session=session, model_id=version.model_id) if r.metric == "drift_share")
    alerts.save_rule(session=session, actor=bea, model_id=version.model_id, rule_id=rule.id, metric="drift_share",
                     threshold=0.3, channels=["app", "webhook"], webhook_url="http://127.0.0.1:9/nothing-listens",
                     triggers_retraining=True)
    batch = PredictionBatch(project_id=project.id, version_id=version.id, channel="file", input_sha256="0" * 64,
                            rows=500)
    session.add(batch)
    session.flush()
    report = MonitoringReport(batch_id=batch.id, version_id=version.id, status="finished", rows=500, drift_share=0.5)
    session.add(report)
    session.commit()

    [alert] = alerts.evaluate_report(session=session, settings=settings, report_id=report.id)

    [delivery] = alert.deliveries
    assert (delivery.status, delivery.attempts) == ("retrying", 1)
    later = utcnow() + timedelta(minutes=2)
    assert [d.attempts for d in alerts.deliver_due(session=session, settings=settings, now=later)] == [2]
    assert alerts.deliver_due(session=session, settings=settings, now=later) == []  # claimed and rescheduled
    row = session.exec(select(AlertDelivery)).one()
    assert row.status == "retrying" and row.next_attempt_at.replace(tzinfo=None) > later.replace(tzinfo=None)

    requested = pipelines.get_run(session=session, pipeline_run_id=alert.pipeline_run_id)
    assert (requested.trigger, requested.status, requested.created_by_name) == ("drift_alert", "queued", "bea")
    engine = create_store_engine(settings.resolved_database_url)
    try:
        done = pipelines.scheduler_pass(engine=engine, settings=settings)
        assert [(r.id, r.status) for r in done.ran] == [(requested.id, "stopped")]
        assert pipelines.scheduler_pass(engine=engine, settings=settings).ran == []  # never run twice
    finally:
        engine.dispose()
    session.expire_all()
    assert session.get(PipelineRun, requested.id).status == "stopped"
