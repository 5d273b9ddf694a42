"""The retraining pipeline (continuous training, MLOps level 1): one pipeline, whoever starts it.

A run of the pipeline for a model takes a new version of the production model's dataset and

1. checks it against the dataset's data contract (a broken rule stops the run; shifted distributions are
   recorded),
2. trains with the production run's configuration (same search, budget, metric, exclusions, seed and
   validation) on the new data,
3. scores the new model and the production model on the same new held-out rows,
4. registers the new model as a candidate version and certifies that it reproduces,
5. carries the model card text over and starts a self-assessment pre-filled from the previous one,
6. applies the registry's promotion gates (a candidate that fails the model checks is rejected),
7. tells the builders and the reviewers, and
8. promotes the candidate only when the model's pipeline settings allow automatic promotion and every
   automatic gate passes; otherwise it waits for the peer review and a manager.

The same :func:`execute` runs as the job ``pipeline.run`` started from the app, from ``steward pipeline run``,
from ``steward scheduler`` (schedules and requested runs) and from triggers (a new dataset version, an alert).
Each :class:`~core.models.PipelineRun` keeps its trigger, every step's status, timings and outputs, and the
outcome.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core import audit, checklist, datasets, jobs, model_card, notifications, registry
from core.auth import OPERATOR, require_role
from core.config import Settings
from core.data import contract as contracts
from core.db import session_scope
from core.errors import Conflict, DomainError, InvalidInput, NotFound
from core.models import (
    AlertRule,
    AuditEvent,
    DatasetVersion,
    GateOverride,
    Job,
    JobStatus,
    ModelVersion,
    PipelineConfig,
    PipelineRun,
    Project,
    RegisteredModel,
    Role,
    TrainingRun,
    User,
    UserPublic,
    UserRole,
    VersionStatus,
    utcnow,
)
from core.training import runs

log = logging.getLogger(__name__)

JOB_KIND = "pipeline.run"
TRIGGERS = {"manual": "Started by hand", "schedule": "Schedule", "new_data": "New data version",
            "drift_alert": "Drift alert", "performance_alert": "Performance alert"}
STATUSES = {"queued": "Waiting to start", "running": "Running", "succeeded": "Candidate registered",
            "stopped": "Stopped by a check", "failed": "Failed", "cancelled": "Cancelled"}
ACTIVE = ("queued", "running")
STEPS = {
    "data": "Choose the new data",
    "validate": "Check the data against the data contract",
    "train": "Train with the production configuration",
    "evaluate": "Score the new and the production model on the same new test rows",
    "register": "Register the candidate",
    "reproduce": "Certify that the candidate reproduces",
    "document": "Carry over the model card and pre-fill the self-assessment",
    "gates": "Apply the promotion gates",
    "notify": "Tell the builders and the reviewers",
    "promote": "Promote, or wait for the review",
}
# A candidate failing one of these model checks is rejected by the pipeline; the review and the model card are
# for people to complete afterwards.
BLOCKING_GATES = ("reproducibility", "baseline", "production", "subgroups")
MAX_SCHEDULE_DAYS = 366

# Runs requested by a schedule or a trigger are submitted by Steward itself, not by a person.
SCHEDULER = OPERATOR.model_copy(update={"username": "scheduler", "display_name": "Steward scheduler"})
Progress = Callable[[float, str], None]


class _Stop(Exception):
    """A check of the pipeline said no: the run ends as "stopped" with this message."""


# ── read models ─────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class PipelineConfigPublic:
    model_id: int
    model_name: str
    schedule_days: int | None
    next_run_at: datetime | None
    on_new_data: bool
    auto_promote: bool
    auto_promote_by_name: str | None
    updated_by_name: str | None
    updated_at: datetime | None

    @property
    def triggers(self) -> list[str]:
        """The automatic triggers in words (alerts that start retraining are listed with the alert rules)."""
        found = []
        if self.schedule_days:
            found.append(f"every {self.schedule_days} day{'s' * (self.schedule_days != 1)}")
        if self.on_new_data:
            found.append("each new version of the training data")
        return found


@dataclass(frozen=True)
class PipelineRunPublic:
    id: int
    project_id: int
    model_id: int
    model_name: str
    trigger: str
    trigger_ref: str
    dataset_version_id: int | None
    dataset_label: str | None
    status: str
    steps: list[dict[str, Any]]
    outcome: str
    run_id: int | None
    candidate_version_id: int | None
    candidate_label: str | None
    job_id: int | None
    created_by_name: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    alert_ids: list[int] = field(default_factory=list)

    @property
    def trigger_label(self) -> str:
        label = TRIGGERS.get(self.trigger, self.trigger)
        return f"{label} ({self.trigger_ref})" if self.trigger_ref else label

    @property
    def finished(self) -> bool:
        return self.status not in ACTIVE

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


def _name(session: Session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    user = session.get(User, user_id)
    return (user.display_name or user.username) if user else f"user {user_id}"


def _model(session: Session, model_id: int) -> RegisteredModel:
    model = session.get(RegisteredModel, model_id)
    if model is None:
        raise NotFound(f"Model {model_id} does not exist.")
    return model


# ── configuration ───────────────────────────────────────────────────────────────────────────────────


def _config_row(session: Session, model_id: int) -> PipelineConfig | None:
    return session.exec(select(PipelineConfig).where(PipelineConfig.model_id == model_id)).first()


def _auto_promote_enabler(session: Session, model_id: int) -> int | None:
    """Who last switched automatic promotion on for a model (a manager or an administrator), from the audit trail."""
    events = session.exec(select(AuditEvent).where(AuditEvent.action == "pipeline.config.save",
                                                   AuditEvent.entity_id == str(model_id))
                          .order_by(col(AuditEvent.seq).desc())).all()
    for event in events:
        if event.details.get("auto_promote_switched_on"):
            return event.actor_id
    return None


def get_config(*, session: Session, model_id: int) -> PipelineConfigPublic:
    """A model's retraining settings (everything off when nobody set them yet)."""
    model = _model(session, model_id)
    row = _config_row(session, model_id)
    if row is None:
        return PipelineConfigPublic(model_id=model.id, model_name=model.name, schedule_days=None, next_run_at=None,
                                    on_new_data=False, auto_promote=False, auto_promote_by_name=None,
                                    updated_by_name=None, updated_at=None)
    return PipelineConfigPublic(
        model_id=model.id, model_name=model.name, schedule_days=row.schedule_days, next_run_at=row.next_run_at,
        on_new_data=row.on_new_data, auto_promote=row.auto_promote,
        auto_promote_by_name=_name(session, _auto_promote_enabler(session, model_id)) if row.auto_promote else None,
        updated_by_name=_name(session, row.updated_by_id), updated_at=row.updated_at)


