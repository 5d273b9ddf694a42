"""The retraining pipeline: each trigger, the contract check, training like production, the gates, the candidate
with its card and pre-filled assessment, notifications, automatic promotion and the schedule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from core import alerts, checklist, datasets, jobs, model_card, notifications, pipelines, registry
from core.db import create_store_engine, session_scope
from core.errors import Conflict, InvalidInput, NotAllowed
from core.models import (
    AlertRule,
    Job,
    ModelVersion,
    MonitoringReport,
    PipelineRun,
    PredictionBatch,
    TrainingRun,
    utcnow,
)
from core.training import runs
from tests import production
from tests.factories import make_dataset_version


@pytest.fixture
def settings(tmp_path_factory, tmp_path, monkeypatch):
    return production.use(production.template(tmp_path_factory), tmp_path, monkeypatch)


@pytest.fixture
def engine(settings):
    engine = create_store_engine(settings.resolved_database_url)
    yield engine
    engine.dispose()
    jobs._worker_engine.cache_clear()


@pytest.fixture
def session(engine):
    with session_scope(engine) as session:
        yield session


@pytest.fixture
def team(session):
    return production.team(session)


@pytest.fixture
def model(session):
    return registry.find_model(session=session, name="employment")


def add_data(session, settings, team, tmp_path, first: int = 0, count: int = 600, edit=None, name: str | None = None):
    """A new version of the training dataset (by default 600 rows that include the first 300)."""
    project = registry.get_model(session=session, model_id=registry.find_model(session=session,
                                                                                name="employment").id)
    from core.projects import get_project

    return make_dataset_version(session, settings, team.bea, get_project(session=session,
                                                                         project_id=project.project_id),
                                production.labour_rows(tmp_path, first, count, name=name, edit=edit),
                                metadata=datasets.VersionMetadata(sensitive_columns=["sex"]))


def run_now(engine, settings, session, model, actor, **request):
    requested = pipelines.request_run(session=session, settings=settings, model_id=model.id, trigger="manual",
                                      actor=actor, **request)
    return pipelines.run_here(engine=engine, settings=settings, pipeline_run_id=requested.id, actor=actor)


def step(done, name: str) -> dict:
    return next(s for s in done.steps if s["name"] == name)


# ── the whole pipeline ──────────────────────────────────────────────────────────────────────────────


def test_a_manual_run_registers_a_candidate_trained_like_production_with_card_and_assessment(
        engine, settings, session, team, model, tmp_path):
    new = add_data(session, settings, team, tmp_path)
    production_version = registry.get_model(session=session, model_id=model.id).production
    production_run = runs.get_run(session=session, run_id=production_version.run_id)

    done = run_now(engine, settings, session, model, team.bea)

    assert done.status == "succeeded", done.outcome
    assert [s["name"] for s in done.steps] == list(pipelines.STEPS)
    assert all(s["status"] == "succeeded" and s["seconds"] is not None for s in done.steps)
    assert (done.trigger, done.dataset_label, done.created_by_name) == ("manual", "labour_force v2", "bea")
    # trained like production, on the new data
    candidate_run = runs.get_run(session=session, run_id=done.run_id)
    assert candidate_run.dataset_version_id == new.id
    for key in ("budget_seconds", "excluded", "cv", "folds"):
        assert candidate_run.config[key] == production_run.config[key]
    assert (candidate_run.seed, candidate_run.primary_metric, candidate_run.target) == (
        production_run.seed, production_run.primary_metric, production_run.target)
    # both models scored on the candidate's new held-out rows
    evaluated = step(done, "evaluate")["outputs"]
    assert evaluated["test_rows"] == 120 and set(evaluated["production"]) == set(evaluated["candidate"])
    assert evaluated["production"]["roc_auc"] != evaluated["candidate"]["roc_auc"]
    # registered, reproduced, gates recorded; waiting for people
    candidate = registry.get_version(session=session, version_id=done.candidate_version_id)
    assert (candidate.label, candidate.status, candidate.created_by_name) == ("employment v2", "candidate", "bea")
    assert runs.latest_certificate(session=session, run_id=done.run_id).status == "passed"
    verdicts = {g["gate"]: g["verdict"] for g in step(done, "gates")["outputs"]["gates"]}
    assert verdicts["review"] == "failed" and verdicts["reproducibility"] == "passed"
    assert "waits for the peer review" in step(done, "promote")["outputs"]["decision"]
    assert registry.get_model(session=session, model_id=model.id).production.number == 1
    # the card text carried over, the assessment pre-filled from v1's answers
    old_card = model_card.list_revisions(session=session, run_id=production_run.id)[0]
    new_card = model_card.list_revisions(session=session, run_id=done.run_id)
    assert [r.content for r in new_card] == [old_card.content]
    assert model_card.completeness(session=session, run_id=done.run_id).complete
    old = checklist.get_assessment(session=session, version_id=production_version.id)
    new_assessment = checklist.get_assessment(session=session, version_id=candidate.id)
    assert new_assessment.status == "draft" and "carried over" in new_assessment.reopened_reason
    assert {c: (i.answer, i.justification) for c, i in new_assessment.items.items()} == {
        c: (i.answer, i.justification) for c, i in old.items.items()}
    # the reviewer and the builder are told
    [to_rita] = notifications.list_notifications(session=session, actor=team.rita, unread_only=True)[:1]
    assert "employment v2" in to_rita.message and to_rita.page == "pipelines"
    assert any("employment v2" in n.message and n.page == "checklist"
               for n in notifications.list_notifications(session=session, actor=team.bea))
    job = session.get(Job, done.job_id)
    assert (job.kind, job.status) == ("pipeline.run", "succeeded")


def test_data_that_breaks_the_contract_stops_the_run_before_training(engine, settings, session, team, model,
                                                                     tmp_path):
    def negative_hours(row):
        row["hours_usual"] = "-40"
        return row

    add_data(session, settings, team, tmp_path, first=300, count=200, edit=negative_hours)

    done = run_now(engine, settings, session, model, team.bea)

    assert done.status == "stopped"
    assert [s["name"] for s in done.steps] == ["data", "validate"]
    validate = step(done, "validate")
    assert validate["status"] == "stopped" and validate["outputs"]["ok"] is False
    assert any("hours_usual" in problem for problem in validate["outputs"]["problems"])
    assert "breaks the data contract 1" in done.outcome and "nothing was trained" in done.outcome
    assert done.run_id is None and session.exec(select(TrainingRun)).all().__len__() == 1


def test_without_new_data_the_pipeline_says_so_and_trains_nothing(engine, settings, session, team, model):
    done = run_now(engine, settings, session, model, team.bea)

    assert done.status == "stopped" and "There is no new data" in done.outcome
    assert done.run_id is None


def test_a_candidate_worse_than_production_is_rejected_by_the_gates(engine, settings, session, team, model,
                                                                  tmp_path):
    # The new version's outcome has nothing to do with its inputs: a model trained on it learns nothing.
    flip = iter(["yes", "no", "no", "yes"] * 200)

    def noise(row):
        row["employed"] = next(flip)
        return row

    add_data(session, settings, team, tmp_path, first=300, count=400, edit=noise)

    done = run_now(engine, settings, session, model, team.bea)

    assert done.status == "stopped", done.outcome
    assert "rejected because it fails the model checks" in done.outcome
    gates = {g["gate"]: g["verdict"] for g in step(done, "gates")["outputs"]["gates"]}
    assert "failed" in (gates["baseline"], gates["production"])
    assert registry.get_version(session=session, version_id=done.candidate_version_id).status == "rejected"
    assert not [n for n in notifications.list_notifications(session=session, actor=team.rita)
                if "employment v2" in n.message]


def test_automatic_promotion_is_off_by_default_and_only_a_manager_switches_it_on(session, team, model):
    assert pipelines.get_config(session=session, model_id=model.id).auto_promote is False
    with pytest.raises(InvalidInput, match="Only a manager or an administrator"):
        pipelines.save_config(session=session, actor=team.bea, model_id=model.id, schedule_days=None,
                              on_new_data=False, auto_promote=True)
    with pytest.raises(NotAllowed):
        pipelines.save_config(session=session, actor=team.rita, model_id=model.id, schedule_days=7,
                              on_new_data=False, auto_promote=False)

    saved = pipelines.save_config(session=session, actor=team.mo, model_id=model.id, schedule_days=None,
                                  on_new_data=False, auto_promote=True)
    pipelines.save_config(session=session, actor=team.bea, model_id=model.id, schedule_days=7, on_new_data=True,
                          auto_promote=True)  # a builder may change the rest while it stays on

    again = pipelines.get_config(session=session, model_id=model.id)
    assert saved.auto_promote and (again.auto_promote_by_name, again.updated_by_name) == ("mo", "bea")
    assert again.triggers == ["every 7 days", "each new version of the training data"]


def test_with_automatic_promotion_a_passing_candidate_goes_live_as_the_manager_allowed(
        engine, settings, session, team, model, tmp_path):
    pipelines.save_config(session=session, actor=team.mo, model_id=model.id, schedule_days=None, on_new_data=False,
                          auto_promote=True)
    add_data(session, settings, team, tmp_path)

    done = run_now(engine, settings, session, model, team.bea)

    assert done.status == "succeeded", done.outcome
    decision = step(done, "promote")["outputs"]["decision"]
    assert decision == "promoted automatically to production as employment v2, as allowed by mo"
    summary = registry.get_model(session=session, model_id=model.id)
    assert (summary.production.number, summary.fallback.number) == (2, 1)
    review_gate = {g.gate: g for g in registry.evaluate_gates(session=session, settings=settings,
                                                               version_id=summary.production.id).gates}["review"]
    assert review_gate.verdict == "overridden" and "allowed for this model by mo" in review_gate.override.reason


# ── triggers ────────────────────────────────────────────────────────────────────────────────────────


def test_a_new_dataset_version_requests_retraining_only_when_the_model_asks_for_it(
        engine, settings, session, team, model, tmp_path):
    add_data(session, settings, team, tmp_path, first=0, count=400, name="a.csv")
    assert pipelines.list_runs(session=session, model_id=model.id) == []

    pipelines.save_config(session=session, actor=team.bea, model_id=model.id, schedule_days=None, on_new_data=True,
                          auto_promote=False)
    new = add_data(session, settings, team, tmp_path)

    [requested] = pipelines.list_runs(session=session, model_id=model.id)
    assert (requested.trigger, requested.trigger_ref, requested.dataset_version_id, requested.status) == (
        "new_data", "labour_force v3", new.id, "queued")
    assert requested.created_by_name == "bea"  # the person who configured it acts for the run
    done = pipelines.scheduler_pass(engine=engine, settings=settings)
    assert [r.id for r in done.ran] == [requested.id] and done.ran[0].status == "succeeded"
    assert done.ran[0].candidate_label == "employment v2"


def report_for(session, version_id: int, **figures) -> int:
    batch = PredictionBatch(project_id=1, version_id=version_id, channel="file", input_sha256="0" * 64, rows=500)
    session.add(batch)
    session.flush()
    report = MonitoringReport(batch_id=batch.id, version_id=version_id, status="succeeded", rows=500, **figures)
    session.add(report)
    session.commit()
    return report.id


def test_a_performance_alert_with_retraining_requests_a_run_that_the_scheduler_starts(
        engine, settings, session, team, model, tmp_path):
    add_data(session, settings, team, tmp_path)
    version_id = registry.get_model(session=session, model_id=model.id).production.id
    rule = session.exec(select(AlertRule).where(AlertRule.metric == "performance")).one()
    assert rule.triggers_retraining  # a default rule of the promotion

    [alert] = alerts.evaluate_report(session=session, settings=settings,
                                     report_id=report_for(session, version_id, performance={"roc_auc": 0.5}))

    requested = pipelines.get_run(session=session, pipeline_run_id=alert.pipeline_run_id)
    assert (requested.trigger, requested.trigger_ref, requested.status) == (
        "performance_alert", f"alert {alert.id}", "queued")
    assert requested.alert_ids == [alert.id]
    # a second alert while the first run waits joins it
    [second] = alerts.evaluate_report(session=session, settings=settings,
                                      report_id=report_for(session, version_id, performance={"roc_auc": 0.4}))
    assert second.pipeline_run_id == requested.id
    assert len(pipelines.list_runs(session=session, model_id=model.id)) == 1

    done = pipelines.scheduler_pass(engine=engine, settings=settings)
    assert [r.status for r in done.ran] == ["succeeded"]


def test_a_drift_alert_with_retraining_records_its_trigger(settings, session, model):
    rule = session.exec(select(AlertRule).where(AlertRule.metric == "drift_share")).one()
    rule.triggers_retraining = True
    session.add(rule)
    session.commit()
    version_id = registry.get_model(session=session, model_id=model.id).production.id

    [alert] = alerts.evaluate_report(session=session, settings=settings,
                                     report_id=report_for(session, version_id, drift_share=0.6))

    assert pipelines.get_run(session=session, pipeline_run_id=alert.pipeline_run_id).trigger == "drift_alert"


def test_a_person_cannot_start_a_second_run_while_one_waits(settings, session, team, model):
    pipelines.request_run(session=session, settings=settings, model_id=model.id, trigger="manual", actor=team.bea)
    with pytest.raises(Conflict, match="already waiting to start"):
        pipelines.request_run(session=session, settings=settings, model_id=model.id, trigger="manual",
                              actor=team.bea)
    with pytest.raises(NotAllowed):
        pipelines.request_run(session=session, settings=settings, model_id=model.id, trigger="manual",
                              actor=team.rita)


# ── the schedule ────────────────────────────────────────────────────────────────────────────────────


def test_the_schedule_runs_a_model_when_due_and_not_before(engine, settings, session, team, model):
    config = pipelines.save_config(session=session, actor=team.bea, model_id=model.id, schedule_days=7,
                                   on_new_data=False, auto_promote=False)
    now = utcnow()
    assert timedelta(days=6, hours=23) < config.next_run_at.replace(tzinfo=now.tzinfo) - now <= timedelta(days=7)

    early = pipelines.scheduler_pass(engine=engine, settings=settings, now=now + timedelta(days=6))
    assert early.scheduled == [] and pipelines.list_runs(session=session, model_id=model.id) == []

    due = pipelines.scheduler_pass(engine=engine, settings=settings, now=now + timedelta(days=7, minutes=1))
    assert due.scheduled == [model.id]
    [ran] = due.ran
    assert (ran.trigger, ran.trigger_ref, ran.status) == ("schedule", "every 7 days", "stopped")
    assert "There is no new data" in ran.outcome  # nothing new to train on: stopped, not failed
    moved = pipelines.get_config(session=session, model_id=model.id).next_run_at
    assert moved.replace(tzinfo=now.tzinfo) - now > timedelta(days=14)

    again = pipelines.scheduler_pass(engine=engine, settings=settings, now=now + timedelta(days=7, minutes=2))
    assert again.scheduled == [] and again.ran == []


def test_a_run_whose_job_died_is_shown_as_failed(settings, session, team, model):
    requested = pipelines.request_run(session=session, settings=settings, model_id=model.id, trigger="manual",
                                      actor=team.bea)
    job = jobs.create_job(session=session, actor=team.bea, kind="pipeline.run",
                          params={"pipeline_run_id": requested.id})
    row = session.get(PipelineRun, requested.id)
    row.job_id = job.id
    session.add(row)
    failed = session.get(Job, job.id)
    failed.status, failed.error = "failed", "The server stopped before this job could start. Start it again."
    session.add(failed)
    session.commit()

    shown = pipelines.get_run(session=session, pipeline_run_id=requested.id)

    assert (shown.status, shown.outcome) == ("failed", failed.error)
    assert session.exec(select(ModelVersion)).all().__len__() == 1


# ── checklist evidence ──────────────────────────────────────────────────────────────────────────────


def test_the_checklist_shows_the_monitoring_plan_and_the_retraining_triggers_and_history(
        engine, settings, session, team, model):
    pipelines.save_config(session=session, actor=team.bea, model_id=model.id, schedule_days=30, on_new_data=True,
                          auto_promote=False)
    stopped = run_now(engine, settings, session, model, team.bea)
    version = session.get(ModelVersion, registry.get_model(session=session, model_id=model.id).production.id)

    evidence = checklist.collect_evidence(checklist.EvidenceContext(session=session, settings=settings,
                                                                    version=version))

    plan = evidence["SA-06"]
    assert plan.status == "pass" and plan.facts["Active rules"] == "2"
    assert plan.facts["Alerted in the app"] == "bea, mo"
    assert [row["Watches"] for row in plan.table] == ["Share of drifted input columns above 0.3",
                                                      next(r.description for r in alerts.list_rules(
                                                          session=session, model_id=model.id)
                                                          if r.metric == "performance")]
    retraining = evidence["SA-07"]
    assert retraining.status == "info"
    assert retraining.facts["Automatic triggers"].startswith("every 30 days; each new version of the training data; "
                                                             "alert “ROC AUC (performance) below")
    assert retraining.facts["Automatic promotion"].startswith("off")
    assert [(row["Run"], row["Trigger"], row["Status"]) for row in retraining.table] == [
        (stopped.id, "Started by hand", "Stopped by a check")]

    for rule in alerts.list_rules(session=session, model_id=model.id):
        alerts.set_rule_active(session=session, actor=team.bea, rule_id=rule.id, active=False)
    bare = checklist.collect_evidence(checklist.EvidenceContext(session=session, settings=settings, version=version))
    assert bare["SA-06"].status == "fail"  # a production model nobody watches
