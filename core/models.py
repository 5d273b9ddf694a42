"""All tables of the store, and the read models services return.

Table classes are singular nouns. Services never hand a live table row to a page: they return the
``...Public`` read models below, so nothing outside ``core`` depends on an open session.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Role(StrEnum):
    builder = "builder"
    reviewer = "reviewer"
    manager = "manager"
    admin = "admin"


class ProjectStatus(StrEnum):
    active = "active"
    archived = "archived"


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


# ── accounts ────────────────────────────────────────────────────────────────────────────────────────


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=64)
    display_name: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, max_length=320)
    password_hash: str
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    password_changed_at: datetime = Field(default_factory=utcnow)


class LoginThrottle(SQLModel, table=True):
    """Failed logins per name typed (known or not), so unknown names and real accounts behave alike."""

    username_key: str = Field(primary_key=True, max_length=64)
    failed_attempts: int = 0
    locked_until: datetime | None = None


class UserRole(SQLModel, table=True):
    user_id: int = Field(foreign_key="user.id", primary_key=True)
    role: str = Field(primary_key=True, max_length=20)


class LoginSession(SQLModel, table=True):
    """A server-side login, referenced by an HttpOnly cookie holding a random token (stored hashed)."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None
    ended_reason: str | None = Field(default=None, max_length=40)
    project_id: int | None = Field(default=None, foreign_key="project.id")  # the project open in this login
    # One-time ticket the browser exchanges for the cookie right after login.
    ticket_hash: str | None = Field(default=None, unique=True, max_length=64)
    ticket_expires_at: datetime | None = None


class UserPublic(SQLModel):
    id: int
    username: str
    display_name: str
    email: str | None
    roles: list[str]
    is_active: bool
    locked_until: datetime | None
    created_at: datetime

    @property
    def label(self) -> str:
        return self.display_name or self.username

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)


# ── projects ────────────────────────────────────────────────────────────────────────────────────────


class Project(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)
    description: str = Field(default="", max_length=2000)
    owner_id: int = Field(foreign_key="user.id", index=True)
    status: str = Field(default=ProjectStatus.active, max_length=20)
    created_at: datetime = Field(default_factory=utcnow)
    archived_at: datetime | None = None


class ProjectPublic(SQLModel):
    id: int
    name: str
    description: str
    owner_id: int
    owner_name: str
    status: str
    created_at: datetime
    archived_at: datetime | None
    status_line: str


# ── audit trail ─────────────────────────────────────────────────────────────────────────────────────


class AuditEvent(SQLModel, table=True):
    """Append-only; each row holds the hash of the previous one, so a changed row breaks the chain."""

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True, index=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    actor_name: str = Field(max_length=64)
    action: str = Field(max_length=80, index=True)
    entity_type: str = Field(max_length=40, index=True)
    entity_id: str = Field(default="", max_length=64)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """The end of the chain; updating it first serialises concurrent appends on SQLite and PostgreSQL."""

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(default="0" * 64, max_length=64)


class AuditEventPublic(SQLModel):
    seq: int
    at: datetime
    actor_name: str
    action: str
    entity_type: str
    entity_id: str
    details: dict[str, Any]
    hash: str


# ── jobs ────────────────────────────────────────────────────────────────────────────────────────────