def save_config(*, session: Session, actor: UserPublic, model_id: int, schedule_days: int | None,
                on_new_data: bool, auto_promote: bool) -> PipelineConfigPublic:
    """Set how a model is retrained: every N days, on each new data version, and whether to promote by itself.

    Builders, managers and administrators set the schedule and the new-data trigger; only a manager or an
    administrator may switch automatic promotion on or off, since it replaces their own decision.
    """
    require_role(actor, Role.builder, Role.manager, Role.admin)
    model = _model(session, model_id)
    if schedule_days is not None:
        if not 1 <= int(schedule_days) <= MAX_SCHEDULE_DAYS:
            raise InvalidInput(f"The schedule is every 1 to {MAX_SCHEDULE_DAYS} days (or no schedule).")
        schedule_days = int(schedule_days)
    row = _config_row(session, model_id) or PipelineConfig(model_id=model_id)
    switched = bool(auto_promote) != bool(row.auto_promote)
    if switched and not actor.has_role(Role.manager, Role.admin):
        raise InvalidInput("Only a manager or an administrator may switch automatic promotion on or off: it "
                           "replaces their decision to promote.")
    now = utcnow()
    if schedule_days != row.schedule_days or (schedule_days and row.next_run_at is None):
        row.next_run_at = now + timedelta(days=schedule_days) if schedule_days else None
    row.schedule_days, row.on_new_data, row.auto_promote = schedule_days, bool(on_new_data), bool(auto_promote)
    row.updated_by_id, row.updated_at = actor.id or None, now
    session.add(row)
    audit.record_event(session, actor=actor, action="pipeline.config.save", entity_type="registered_model",
                       entity_id=model_id, details={"model": model.name, "schedule_days": schedule_days,
                                                    "on_new_data": row.on_new_data, "auto_promote": row.auto_promote,
                                                    "auto_promote_switched_on": switched and row.auto_promote,
                                                    "next_run_at": row.next_run_at})
    session.commit()
    return get_config(session=session, model_id=model_id)


# ── requesting and starting runs ────────────────────────────────────────────────────────────────────


def _production(session: Session, model_id: int) -> ModelVersion | None:
    return session.exec(select(ModelVersion).where(ModelVersion.model_id == model_id,
                                                   ModelVersion.status == VersionStatus.production)).first()


def _may_build(user: User | None, session: Session) -> bool:
    if user is None or not user.is_active:
        return False
    roles = set(session.exec(select(UserRole.role).where(UserRole.user_id == user.id)))
    return bool(roles & {Role.builder, Role.admin})


def acting_user(*, session: Session, model_id: int) -> User | None:
    """Who an automatic run acts for: whoever configured the pipeline, else whoever trained the production
    version, else the project owner (the first of them who may still build models)."""
    model = _model(session, model_id)
    candidates = []
    config = _config_row(session, model_id)
    if config is not None and config.updated_by_id:
        candidates.append(config.updated_by_id)
    production = _production(session, model_id)
    if production is not None:
        candidates.append(session.get(TrainingRun, production.run_id).created_by_id)
    candidates.append(session.get(Project, model.project_id).owner_id)
    for user_id in candidates:
        user = session.get(User, user_id)
        if _may_build(user, session):
            return user
    return None


