"""The sample project: every step of the journey done once with the real services, so every page shows something.

Three demo accounts (builder, reviewer, manager) with fresh random passwords; the labour force survey data with
its contract; a trained, explained and reproduced model; a complete model card; an approved self-assessment;
the version in production; a similar and a drifted batch scored, the drifted one raising its alert; and a
retraining run on new data whose candidate waits for review. Nothing is faked: each step calls the same service
the pages and the CLI call, acting as the account whose role it needs.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core import (
    alerts,
    auth,
    checklist,
    datasets,
    model_card,
    monitoring,
    pipelines,
    projects,
    registry,
    review,
    serving,
)
from core.config import Settings
from core.db import session_scope
from core.errors import Conflict
from core.models import Project, Role, UserPublic
from core.training import runs

SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"
PROJECT_NAME = "Labour force survey (sample)"
MODEL_NAME = "employment"
ACCOUNTS = (("demo_builder", "Bea Builder", Role.builder), ("demo_reviewer", "Rita Reviewer", Role.reviewer),
            ("demo_manager", "Max Manager", Role.manager))
BUDGET_SECONDS = 8.0
JOB_KIND = "demo.load"

CARD = {
    "overview": "Predicts whether a survey respondent is employed, to edit and impute employment status.",
    "owner_contact": "Labour statistics division, labour-stats@example.org",
    "license": "Internal use only.",
    "retention_until": "2031-12-31",
    "primary_uses": "Flag implausible employment answers for editing; impute the status of item non-respondents.",
    "primary_users": "Survey methodologists and editing staff of the labour force survey.",
    "out_of_scope": "Any decision about an individual person; use outside the survey population.",
    "factors": "Sex, region and age group: performance is reported for each sex.",
    "metric_rationale": "ROC AUC measures how well the model ranks; accuracy and F1 at the decision threshold show "
                        "the share of edits that would be right.",
    "data_notes": "Labour force survey sample, all regions, one reference quarter.",
    "labelling": "Employment status as recorded by interviewers, checked in the regular editing process.",
    "analysis_notes": "Results are similar for women and men; the model beats the baseline clearly.",
    "limitations": "Trained on one quarter only; seasonal work may be misjudged. Weaker for respondents with few "
                   "usual hours.",
    "tradeoffs": "A lower threshold finds more errors but sends more records to manual editing.",
    "recommendations": "Send records with probabilities between 0.4 and 0.6 to manual editing; watch drift monthly.",
    "risks": [{"name": "Systematic imputation bias for a region", "mitigation": "Subgroup figures are monitored "
               "monthly and imputed totals are compared with the edited totals."},
              {"name": "Over-reliance on automatic edits", "mitigation": "Editors review a random 5% of automatic "
               "edits every month."}],
}


@dataclass
class DemoAccount:
    username: str
    role: str
    password: str


@dataclass
class DemoResult:
    project_id: int
    accounts: list[DemoAccount]
    steps: list[str]


Progress = Callable[[float, str], None]


def sample_project_exists(*, session: Session) -> bool:
    return session.exec(select(Project).where(Project.name == PROJECT_NAME)).first() is not None


def create_accounts(*, session: Session, actor: UserPublic) -> list[DemoAccount]:
    """The three demo accounts with fresh random passwords; the caller shows them once and never stores them."""
    auth.require_role(actor, Role.admin)
    if sample_project_exists(session=session):
        raise Conflict(f"The sample project “{PROJECT_NAME}” exists already. Open it on the Projects page.")
    taken = {u.username for u in auth.list_users(session=session)} & {name for name, _, _ in ACCOUNTS}
    if taken:
        raise Conflict(f"Accounts named {', '.join(sorted(taken))} exist already: the sample project was started "
                       "before. Rename or deactivate them on the Users page to load it again.")
    accounts = []
    for username, display, role in ACCOUNTS:
        password = secrets.token_urlsafe(12)
        auth.create_user(session=session, actor=actor, username=username, password=password, display_name=display,
                         roles=[role])
        accounts.append(DemoAccount(username, role.value, password))
    return accounts


def start_building(*, session: Session, runner, actor: UserPublic) -> int:
    """Build the sample project as a job (the demo accounts must exist); returns the job id."""
    from core import jobs

    auth.require_role(actor, Role.admin)
    job = jobs.create_job(session=session, actor=actor, kind=JOB_KIND, title="Loading the sample project")
    runner.start(job.id)
    return job.id


def demo_job(ctx) -> dict:
    """Job ``demo.load``."""
    from core.config import get_settings

    result = build_project(engine=ctx.engine, settings=get_settings(), actor=ctx.actor, progress=ctx.progress)
    return {"project_id": result.project_id, "steps": result.steps}


def load_sample_project(*, engine: Engine, settings: Settings, actor: UserPublic,
                        progress: Progress | None = None) -> DemoResult:
    """Accounts and project in one go (the ``steward demo`` command)."""
    with session_scope(engine) as session:
        accounts = create_accounts(session=session, actor=actor)
    result = build_project(engine=engine, settings=settings, actor=actor, progress=progress)
    result.accounts = accounts
    return result


def build_project(*, engine: Engine, settings: Settings, actor: UserPublic,
                  progress: Progress | None = None) -> DemoResult:
    """Every step of the journey, each done by the demo account whose role it needs."""
    say = progress or (lambda _fraction, _message: None)
    auth.require_role(actor, Role.admin)
    steps: list[str] = []

    def step(fraction: float, message: str) -> None:
        steps.append(message)
        say(fraction, message)

    with session_scope(engine) as session:
        if sample_project_exists(session=session):
            raise Conflict(f"The sample project “{PROJECT_NAME}” exists already. Open it on the Projects page.")
        known = {u.username: u for u in auth.list_users(session=session)}
        missing = [name for name, _, _ in ACCOUNTS if name not in known]
        if missing:
            raise Conflict(f"The demo accounts ({', '.join(missing)}) are missing; create them first.")
        builder, reviewer, manager = (known[name] for name, _, _ in ACCOUNTS)

        step(0.05, "Creating the project and uploading the survey data")
        project = projects.create_project(session=session, actor=builder, name=PROJECT_NAME,
                                          description="Predict employment status to edit and impute survey answers.")
        metadata = datasets.VersionMetadata(source="Labour force survey, sample quarter",
                                            legal_basis="Statistics Act, section 13 (sample data)",
                                            owner="Labour statistics division", sensitive_columns=["sex"])
        data, _ = datasets.ingest_file(session=session, settings=settings, actor=builder, project_id=project.id,
                                       dataset_name="labour_force", path=SAMPLE_DATA / "labour_force.csv",
                                       filename="labour_force.csv", metadata=metadata)
        datasets.save_contract(session=session, settings=settings, actor=builder, version_id=data.id)

        step(0.10, "Training a model")
        run = runs.create_run(session=session, settings=settings, actor=builder, version_id=data.id,
                              target="employed", budget_seconds=BUDGET_SECONDS)
        run = runs.run_training(session=session, settings=settings, run_id=run.id, actor=builder)

        step(0.35, "Reproducing the training run")
        certificate = runs.start_reproduction(session=session, runner=None, actor=builder, run_id=run.id)
        runs.reproduce(session=session, settings=settings, certificate_id=certificate.id, actor=builder)

        step(0.50, "Writing the model card and the self-assessment")
        model_card.save_card(session=session, actor=builder, run_id=run.id, content=CARD, based_on=0)
        version = registry.register_run(session=session, actor=builder, run_id=run.id, model_name=MODEL_NAME)
        _answer_everything(session, builder, version.id)

        step(0.55, "Peer review by the reviewer")
        submitted = review.submit(session=session, settings=settings, actor=builder, version_id=version.id)
        for code in submitted.snapshot["items"]:
            review.save_verdict(session=session, actor=reviewer, version_id=version.id, code=code, verdict="agree",
                                comment="", expected_revision=0)
        review.decide(session=session, settings=settings, actor=reviewer, version_id=version.id,
                      decision="approve_with_conditions",
                      conditions="Re-check the subgroup figures after the first quarter in production.",
                      comment="Well documented; the evidence supports the answers.")

        step(0.60, "Promotion to production by the manager")
        registry.promote_version(session=session, settings=settings, actor=manager, version_id=version.id,
                                 reason="Approved by the peer review; all gates pass.")

        step(0.65, "Scoring a similar and a drifted batch")
        for name in ("labour_force_batch_similar.csv", "labour_force_batch_drifted.csv"):
            result = serving.score_file(session=session, settings=settings, actor=builder, project_id=project.id,
                                        model_name=MODEL_NAME, filename=name, path=SAMPLE_DATA / name)
            report = monitoring.get_report(session=session, batch_id=result.batch.id)
            if report.status != "done":
                monitoring.compute_report(session=session, settings=settings, report_id=report.id)

        step(0.75, "New data arrives: retraining on it")
        newer = _new_data_version(session, settings, builder, project.id, metadata)
        model = registry.find_model(session=session, name=MODEL_NAME, project_id=project.id)
        drift_alert = next((a for a in alerts.list_alerts(session=session, project_id=project.id)
                            if a.metric == "drift_share"), None)
        pipeline_run = pipelines.request_run(
            session=session, settings=settings, model_id=model.id,
            trigger="drift_alert" if drift_alert else "manual",
            trigger_ref=f"alert {drift_alert.id}" if drift_alert else "sample project",
            dataset_version_id=newer.id, actor=builder)
        if drift_alert is not None:
            alerts.link_pipeline_run(session, alert_id=drift_alert.id, pipeline_run_id=pipeline_run.id)
            session.commit()
    finished = pipelines.run_here(engine=engine, settings=settings, pipeline_run_id=pipeline_run.id, actor=builder)

    with session_scope(engine) as session:
        if finished.candidate_version_id is not None:
            step(0.95, "Submitting the retrained candidate for review")
            review.submit(session=session, settings=settings, actor=builder,
                          version_id=finished.candidate_version_id)
    step(1.0, "The sample project is ready")
    return DemoResult(project_id=project.id, accounts=[], steps=steps)


def _answer_everything(session, builder: UserPublic, version_id: int) -> None:
    """The builder's answers: each cites the evidence Steward found for the item."""
    view = checklist.start_assessment(session=session, actor=builder, version_id=version_id)
    template = checklist.load_template()
    for item in template.items:
        current = view.items[item.code]
        answer = "not_applicable" if item.stage == "M" else "yes"
        checklist.save_answer(session=session, actor=builder, assessment_id=view.id, code=item.code, answer=answer,
                              justification=f"Checked against the evidence shown for {item.code}: "
                                            + ("applies once the model is in operation." if answer != "yes"
                                               else "it supports the answer."),
                              expected_revision=current.revision)


def _new_data_version(session, settings: Settings, builder: UserPublic, project_id: int,
                      metadata: datasets.VersionMetadata):
    """The next quarter's data: the original sample with the drifted batch (whose outcomes are now known)."""
    base = (SAMPLE_DATA / "labour_force.csv").read_text(encoding="utf-8")
    extra = (SAMPLE_DATA / "labour_force_batch_drifted.csv").read_text(encoding="utf-8").split("\n", 1)[1]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "labour_force_next_quarter.csv"
        path.write_text(base.rstrip("\n") + "\n" + extra, encoding="utf-8")
        version, _ = datasets.ingest_file(session=session, settings=settings, actor=builder, project_id=project_id,
                                          dataset_name="labour_force", path=path, filename=path.name,
                                          metadata=metadata)
    return version
