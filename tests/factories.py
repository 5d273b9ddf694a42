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


COMPLETE_CARD = {
    "overview": "Predicts whether a respondent is employed.", "owner_contact": "Labour statistics, lfs@example.org",
    "primary_uses": "Editing and imputation of employment status.", "primary_users": "Survey methodologists.",
    "out_of_scope": "Decisions about individual persons.", "factors": "Sex, region, age group.",
    "metric_rationale": "ROC AUC ranks; the threshold is set for balanced errors.",
    "data_notes": "Labour force survey 2025, all regions.", "labelling": "Interviewer-recorded status.",
    "limitations": "Weaker for young respondents.", "recommendations": "Review low-confidence cases manually.",
    "risks": [{"name": "Bias against small regions", "mitigation": "Subgroup monitoring each quarter."}],
}


def complete_card(session: Session, author: UserPublic, run_id: int):
    """Every required field of the run's model card written, as the builder would on the Model card page."""
    from core import model_card

    latest = model_card.list_revisions(session=session, run_id=run_id)
    return model_card.save_card(session=session, actor=author, run_id=run_id, content=COMPLETE_CARD,
                                based_on=latest[0].number if latest else 0)


def make_assessed_version(session: Session, author: UserPublic, run_id: int, model_name: str = "employment"):
    """The run registered, its card complete and every checklist item answered by ``author``."""
    from core import checklist, registry

    complete_card(session, author, run_id)
    version = registry.register_run(session=session, actor=author, run_id=run_id, model_name=model_name)
    view = checklist.start_assessment(session=session, actor=author, version_id=version.id)
    for code, item in view.items.items():
        checklist.save_answer(session=session, actor=author, assessment_id=view.id, code=code, answer="yes",
                              justification=f"Checked the evidence for {code}.", expected_revision=item.revision)
    return version


def approve_version(session: Session, settings: Settings, author: UserPublic, reviewer: UserPublic, version_id: int,
                    decision: str = "approve", conditions: str = ""):
    """Submit the version's answered assessment and let ``reviewer`` agree with every item and decide."""
    from core import review

    submitted = review.submit(session=session, settings=settings, actor=author, version_id=version_id)
    for code in submitted.snapshot["items"]:
        review.save_verdict(session=session, actor=reviewer, version_id=version_id, code=code, verdict="agree",
                            comment="", expected_revision=0)
    return review.decide(session=session, settings=settings, actor=reviewer, version_id=version_id,
                         decision=decision, conditions=conditions)


def make_production_version(session: Session, settings: Settings, owner: UserPublic, project: ProjectPublic,
                            path: Path, model_name: str = "employment", target: str = "employed", **request):
    """A tiny-budget run on ``path`` registered as ``model_name`` and put straight into production.

    The status changes are recorded directly (as the registry records them), without the review and the gates a
    real promotion needs: for tests of what happens once a model is live (scoring, monitoring).
    """
    from core import registry
    from core.models import VersionStatus

    quick = settings.model_copy(update={"explain_rows": 50, "explain_background_rows": 20})
    data = make_dataset_version(session, settings, owner, project, path)
    run = make_trained_run(session, quick, owner, data, target=target, **request)
    version = registry.register_run(session=session, actor=owner, run_id=run.id, model_name=model_name)
    for status in (VersionStatus.approved, VersionStatus.production):
        registry.change_status(session=session, actor=owner, version_id=version.id, to_status=status, reason="test")
    session.commit()
    return registry.get_version(session=session, version_id=version.id)