def request_run(*, session: Session, settings: Settings, model_id: int, trigger: str, trigger_ref: str = "",
                dataset_version_id: int | None = None, actor: UserPublic | None = None,
                runner=None) -> PipelineRunPublic:
    """Record a pipeline run for a model and start it on ``runner`` (or leave it for ``steward scheduler``).

    With ``actor`` (a builder or an administrator starting it by hand) the run acts as them; automatic triggers, and
    a manager asking for a run, act as :func:`acting_user`. An automatic trigger finding a run of the model already
    waiting or running joins it instead of adding another; a person is told.
    """
    if trigger not in TRIGGERS:
        raise InvalidInput(f"Unknown trigger {trigger!r}.")
    model = _model(session, model_id)
    if actor is not None:
        require_role(actor, Role.builder, Role.manager, Role.admin)
    busy = session.exec(select(PipelineRun).where(PipelineRun.model_id == model_id,
                                                  col(PipelineRun.status).in_(ACTIVE))
                        .order_by(col(PipelineRun.id))).first()
    if busy is not None:
        busy = _settle(session, busy)
    if busy is not None and busy.status in ACTIVE:
        if actor is not None:
            raise Conflict(f"Retraining of {model.name} is already {STATUSES[busy.status].lower()} (pipeline run "
                           f"{busy.id}). Wait for it to finish.")
        return _public(session, busy)
    if dataset_version_id is not None and session.get(DatasetVersion, dataset_version_id) is None:
        raise NotFound(f"Dataset version {dataset_version_id} does not exist.")
    if actor is not None and actor.has_role(Role.builder, Role.admin):
        acting_id = actor.id
    else:  # a trigger, or a manager asking: the run acts for the person who looks after the model
        acting = acting_user(session=session, model_id=model_id)
        if acting is None:
            raise InvalidInput(f"Nobody can retrain {model.name}: the people who configured it, trained it or own "
                               "the project no longer hold the builder role.")
        acting_id = acting.id
    row = PipelineRun(project_id=model.project_id, model_id=model_id, trigger=trigger, trigger_ref=trigger_ref[:200],
                      dataset_version_id=dataset_version_id, created_by_id=acting_id)
    session.add(row)
    session.flush()
    audit.record_event(session, actor=actor or SCHEDULER, action="pipeline.request", entity_type="pipeline_run",
                       entity_id=row.id, details={"model": model.name, "trigger": trigger, "ref": trigger_ref,
                                                  "dataset_version_id": dataset_version_id,
                                                  "acting_for": _name(session, acting_id)})
    session.commit()
    if runner is not None:
        start(session=session, runner=runner, actor=actor, pipeline_run_id=row.id)
    return get_run(session=session, pipeline_run_id=row.id)


def retrain_from_alert(*, session: Session, settings: Settings, runner, actor: UserPublic,
                       alert_id: int) -> PipelineRunPublic:
    """Start retraining because of an alert ("Retrain now" on the Alerts page); the alert remembers the run."""
    from core import alerts

    alert = alerts.get_alert(session=session, alert_id=alert_id)
    if alert.pipeline_run_id is not None:
        earlier = get_run(session=session, pipeline_run_id=alert.pipeline_run_id)
        if not earlier.finished:
            raise Conflict(f"Retraining for alert {alert_id} is already {STATUSES[earlier.status].lower()} "
                           f"(pipeline run {earlier.id}).")
    requested = request_run(session=session, settings=settings, model_id=alert.model_id,
                            trigger=alert.retraining_trigger, trigger_ref=f"alert {alert_id}", actor=actor,
                            runner=runner)
    alerts.link_pipeline_run(session, alert_id=alert_id, pipeline_run_id=requested.id)
    session.commit()
    return get_run(session=session, pipeline_run_id=requested.id)


def _attach_job(session: Session, actor: UserPublic | None, row: PipelineRun) -> int | None:
    """Create the job of a waiting run and claim the run for it; None when another process took it first."""
    model = session.get(RegisteredModel, row.model_id)
    job = jobs.create_job(session=session, actor=actor or SCHEDULER, kind=JOB_KIND,
                          params={"pipeline_run_id": row.id}, project_id=row.project_id,
                          title=f"Retraining {model.name} (pipeline run {row.id}, {TRIGGERS[row.trigger].lower()})")
    claimed = session.execute(update(PipelineRun).where(
        col(PipelineRun.id) == row.id, col(PipelineRun.job_id).is_(None), PipelineRun.status == "queued")
        .values(job_id=job.id))
    if claimed.rowcount != 1:
        stale = session.get(Job, job.id)
        stale.status, stale.finished_at, stale.message = JobStatus.cancelled, utcnow(), "Already started elsewhere."
        session.add(stale)
        session.commit()
        return None
    session.commit()
    return job.id


