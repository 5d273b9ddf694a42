"""Helpers that create real rows through the services, as a user would."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from core import auth, datasets, projects
from core.config import Settings
from core.models import DatasetVersionPublic, ProjectPublic, TrainingRunPublic, UserPublic

PASSWORD = "a long enough password"


def make_admin(session: Session, username: str = "admin") -> UserPublic:
    if not auth.has_any_user(session=session):
        return auth.create_first_admin(session=session, username=username, password=PASSWORD)
    return auth.create_user(session=session, actor=auth.OPERATOR, username=username, password=PASSWORD,
                            roles=["admin"])


def make_user(session: Session, username: str = "bea", roles: tuple[str, ...] = ("builder",)) -> UserPublic:
    if not auth.has_any_user(session=session):
        make_admin(session)
    return auth.create_user(session=session, actor=auth.OPERATOR, username=username, password=PASSWORD,
                            roles=list(roles))


def make_project(session: Session, owner: UserPublic, name: str = "Labour force") -> ProjectPublic:
    return projects.create_project(session=session, actor=owner, name=name, description="Employment status")


def make_dataset_version(session: Session, settings: Settings, owner: UserPublic, project: ProjectPublic,
                         path: Path, dataset_name: str = "labour_force", **kwargs) -> DatasetVersionPublic:
    """A file saved as the next version of a dataset, as the Data page's job saves it (types inferred)."""
    version, _duplicate = datasets.ingest_file(session=session, settings=settings, actor=owner,
                                               project_id=project.id, dataset_name=dataset_name, path=path,
                                               filename=path.name, **kwargs)
    return version


def make_trained_run(session: Session, settings: Settings, owner: UserPublic, version: DatasetVersionPublic,
                     target: str = "employed", budget_seconds: float = 0.001, **request) -> TrainingRunPublic:
    """A run recorded and executed in this process, as the CLI does; the tiny budget finishes one candidate."""
    from core.training import runs

    run = runs.create_run(session=session, settings=settings, actor=owner, version_id=version.id, target=target,
                          budget_seconds=budget_seconds, **request)
    return runs.run_training(session=session, settings=settings, run_id=run.id, actor=owner)
