"""The model registry: named models in a project, their immutable versions and every status change.

A version is one trained run, registered once. Its status follows the lifecycle
``candidate → in_review → approved | changes_requested | rejected → production → retired``; every change is a
``StageTransition`` row and an audit event.
"""

from __future__ import annotations

from sqlmodel import Session, select

from core import audit
from core.auth import OPERATOR, clean_name, require_role
from core.errors import Conflict, InvalidInput, NotFound
from core.models import (
    ModelVersion,
    ModelVersionPublic,
    RegisteredModel,
    Role,
    RunStatus,
    StageTransition,
    StageTransitionPublic,
    TrainingRun,
    User,
    UserPublic,
    VersionStatus,
    utcnow,
)

AUTHORS = (Role.builder, Role.admin)


def _name_of(session: Session, user_id: int | None) -> str:
    if user_id is None:
        return OPERATOR.label
    user = session.get(User, user_id)
    return user.display_name or user.username if user else f"user {user_id}"


def _public(session: Session, version: ModelVersion) -> ModelVersionPublic:
    model = session.get(RegisteredModel, version.model_id)
    return ModelVersionPublic(**version.model_dump(), model_name=model.name, project_id=model.project_id,
                              created_by_name=_name_of(session, version.created_by_id))


def _get(session: Session, version_id: int) -> ModelVersion:
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise NotFound(f"Model version {version_id} does not exist.")
    return version


def register_run(*, session: Session, actor: UserPublic, run_id: int, model_name: str) -> ModelVersionPublic:
    """Register a finished run as the next version of ``model_name`` (created on first use) in its project."""
    require_role(actor, *AUTHORS)
    name = clean_name(model_name, what="Model name", max_length=120)
    run = session.get(TrainingRun, run_id)
    if run is None:
        raise NotFound(f"Run {run_id} does not exist.")
    if run.status != RunStatus.succeeded or run.model_sha256 is None:
        raise InvalidInput(f"Run {run_id} did not finish successfully, so it has no model to register.")
    existing = session.exec(select(ModelVersion).where(ModelVersion.run_id == run_id)).first()
    if existing is not None:
        raise Conflict(f"Run {run_id} is already registered as {_public(session, existing).label}.")
    model = session.exec(select(RegisteredModel).where(RegisteredModel.project_id == run.project_id,
                                                       RegisteredModel.name == name)).first()
    if model is None:
        model = RegisteredModel(project_id=run.project_id, name=name, created_by_id=actor.id)
        session.add(model)
        session.flush()
    previous = session.exec(select(ModelVersion).where(ModelVersion.model_id == model.id)
                            .order_by(ModelVersion.number.desc())).first()
    version = ModelVersion(model_id=model.id, number=(previous.number + 1) if previous else 1, run_id=run_id,
                           parent_id=previous.id if previous else None, created_by_id=actor.id)
    session.add(version)
    session.flush()
    session.add(StageTransition(version_id=version.id, to_status=version.status, reason="registered",
                                actor_id=actor.id or None))
    audit.record_event(session, actor=actor, action="model.register", entity_type="model_version",
                       entity_id=version.id, details={"model": name, "number": version.number, "run_id": run_id})
    session.commit()
    return _public(session, version)


def change_status(*, session: Session, actor: UserPublic, version_id: int, to_status: VersionStatus,
                  reason: str = "") -> ModelVersion:
    """Record a status change in the caller's transaction; the caller checks rights and commits."""
    version = _get(session, version_id)
    if version.status == to_status:
        return version
    session.add(StageTransition(version_id=version.id, from_status=version.status, to_status=to_status,
                                reason=reason, actor_id=actor.id or None))
    audit.record_event(session, actor=actor, action="model.status", entity_type="model_version",
                       entity_id=version.id, details={"from": version.status, "to": str(to_status), "reason": reason})
    version.status = to_status
    version.status_changed_at = utcnow()
    session.add(version)
    return version


def get_version(*, session: Session, version_id: int) -> ModelVersionPublic:
    return _public(session, _get(session, version_id))


def version_for_run(*, session: Session, run_id: int) -> ModelVersionPublic | None:
    version = session.exec(select(ModelVersion).where(ModelVersion.run_id == run_id)).first()
    return _public(session, version) if version else None


def list_versions(*, session: Session, project_id: int, model_name: str | None = None) -> list[ModelVersionPublic]:
    """Every version in a project (or of one model), newest model and number first."""
    query = (select(ModelVersion).join(RegisteredModel).where(RegisteredModel.project_id == project_id)
             .order_by(RegisteredModel.name, ModelVersion.number.desc()))
    if model_name is not None:
        query = query.where(RegisteredModel.name == model_name)
    return [_public(session, version) for version in session.exec(query)]


def model_names(*, session: Session, project_id: int) -> list[str]:
    return list(session.exec(select(RegisteredModel.name).where(RegisteredModel.project_id == project_id)
                             .order_by(RegisteredModel.name)))


def transitions(*, session: Session, version_id: int) -> list[StageTransitionPublic]:
    rows = session.exec(select(StageTransition).where(StageTransition.version_id == version_id)
                        .order_by(StageTransition.id))
    return [StageTransitionPublic(**row.model_dump(), actor_name=_name_of(session, row.actor_id)) for row in rows]