def start(*, session: Session, runner, actor: UserPublic | None, pipeline_run_id: int) -> PipelineRunPublic:
    """Start a waiting run as a job on ``runner`` ("Start now" in the app)."""
    if actor is not None:
        require_role(actor, Role.builder, Role.manager, Role.admin)
    row = _get(session, pipeline_run_id)
    if row.status != "queued" or row.job_id is not None:
        raise Conflict(f"Pipeline run {pipeline_run_id} has already started.")
    job_id = _attach_job(session, actor, row)
    if job_id is None:
        raise Conflict(f"Pipeline run {pipeline_run_id} was just started elsewhere.")
    runner.start(job_id)
    return get_run(session=session, pipeline_run_id=pipeline_run_id)


def run_here(*, engine: Engine, settings: Settings, pipeline_run_id: int,
             actor: UserPublic | None = None) -> PipelineRunPublic:
    """Run a waiting pipeline run as a job in this process (the CLI and the scheduler): same job, no worker."""
    with session_scope(engine) as session:
        job_id = _attach_job(session, actor, _get(session, pipeline_run_id))
    if job_id is None:
        raise Conflict(f"Pipeline run {pipeline_run_id} was just started elsewhere.")
    jobs.run_job(job_id, jobs.JOB_KINDS[JOB_KIND], settings.resolved_database_url)
    with session_scope(engine) as session:
        return get_run(session=session, pipeline_run_id=pipeline_run_id)


def pipeline_job(ctx) -> dict[str, Any]:
    """Job ``pipeline.run``."""
    from core.config import get_settings

    with ctx.session() as session:
        done = execute(session=session, settings=get_settings(), pipeline_run_id=ctx.params["pipeline_run_id"],
                       progress=ctx.progress)
    return {"pipeline_run_id": done.id, "status": done.status, "candidate_version_id": done.candidate_version_id}


def on_new_data(*, session: Session, settings: Settings, dataset_version_id: int) -> list[PipelineRunPublic]:
    """Request retraining of every production model trained on this dataset whose pipeline watches for new data.

    Called after a new dataset version is saved; never lets a problem here undo the upload.
    """
    try:
        version = session.get(DatasetVersion, dataset_version_id)
        requested = []
        watching = session.exec(select(PipelineConfig).where(col(PipelineConfig.on_new_data).is_(True))).all()
        for config in watching:
            production = _production(session, config.model_id)
            if production is None:
                continue
            trained_on = session.get(DatasetVersion, session.get(TrainingRun, production.run_id).dataset_version_id)
            if trained_on.dataset_id != version.dataset_id or trained_on.id == version.id:
                continue
            name = datasets.get_version(session=session, version_id=version.id)
            requested.append(request_run(session=session, settings=settings, model_id=config.model_id,
                                         trigger="new_data", trigger_ref=f"{name.dataset_name} v{version.number}",
                                         dataset_version_id=version.id))
        return requested
    except Exception:  # noqa: BLE001 - the upload itself succeeded; the request is logged, not fatal
        session.rollback()
        log.exception("Could not request retraining for dataset version %s", dataset_version_id)
        return []


def find_dataset_version(*, session: Session, model_id: int, number: int):
    """Version ``number`` of the dataset the model's production version was trained on."""
    model = _model(session, model_id)
    production = _production(session, model_id)
    if production is None:
        raise NotFound(f"{model.name} has no version in production, so there is no dataset to retrain it on.")
    trained_on = session.get(DatasetVersion, session.get(TrainingRun, production.run_id).dataset_version_id)
    found = session.exec(select(DatasetVersion).where(DatasetVersion.dataset_id == trained_on.dataset_id,
                                                      DatasetVersion.number == number)).first()
    if found is None:
        name = datasets.get_version(session=session, version_id=trained_on.id).dataset_name
        raise NotFound(f"{name} has no version {number}.")
    return datasets.get_version(session=session, version_id=found.id)


def training_data_versions(*, session: Session, model_id: int) -> tuple[int, list[Any]]:
    """The id of the production version's training data and every version of that dataset, newest first."""
    model = _model(session, model_id)
    production = _production(session, model_id)
    if production is None:
        raise NotFound(f"{model.name} has no version in production.")
    trained_on = session.get(DatasetVersion, session.get(TrainingRun, production.run_id).dataset_version_id)
    return trained_on.id, datasets.list_versions(session=session, dataset_id=trained_on.dataset_id)


# ── reading runs ────────────────────────────────────────────────────────────────────────────────────


def _get(session: Session, pipeline_run_id: int) -> PipelineRun:
    row = session.get(PipelineRun, pipeline_run_id)
    if row is None:
        raise NotFound(f"Pipeline run {pipeline_run_id} does not exist.")
    return row


def _settle(session: Session, row: PipelineRun) -> PipelineRun:
    """End a waiting or running run whose job ended without finishing it (a crashed worker, a restart)."""
    if row.status not in ACTIVE or row.job_id is None:
        return row
    job = session.get(Job, row.job_id)
    if job is None or job.status not in (JobStatus.failed, JobStatus.cancelled):
        return row
    row.status = "cancelled" if job.status == JobStatus.cancelled else "failed"
    row.outcome = "Cancelled." if row.status == "cancelled" else (job.error or "The pipeline job stopped.")
    row.finished_at = utcnow()
    session.add(row)
    session.commit()
    return row