class Job(SQLModel, table=True):
    """Long work run by a worker process; pages and the CLI follow it through this row."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=80, index=True)
    title: str = Field(default="", max_length=200)
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=JobStatus.queued, max_length=20, index=True)
    progress: float = 0.0
    message: str = Field(default="", max_length=500)
    error: str | None = None
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    project_id: int | None = Field(default=None, foreign_key="project.id", index=True)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    cancel_requested: bool = False
    worker_host: str | None = Field(default=None, max_length=255)
    worker_pid: int | None = None


class JobPublic(SQLModel):
    id: int
    kind: str
    title: str
    params: dict[str, Any]
    status: str
    progress: float
    message: str
    error: str | None
    result: dict[str, Any] | None
    project_id: int | None
    created_by_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    cancel_requested: bool

    @property
    def finished(self) -> bool:
        return JobStatus(self.status).finished




# ── data ────────────────────────────────────────────────────────────────────────────────────────────


class Dataset(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    name: str = Field(max_length=120)
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class DatasetVersion(SQLModel, table=True):
    """An immutable upload: the canonical data as Parquet in the artifact store, its hash, schema and profile."""

    __table_args__ = (UniqueConstraint("dataset_id", "number"), UniqueConstraint("dataset_id", "sha256"))

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    number: int
    sha256: str = Field(max_length=64, index=True)
    parquet_sha256: str = Field(max_length=64)
    parquet_bytes: int
    rows: int
    columns: int
    schema_: list[dict[str, Any]] = Field(sa_column=Column("schema", JSON, nullable=False))
    sensitive_columns: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column("metadata", JSON, nullable=False))
    profile: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    source_filename: str = Field(max_length=255)
    source_format: str = Field(max_length=20)
    source_sha256: str = Field(max_length=64)
    read_notes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    parent_id: int | None = Field(default=None, foreign_key="datasetversion.id")
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class DataContract(SQLModel, table=True):
    """Expected schema and value rules for later batches; every save is a new number."""

    __table_args__ = (UniqueConstraint("dataset_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="dataset.id", index=True)
    number: int
    content: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    based_on_version_id: int = Field(foreign_key="datasetversion.id")
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class DatasetPublic(SQLModel):
    id: int
    project_id: int
    name: str
    created_at: datetime
    versions: int
    latest_version_id: int | None
    latest_number: int | None


class DatasetVersionPublic(SQLModel):
    id: int
    dataset_id: int
    dataset_name: str
    number: int
    sha256: str
    parquet_sha256: str
    rows: int
    columns: int
    schema_: list[dict[str, Any]]
    sensitive_columns: list[str]
    meta: dict[str, Any]
    profile: dict[str, Any]
    source_filename: str
    source_format: str
    read_notes: list[str]
    parent_id: int | None
    created_by_id: int
    created_by_name: str
    created_at: datetime

    @property
    def types(self) -> dict[str, str]:
        return {column["name"]: column["type"] for column in self.schema_}


class DataContractPublic(SQLModel):
    id: int
    dataset_id: int
    number: int
    content: dict[str, Any]
    based_on_version_id: int
    created_by_name: str
    created_at: datetime


# ── training ────────────────────────────────────────────────────────────────────────────────────────


class RunStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class TrainingRun(SQLModel, table=True):
    """One automated search on one dataset version: what was tried, what won, how well it does, and proof."""

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    dataset_version_id: int = Field(foreign_key="datasetversion.id", index=True)
    target: str = Field(max_length=255)
    task: str = Field(max_length=20)
    primary_metric: str = Field(max_length=40)
    seed: int
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=RunStatus.queued, max_length=20, index=True)
    job_id: int | None = Field(default=None, foreign_key="job.id")
    feature_types: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    classes: list[Any] | None = Field(default=None, sa_column=Column(JSON))
    warnings: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    candidates: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    finished_candidates: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    leaderboard: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    chosen_candidate: str | None = Field(default=None, max_length=80)
    evaluation: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    baseline: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    environment: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    code_version: str = Field(default="", max_length=120)
    model_sha256: str | None = Field(default=None, max_length=64)
    test_set_sha256: str | None = Field(default=None, max_length=64)
    prediction_hash: str | None = Field(default=None, max_length=64)
    decision_threshold: float | None = None
    coding_threshold: float | None = None
    error: str | None = None
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class RunCertificate(SQLModel, table=True):
    """The result of re-executing a run: the same prediction hash (passed) or the differences (failed)."""

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="trainingrun.id", index=True)
    job_id: int | None = Field(default=None, foreign_key="job.id")
    status: str = Field(default="running", max_length=20)
    original_hash: str = Field(max_length=64)
    reproduced_hash: str | None = Field(default=None, max_length=64)
    differences: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_by_id: int | None = Field(default=None, foreign_key="user.id")  # None: the command-line operator
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class RunEvaluation(SQLModel, table=True):
    """A run's model evaluated on other labelled data (a file or a dataset version)."""

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="trainingrun.id", index=True)
    source: str = Field(max_length=255)
    source_sha256: str = Field(max_length=64)
    rows: int
    result: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class TrainingRunPublic(SQLModel):
    id: int
    project_id: int
    dataset_version_id: int
    dataset_name: str
    dataset_number: int
    dataset_sha256: str
    target: str
    task: str
    primary_metric: str
    seed: int
    config: dict[str, Any]
    status: str
    job_id: int | None
    feature_types: dict[str, Any]
    classes: list[Any] | None
    warnings: list[Any]
    candidates: list[str]
    finished_candidates: list[str]
    leaderboard: list[Any]
    chosen_candidate: str | None
    evaluation: dict[str, Any] | None
    baseline: dict[str, Any] | None
    environment: dict[str, Any]
    code_version: str
    model_sha256: str | None
    test_set_sha256: str | None
    prediction_hash: str | None
    decision_threshold: float | None
    coding_threshold: float | None
    error: str | None
    created_by_id: int
    created_by_name: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def label(self) -> str:
        return f"Run {self.id}: {self.target} ({self.task}) on {self.dataset_name} v{self.dataset_number}"


