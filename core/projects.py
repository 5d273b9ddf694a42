"""Projects: the folder a team's datasets, runs and models live in."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from core import audit
from core.auth import clean_name, require_role
from core.errors import Conflict, NotAllowed, NotFound
from core.models import Project, ProjectPublic, ProjectStatus, Role, User, UserPublic, utcnow


def _status_line(project: Project) -> str:
    if project.status == ProjectStatus.archived:
        return f"Archived on {project.archived_at:%Y-%m-%d}; read only."
    return f"Active since {project.created_at:%Y-%m-%d}. Next step: add data on the Data page."


def _public(session: Session, project: Project) -> ProjectPublic:
    owner = session.get(User, project.owner_id)
    return ProjectPublic(
        **project.model_dump(exclude={"owner_id"}), owner_id=project.owner_id,
        owner_name=owner.username if owner else "?", status_line=_status_line(project),
    )


def _get(session: Session, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound("That project does not exist. Choose one on the Home page.")
    return project


def create_project(*, session: Session, actor: UserPublic, name: str, description: str = "") -> ProjectPublic:
    """Start a project owned by the actor (builders and administrators)."""
    require_role(actor, Role.builder, Role.admin)
    name = clean_name(name, what="project name", max_length=120)
    clash = session.exec(select(Project).where(func.lower(Project.name) == name.lower())).first()
    if clash is not None:
        raise Conflict(f"A project called {clash.name!r} already exists. Open it or choose another name.")
    project = Project(name=name, description=(description or "").strip()[:2000], owner_id=actor.id)
    session.add(project)
    session.flush()
    audit.record_event(session, actor=actor, action="project.create", entity_type="project",
                       entity_id=project.id, details={"name": project.name})
    session.commit()
    return _public(session, project)


def get_project(*, session: Session, project_id: int) -> ProjectPublic:
    return _public(session, _get(session, project_id))


def get_project_by_name(*, session: Session, name: str) -> ProjectPublic:
    project = session.exec(select(Project).where(func.lower(Project.name) == name.strip().lower())).first()
    if project is None:
        raise NotFound(f"There is no project called {name!r}.")
    return _public(session, project)


def list_projects(*, session: Session, include_archived: bool = False) -> list[ProjectPublic]:
    """Every project (active ones first), visible to every logged-in user."""
    query = select(Project).order_by(col(Project.status), col(Project.name))
    if not include_archived:
        query = query.where(Project.status == ProjectStatus.active)
    return [_public(session, project) for project in session.exec(query)]


def set_archived(*, session: Session, actor: UserPublic, project_id: int, archived: bool) -> ProjectPublic:
    """Archive (or restore) a project: its owner or an administrator may."""
    project = _get(session, project_id)
    if project.owner_id != actor.id and not actor.has_role(Role.admin):
        raise NotAllowed("Only the project's owner or an administrator can archive or restore it.")
    project.status = ProjectStatus.archived if archived else ProjectStatus.active
    project.archived_at = utcnow() if archived else None
    session.add(project)
    audit.record_event(session, actor=actor, action="project.archive" if archived else "project.restore",
                       entity_type="project", entity_id=project.id, details={"name": project.name})
    session.commit()
    return _public(session, project)