def _public(session: Session, row: PipelineRun) -> PipelineRunPublic:
    from core.models import Alert

    model = session.get(RegisteredModel, row.model_id)
    data = datasets.get_version(session=session, version_id=row.dataset_version_id) if row.dataset_version_id else None
    candidate = session.get(ModelVersion, row.candidate_version_id) if row.candidate_version_id else None
    alert_ids = list(session.exec(select(Alert.id).where(Alert.pipeline_run_id == row.id).order_by(col(Alert.id))))
    return PipelineRunPublic(
        id=row.id, project_id=row.project_id, model_id=row.model_id, model_name=model.name, trigger=row.trigger,
        trigger_ref=row.trigger_ref, dataset_version_id=row.dataset_version_id,
        dataset_label=f"{data.dataset_name} v{data.number}" if data else None, status=row.status,
        steps=[dict(step) for step in row.steps], outcome=row.outcome, run_id=row.run_id,
        candidate_version_id=row.candidate_version_id,
        candidate_label=f"{model.name} v{candidate.number}" if candidate else None, job_id=row.job_id,
        created_by_name=_name(session, row.created_by_id) or "Steward", created_at=row.created_at,
        started_at=row.started_at, finished_at=row.finished_at, alert_ids=alert_ids)


def get_run(*, session: Session, pipeline_run_id: int) -> PipelineRunPublic:
    return _public(session, _settle(session, _get(session, pipeline_run_id)))


def list_runs(*, session: Session, project_id: int | None = None, model_id: int | None = None,
              limit: int = 100) -> list[PipelineRunPublic]:
    """Pipeline runs, newest first, of a project or of one model."""
    query = select(PipelineRun).order_by(col(PipelineRun.id).desc()).limit(limit)
    if project_id is not None:
        query = query.where(PipelineRun.project_id == project_id)
    if model_id is not None:
        query = query.where(PipelineRun.model_id == model_id)
    return [_public(session, _settle(session, row)) for row in session.exec(query).all()]


# ── the pipeline ────────────────────────────────────────────────────────────────────────────────────


class _Steps:
    """Records each step of a run as it goes: status, start, end, seconds, outputs and a message."""

    def __init__(self, session: Session, row: PipelineRun, progress: Progress) -> None:
        self.session, self.row, self.progress = session, row, progress

    def _save(self, entry: dict[str, Any]) -> None:
        steps = [dict(step) for step in self.row.steps]
        if steps and steps[-1]["name"] == entry["name"]:
            steps[-1] = dict(entry)
        else:
            steps.append(dict(entry))
        self.row.steps = steps  # a new list: JSON columns only notice a new value
        self.session.add(self.row)
        self.session.commit()

    @contextmanager
    def step(self, name: str, fraction: float) -> Iterator[dict[str, Any]]:
        entry: dict[str, Any] = {"name": name, "title": STEPS[name], "status": "running",
                                 "started_at": utcnow().isoformat(), "finished_at": None, "seconds": None,
                                 "message": "", "outputs": {}}
        self._save(entry)
        began = time.monotonic()
        try:
            self.progress(fraction, STEPS[name])  # raises JobCancelled when someone asked to cancel
            yield entry
        except _Stop as stop:
            entry["status"], entry["message"] = "stopped", str(stop)
            raise
        except jobs.JobCancelled:
            entry["status"], entry["message"] = "cancelled", "Cancelled."
            raise
        except DomainError as error:
            entry["status"], entry["message"] = "failed", str(error)
            raise
        except Exception as error:
            entry["status"], entry["message"] = "failed", f"Unexpected problem: {type(error).__name__}: {error}"
            raise
        else:
            entry["status"] = "succeeded"
        finally:
            if entry["status"] != "succeeded":
                self.session.rollback()  # whatever the failed step left half-done is not kept
            entry["finished_at"] = utcnow().isoformat()
            entry["seconds"] = round(time.monotonic() - began, 2)
            entry["outputs"] = _jsonable(entry["outputs"])
            self._save(entry)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def execute(*, session: Session, settings: Settings, pipeline_run_id: int,
            progress: Progress | None = None) -> PipelineRunPublic:
    """Run the pipeline for a recorded run, record every step and the outcome, and return the run."""
    report = progress or (lambda _fraction, _message: None)
    row = _get(session, pipeline_run_id)
    if row.status != "queued":
        raise Conflict(f"Pipeline run {pipeline_run_id} has already run ({row.status}).")
    row.status, row.started_at, row.steps = "running", utcnow(), []
    session.add(row)
    session.commit()
    steps = _Steps(session, row, report)
    status, outcome = "failed", ""
    try:
        outcome = _run(session, settings, row, steps, report)
        status = "succeeded"
    except _Stop as stop:
        status, outcome = "stopped", str(stop)
    except jobs.JobCancelled:
        status, outcome = "cancelled", "Cancelled."
        raise
    except DomainError as error:
        status, outcome = "failed", str(error)
    except Exception as error:
        log.exception("Pipeline run %s failed", pipeline_run_id)
        status, outcome = "failed", f"The pipeline stopped because of an unexpected problem ({type(error).__name__}: " \
                                    f"{error})."
        raise
    finally:
        session.rollback()
        row = session.get(PipelineRun, pipeline_run_id, populate_existing=True)
        row.status, row.outcome, row.finished_at = status, outcome[:2000], utcnow()
        session.add(row)
        audit.record_event(session, actor=SCHEDULER, action=f"pipeline.{status}", entity_type="pipeline_run",
                           entity_id=row.id, details={"outcome": outcome[:500], "run_id": row.run_id,
                                                      "candidate_version_id": row.candidate_version_id})
        session.commit()
    return get_run(session=session, pipeline_run_id=pipeline_run_id)