class RunCertificatePublic(SQLModel):
    id: int
    run_id: int
    job_id: int | None
    status: str
    original_hash: str
    reproduced_hash: str | None
    differences: dict[str, Any]
    created_by_id: int | None
    created_at: datetime
    finished_at: datetime | None


class RunEvaluationPublic(SQLModel):
    id: int
    run_id: int
    source: str
    source_sha256: str
    rows: int
    result: dict[str, Any]
    created_at: datetime


class Explanation(SQLModel, table=True):
    """The global SHAP explanation of a run's model, computed as a step of the run and kept with it."""

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="trainingrun.id", unique=True, index=True)
    method: str = Field(max_length=40)
    scale: str = Field(max_length=20)
    rows_explained: int
    seed: int
    additivity_max_error: float
    additive: bool
    result: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    stability: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    text_terms: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class ExplanationPublic(SQLModel):
    id: int
    run_id: int
    method: str
    scale: str
    rows_explained: int
    seed: int
    additivity_max_error: float
    additive: bool
    result: dict[str, Any]
    stability: dict[str, Any]
    text_terms: dict[str, Any]
    created_at: datetime


# ── model card ──────────────────────────────────────────────────────────────────────────────────────


class ModelCardRevision(SQLModel, table=True):
    """Every save of a run's model card is a new revision: the free-text content, who, when and what changed."""

    __table_args__ = (UniqueConstraint("run_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="trainingrun.id", index=True)
    number: int
    content: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    changes: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class ModelCardRevisionPublic(SQLModel):
    id: int
    run_id: int
    number: int
    content: dict[str, Any]
    changes: list[Any]
    created_by_id: int
    created_by_name: str
    created_at: datetime


# ── registry ────────────────────────────────────────────────────────────────────────────────────────


class VersionStatus(StrEnum):
    candidate = "candidate"
    in_review = "in_review"
    approved = "approved"
    changes_requested = "changes_requested"
    rejected = "rejected"
    production = "production"
    retired = "retired"


class RegisteredModel(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    name: str = Field(max_length=120)
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class ModelVersion(SQLModel, table=True):
    """An immutable registration of one trained run as the next version of a named model."""

    __table_args__ = (
        UniqueConstraint("model_id", "number"),
        # The store itself refuses a second production version of a model, even from two promotions at once.
        Index("uq_modelversion_one_production", "model_id", unique=True,
              sqlite_where=text("status = 'production'"), postgresql_where=text("status = 'production'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registeredmodel.id", index=True)
    number: int
    run_id: int = Field(foreign_key="trainingrun.id", unique=True)
    parent_id: int | None = Field(default=None, foreign_key="modelversion.id")
    status: str = Field(default=VersionStatus.candidate, max_length=30, index=True)
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    status_changed_at: datetime = Field(default_factory=utcnow)
    # Retired because a newer version was promoted (not rolled back): "roll back" may restore it.
    is_fallback: bool = False


class StageTransition(SQLModel, table=True):
    """Every status change of a model version: who, when and why."""

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="modelversion.id", index=True)
    from_status: str | None = Field(default=None, max_length=30)
    to_status: str = Field(max_length=30)
    reason: str = Field(default="", max_length=2000)
    actor_id: int | None = Field(default=None, foreign_key="user.id")  # None: the command-line operator
    created_at: datetime = Field(default_factory=utcnow)


class ModelVersionPublic(SQLModel):
    id: int
    model_id: int
    model_name: str
    project_id: int
    number: int
    run_id: int
    parent_id: int | None
    status: str
    created_by_id: int
    created_by_name: str
    created_at: datetime
    status_changed_at: datetime
    is_fallback: bool = False

    @property
    def label(self) -> str:
        return f"{self.model_name} v{self.number}"


class StageTransitionPublic(SQLModel):
    id: int
    version_id: int
    from_status: str | None
    to_status: str
    reason: str
    actor_name: str
    created_at: datetime


class GateOverride(SQLModel, table=True):
    """An admin's written decision to let a version past a failed promotion gate."""

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="modelversion.id", index=True)
    gate: str = Field(max_length=40)
    reason: str = Field(max_length=2000)
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


# ── predictions ─────────────────────────────────────────────────────────────────────────────────────


class PredictionBatch(SQLModel, table=True):
    """One scoring request (file, form, REST or CLI): which version scored what; rows kept for monitoring."""

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    version_id: int = Field(foreign_key="modelversion.id", index=True)
    channel: str = Field(max_length=20)
    source: str = Field(default="", max_length=255)
    input_sha256: str = Field(max_length=64)
    rows: int
    output_sha256: str | None = Field(default=None, max_length=64)
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    labels_sha256: str | None = Field(default=None, max_length=64)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class ApiToken(SQLModel, table=True):
    """A personal token for the REST endpoint; only its hash is kept."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(max_length=120)
    token_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=12)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class PredictionBatchPublic(SQLModel):
    id: int
    project_id: int
    version_id: int
    model_name: str
    version_number: int
    channel: str
    source: str
    input_sha256: str
    rows: int
    output_sha256: str | None
    summary: dict[str, Any]
    created_by_id: int | None
    created_by_name: str
    created_at: datetime

    @property
    def label(self) -> str:
        return f"Batch {self.id}: {self.model_name} v{self.version_number}, {self.rows:,} rows ({self.channel})"


class ApiTokenPublic(SQLModel):
    id: int
    user_id: int
    username: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


# ── responsible-ML checklist and peer review ────────────────────────────────────────────────────────


class AssessmentStatus(StrEnum):
    draft = "draft"
    in_review = "in_review"
    changes_requested = "changes_requested"
    approved = "approved"
    rejected = "rejected"


class Assessment(SQLModel, table=True):
    """The self-assessment of one model version against the checklist template in force when it began."""

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="modelversion.id", unique=True)
    template_id: str = Field(max_length=80)
    template_version: str = Field(max_length=40)
    status: str = Field(default=AssessmentStatus.draft, max_length=30, index=True)
    rounds: int = 0
    reassess_by: date | None = None
    reopened_reason: str = Field(default="", max_length=2000)
    created_by_id: int = Field(foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class AssessmentItem(SQLModel, table=True):
    """The builder's answer to one checklist item; ``revision`` guards against overwriting a colleague's save."""

    __table_args__ = (UniqueConstraint("assessment_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    assessment_id: int = Field(foreign_key="assessment.id", index=True)
    code: str = Field(max_length=20)
    answer: str = Field(default="", max_length=20)
    justification: str = Field(default="", max_length=5000)
    revision: int = 0
    updated_by_id: int | None = Field(default=None, foreign_key="user.id")
    updated_at: datetime | None = None


class ReviewRound(SQLModel, table=True):
    """One submission for review: the answers and evidence frozen at submission, and the reviewer's decision."""

    __table_args__ = (UniqueConstraint("assessment_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    assessment_id: int = Field(foreign_key="assessment.id", index=True)
    number: int
    snapshot: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    submitted_by_id: int = Field(foreign_key="user.id")
    submitted_at: datetime = Field(default_factory=utcnow)
    decision: str | None = Field(default=None, max_length=40)
    conditions: str = Field(default="", max_length=5000)
    comment: str = Field(default="", max_length=5000)
    decided_by_id: int | None = Field(default=None, foreign_key="user.id")
    decided_at: datetime | None = None


class ItemVerdict(SQLModel, table=True):
    """A reviewer's verdict and comment on one item in one round."""

    __table_args__ = (UniqueConstraint("round_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="reviewround.id", index=True)
    code: str = Field(max_length=20)
    verdict: str = Field(max_length=20)
    comment: str = Field(default="", max_length=5000)
    revision: int = 0
    reviewer_id: int = Field(foreign_key="user.id")
    updated_at: datetime = Field(default_factory=utcnow)


class Notification(SQLModel, table=True):
    """An in-app message to one user, e.g. a new review request or a review decision."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    message: str = Field(max_length=500)
    page: str = Field(default="", max_length=40)
    created_at: datetime = Field(default_factory=utcnow)
    read_at: datetime | None = None


class NotificationPublic(SQLModel):
    id: int
    message: str
    page: str
    created_at: datetime
    read_at: datetime | None


# ── monitoring, alerts and retraining ───────────────────────────────────────────────────────────────


class MonitoringReport(SQLModel, table=True):
    """A scoring batch compared with the model's training data (drift, quality, volume) and, once labels
    arrive, scored (performance)."""

    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="predictionbatch.id", unique=True)
    version_id: int = Field(foreign_key="modelversion.id", index=True)
    status: str = Field(default="queued", max_length=20)
    job_id: int | None = Field(default=None, foreign_key="job.id")
    judged: bool = True  # False: the batch is too small to judge; reported, never alerted on
    method: str = Field(default="", max_length=200)
    rows: int = 0
    drift_share: float | None = None
    drifted_columns: int | None = None
    columns: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    prediction_drift: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    quality: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    performance: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    html_sha256: str | None = Field(default=None, max_length=64)
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class AlertRule(SQLModel, table=True):
    """When a monitored figure of a model crosses a threshold, raise an alert on these channels."""

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registeredmodel.id", index=True)
    metric: str = Field(max_length=60)
    column: str | None = Field(default=None, max_length=255)
    direction: str = Field(default="above", max_length=10)  # alert when the value is above / below
    threshold: float
    severity: str = Field(default="warning", max_length=20)
    channels: list[str] = Field(default_factory=lambda: ["app"], sa_column=Column(JSON, nullable=False))
    recipients: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    webhook_url: str | None = Field(default=None, max_length=500)
    triggers_retraining: bool = False
    active: bool = True
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)


class Alert(SQLModel, table=True):
    """A rule that fired: open → acknowledged → resolved, with who and when."""

    id: int | None = Field(default=None, primary_key=True)
    rule_id: int = Field(foreign_key="alertrule.id", index=True)
    model_id: int = Field(foreign_key="registeredmodel.id", index=True)
    version_id: int = Field(foreign_key="modelversion.id")
    report_id: int | None = Field(default=None, foreign_key="monitoringreport.id")
    metric: str = Field(max_length=60)
    value: float | None = None
    threshold: float
    severity: str = Field(max_length=20)
    message: str = Field(max_length=1000)
    status: str = Field(default="open", max_length=20, index=True)
    acknowledged_by_id: int | None = Field(default=None, foreign_key="user.id")
    acknowledged_at: datetime | None = None
    resolved_by_id: int | None = Field(default=None, foreign_key="user.id")
    resolved_at: datetime | None = None
    note: str = Field(default="", max_length=2000)
    pipeline_run_id: int | None = Field(default=None, foreign_key="pipelinerun.id")
    created_at: datetime = Field(default_factory=utcnow)


class AlertDelivery(SQLModel, table=True):
    """One attempt series to deliver an alert by e-mail or webhook; failures are retried and kept."""

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alert.id", index=True)
    channel: str = Field(max_length=20)
    target: str = Field(max_length=500)
    status: str = Field(default="pending", max_length=20, index=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=2000)
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class PipelineConfig(SQLModel, table=True):
    """How a model is retrained: schedule, new-data trigger and whether passing candidates go live by themselves."""

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registeredmodel.id", unique=True)
    schedule_days: int | None = None
    next_run_at: datetime | None = None
    on_new_data: bool = False
    auto_promote: bool = False
    updated_by_id: int | None = Field(default=None, foreign_key="user.id")
    updated_at: datetime = Field(default_factory=utcnow)


class PipelineRun(SQLModel, table=True):
    """One run of the retraining pipeline: its trigger, each step's status, timings and outputs, the outcome."""

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="project.id", index=True)
    model_id: int = Field(foreign_key="registeredmodel.id", index=True)
    trigger: str = Field(max_length=30)
    trigger_ref: str = Field(default="", max_length=200)
    dataset_version_id: int | None = Field(default=None, foreign_key="datasetversion.id")
    status: str = Field(default="queued", max_length=20, index=True)
    steps: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    outcome: str = Field(default="", max_length=2000)
    run_id: int | None = Field(default=None, foreign_key="trainingrun.id")
    candidate_version_id: int | None = Field(default=None, foreign_key="modelversion.id")
    job_id: int | None = Field(default=None, foreign_key="job.id")
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class AppSetting(SQLModel, table=True):
    """Settings an admin changes in the app (e.g. the SMTP server), as JSON under a key."""

    key: str = Field(primary_key=True, max_length=80)
    value: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_by_id: int | None = Field(default=None, foreign_key="user.id")
    updated_at: datetime = Field(default_factory=utcnow)
