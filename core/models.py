"""All tables of the store, and the read models services return.

Table classes are singular nouns. Services never hand a live table row to a page: they return the
``...Public`` read models below, so nothing outside ``core`` depends on an open session.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
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