def _metric_values(run) -> dict[str, float | None]:
    return {name: values.get("value") for name, values in ((run.evaluation or {}).get("metrics") or {}).items()}


def _reviewer_ids(session: Session) -> set[int]:
    return set(session.exec(select(UserRole.user_id).join(User, User.id == UserRole.user_id)
                            .where(UserRole.role == Role.reviewer, col(User.is_active).is_(True))))


def _run(session: Session, settings: Settings, row: PipelineRun, steps: _Steps, report: Progress) -> str:
    from core import auth, review

    model = _model(session, row.model_id)
    actor = auth.get_user(session=session, user_id=row.created_by_id) if row.created_by_id else None
    if actor is None or not actor.is_active or not actor.has_role(Role.builder, Role.admin):
        raise _Stop("The person this run acts for may no longer build models. Start it again by hand.")

    with steps.step("data", 0.02) as step:
        production = _production(session, model.id)
        if production is None:
            raise _Stop(f"{model.name} has no version in production. The pipeline retrains the production model "
                        "with its configuration: promote a version first.")
        current = runs.get_run(session=session, run_id=production.run_id)
        trained_on = datasets.get_version(session=session, version_id=current.dataset_version_id)
        if row.dataset_version_id is not None:
            new = datasets.get_version(session=session, version_id=row.dataset_version_id)
            if new.dataset_id != trained_on.dataset_id:
                raise _Stop(f"{new.dataset_name} v{new.number} is not a version of {trained_on.dataset_name}, the "
                            f"data {model.name} v{production.number} was trained on.")
        else:
            new = datasets.list_versions(session=session, dataset_id=trained_on.dataset_id)[0]
            if new.id == trained_on.id:
                raise _Stop(f"There is no new data: the newest version of {trained_on.dataset_name} (v{new.number}) "
                            f"is the one {model.name} v{production.number} was trained on. Add a version with "
                            "recent labelled data, then run the pipeline again.")
            row.dataset_version_id = new.id
            session.add(row)
            session.commit()
        step["outputs"] = {"production": f"{model.name} v{production.number} (run {current.id})",
                           "trained_on": f"{trained_on.dataset_name} v{trained_on.number}",
                           "new_data": f"{new.dataset_name} v{new.number}", "rows": new.rows,
                           "sha256": new.sha256, "acting_for": actor.label}

    with steps.step("validate", 0.05) as step:
        contract = datasets.latest_contract(session=session, dataset_id=new.dataset_id)
        if contract is not None:
            content, source = contract.content, f"data contract {contract.number}"
        else:
            content = contracts.derive_contract(datasets.load_frame(settings=settings, version=trained_on),
                                                trained_on.types, trained_on.profile)
            source = (f"rules derived from the training data ({trained_on.dataset_name} v{trained_on.number}); "
                      "no data contract is saved for this dataset")
        checked = contracts.validate_frame(datasets.load_frame(settings=settings, version=new), content)
        drifted = [{"column": d["column"], "score": d.get("score"), "threshold": d.get("threshold")}
                   for d in checked["drift"] if d.get("drifted")]
        step["outputs"] = {"checked_against": source, "ok": checked["ok"],
                           "problems": [f["message"] for f in checked["failures"]],
                           "warnings": [w["message"] for w in checked["warnings"]],
                           "drifted_columns": drifted, "rows": checked["rows"]}
        if not checked["ok"]:
            count = len(checked["failures"])
            raise _Stop(f"{new.dataset_name} v{new.number} breaks the {source.split(';')[0]}: {count} "
                        f"problem{'s' * (count != 1)} ({checked['failures'][0]['message']}"
                        f"{' …' if count > 1 else ''}). Fix the data or the contract; nothing was trained.")

    with steps.step("train", 0.08) as step:
        config = current.config
        created = runs.create_run(
            session=session, settings=settings, actor=actor, version_id=new.id, target=current.target,
            task=current.task, budget_seconds=float(config.get("budget_seconds", runs.BUDGET_PRESETS["standard"])),
            metric=current.primary_metric, excluded=list(config.get("excluded") or []), seed=current.seed,
            cv=config.get("cv", "stratified"), cv_column=config.get("cv_column"), folds=config.get("folds"))
        row.run_id = created.id
        session.add(row)
        session.commit()
        trained = runs.run_training(session=session, settings=settings, run_id=created.id, actor=actor,
                                    progress=lambda f, m: report(0.08 + 0.6 * f, f"Training: {m}"))
        value = _metric_values(trained).get(trained.primary_metric)
        step["outputs"] = {"run_id": trained.id, "chosen": trained.chosen_candidate,
                           "metric": trained.primary_metric, "test_value": value,
                           "budget_seconds": trained.config.get("budget_seconds"), "seed": trained.seed,
                           "excluded": trained.config.get("excluded"), "same_config_as_run": current.id}

    with steps.step("evaluate", 0.7) as step:
        scored = registry.cross_score(settings=settings, model_run=current, test_run=trained)
        metric = trained.primary_metric
        mine = _metric_values(trained)
        outputs: dict[str, Any] = {"test_rows": (trained.evaluation or {}).get("n_rows"), "metric": metric,
                                   "candidate": mine}
        if scored["comparable"]:
            theirs = scored["metrics"]
            outputs["production"] = theirs
            if mine.get(metric) is not None and theirs.get(metric) is not None:
                outputs["candidate_better_by"] = registry.advantage(metric, mine[metric], theirs[metric])
        else:
            outputs["production"] = None
            outputs["not_comparable"] = scored["why"]
        step["outputs"] = outputs

    with steps.step("register", 0.74) as step:
        version = registry.register_run(session=session, actor=actor, run_id=trained.id, model_name=model.name)
        row.candidate_version_id = version.id
        session.add(row)
        session.commit()
        step["outputs"] = {"version": version.label, "version_id": version.id}

    with steps.step("reproduce", 0.76) as step:
        certificate = runs.start_reproduction(session=session, runner=None, actor=actor, run_id=trained.id)
        certificate = runs.reproduce(session=session, settings=settings, certificate_id=certificate.id, actor=actor,
                                     progress=lambda f, m: report(0.76 + 0.14 * f, f"Reproducing: {m}"))
        step["outputs"] = {"certificate": certificate.id, "status": certificate.status,
                           "prediction_hash": certificate.reproduced_hash}

    with steps.step("document", 0.9) as step:
        outputs = {}
        revisions = model_card.list_revisions(session=session, run_id=current.id)
        if revisions:
            try:
                saved = model_card.save_card(session=session, actor=actor, run_id=trained.id,
                                             content=revisions[0].content, based_on=0)
            except InvalidInput:  # the production card was empty: nothing to carry over
                outputs["card"] = "The production version's card has no text to carry over."
            else:
                outputs["card"] = (f"Card revision {saved.number} carries over revision {revisions[0].number} of "
                                   f"{model.name} v{production.number}.")
        else:
            outputs["card"] = f"{model.name} v{production.number} has no model card to carry over."
        assessment = checklist.start_assessment(session=session, actor=actor, version_id=version.id)
        answered = sum(1 for item in assessment.items.values() if item.answer)
        outputs["assessment"] = (f"Self-assessment started with {answered} of {len(assessment.items)} answers "
                                 "carried over from the previous version; the builder checks them against the new "
                                 "evidence and submits.")
        outputs["card_complete"] = model_card.completeness(session=session, run_id=trained.id).complete
        step["outputs"] = outputs

    with steps.step("gates", 0.93) as step:
        gates = registry.evaluate_gates(session=session, settings=settings, version_id=version.id)
        step["outputs"] = {"gates": [{"gate": g.gate, "title": g.title, "verdict": g.verdict, "reason": g.reason}
                                     for g in gates.gates]}
        failed = [g for g in gates.gates if g.gate in BLOCKING_GATES and not g.ok]
        if failed:
            why = "; ".join(f"{g.title}: {g.reason}" for g in failed)
            registry.change_status(session=session, actor=actor, version_id=version.id,
                                   to_status=VersionStatus.rejected,
                                   reason=f"Rejected by retraining pipeline run {row.id}: {why}"[:2000])
            session.commit()
            raise _Stop(f"{version.label} was registered but rejected because it fails the model checks: {why}")

    with steps.step("notify", 0.96) as step:
        builders = review.authors_of(session=session, version_id=production.id) | {actor.id}
        reviewers = _reviewer_ids(session) - review.authors_of(session=session, version_id=version.id)
        why = TRIGGERS[row.trigger].lower() + (f", {row.trigger_ref}" if row.trigger_ref else "")
        notifications.notify(session, user_ids=builders, page="checklist",
                             message=f"Retraining ({why}) registered {version.label}. Check the answers carried over "
                                     "into its self-assessment and submit it for peer review.")
        notifications.notify(session, user_ids=reviewers, page="pipelines",
                             message=f"Retraining ({why}) registered {version.label}; its review will follow once "
                                     "the builder submits the self-assessment.")
        session.commit()
        step["outputs"] = {"builders": sorted(_name(session, i) or "" for i in builders),
                           "reviewers": sorted(_name(session, i) or "" for i in reviewers)}

    with steps.step("promote", 0.98) as step:
        step["outputs"] = {"decision": _maybe_promote(session, settings, row, version)}
    return f"{version.label} is registered as a candidate; {step['outputs']['decision']}."


def _maybe_promote(session: Session, settings: Settings, row: PipelineRun, version) -> str:
    from core import auth

    config = _config_row(session, row.model_id)
    if config is None or not config.auto_promote:
        return "automatic promotion is off: it waits for the peer review and a manager's promotion"
    gates = registry.evaluate_gates(session=session, settings=settings, version_id=version.id)
    failing = [g.title for g in gates.gates if g.gate != "review" and not g.ok]
    if failing:
        return f"not promoted automatically, since these gates fail: {', '.join(failing)}; it waits for people"
    enabler_id = _auto_promote_enabler(session, row.model_id)
    enabler = auth.get_user(session=session, user_id=enabler_id) if enabler_id else None
    if enabler is None or not enabler.is_active or not enabler.has_role(Role.manager, Role.admin):
        return ("not promoted automatically: the manager who allowed it no longer may promote; it waits for the "
                "review and a manager")
    allowed_at = config.updated_at
    reason = (f"Automatic promotion of a retrained version (pipeline run {row.id}), allowed for this model by "
              f"{enabler.label} in the pipeline settings (last changed {allowed_at:%Y-%m-%d}); every automatic "
              "gate passed.")
    session.add(GateOverride(version_id=version.id, gate="review", reason=reason, actor_id=enabler.id))
    session.flush()
    try:
        promoted = registry.promote_version(session=session, settings=settings, actor=enabler, version_id=version.id,
                                            reason=reason)
    except DomainError as error:
        session.rollback()
        return f"not promoted automatically: {error}"
    return f"promoted automatically to production as {promoted.label}, as allowed by {enabler.label}"


# ── schedule ────────────────────────────────────────────────────────────────────────────────────────


@dataclass
class SchedulerPass:
    """What one pass of ``steward scheduler`` did."""

    deliveries: list[Any] = field(default_factory=list)
    scheduled: list[int] = field(default_factory=list)  # models whose schedule fell due
    ran: list[PipelineRunPublic] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def due_models(*, session: Session, now: datetime | None = None) -> list[int]:
    """Models whose schedule is due (next run time reached)."""
    now = now or utcnow()
    rows = session.exec(select(PipelineConfig).where(col(PipelineConfig.schedule_days).is_not(None),
                                                     col(PipelineConfig.next_run_at) <= now)
                        .order_by(col(PipelineConfig.next_run_at))).all()
    return [row.model_id for row in rows]


def scheduler_pass(*, engine: Engine, settings: Settings, now: datetime | None = None,
                   say: Callable[[str], None] | None = None) -> SchedulerPass:
    """One pass of the scheduler: retry due alert deliveries, request due scheduled runs, run waiting runs here."""
    from core import alerts

    say = say or (lambda _message: None)
    now = now or utcnow()
    done = SchedulerPass()
    with session_scope(engine) as session:
        done.deliveries = alerts.deliver_due(session=session, settings=settings, now=now)
        for model_id in due_models(session=session, now=now):
            config = _config_row(session, model_id)
            config.next_run_at = now + timedelta(days=config.schedule_days)  # first: a failing run never loops
            session.add(config)
            session.commit()
            done.scheduled.append(model_id)
            try:
                request_run(session=session, settings=settings, model_id=model_id, trigger="schedule",
                            trigger_ref=f"every {config.schedule_days} day{'s' * (config.schedule_days != 1)}")
            except DomainError as error:
                done.problems.append(f"{_model(session, model_id).name}: {error}")
        waiting = session.exec(select(PipelineRun.id).where(PipelineRun.status == "queued",
                                                            col(PipelineRun.job_id).is_(None))
                               .order_by(col(PipelineRun.id))).all()
    for pipeline_run_id in waiting:
        say(f"Running pipeline run {pipeline_run_id}…")
        try:
            done.ran.append(run_here(engine=engine, settings=settings, pipeline_run_id=pipeline_run_id))
        except Conflict:
            continue  # another scheduler took it
    return done


# ── evidence for the checklist and the maturity view ───────────────────────────────────────────────


def retraining_triggers(*, session: Session, model_id: int) -> list[str]:
    """Every automatic retraining trigger of a model, in words."""
    found = list(get_config(session=session, model_id=model_id).triggers)
    rules = session.exec(select(AlertRule).where(AlertRule.model_id == model_id, col(AlertRule.active).is_(True),
                                                 col(AlertRule.triggers_retraining).is_(True))).all()
    from core.alerts import describe_rule

    found += [f"alert “{describe_rule(r.metric, r.column, r.direction, r.threshold)}”" for r in rules]
    return found

