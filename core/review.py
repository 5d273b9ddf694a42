"""Peer review of a model version's self-assessment, with the four-eyes rule enforced here.

Submitting freezes the answers and the evidence into a ``ReviewRound``, so the reviewer judges exactly what
the builder saw. The reviewer gives a verdict per item and one decision: approve, approve with conditions,
request changes (back to the builder; resubmitting starts a new round) or reject. Nobody who trained the
run, edited its model card or answered its self-assessment may review or approve it, whatever their roles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, select

from core import audit, checklist, model_card, notifications, registry
from core.auth import ensure_not_author, require_role
from core.config import Settings
from core.errors import Conflict, InvalidInput, NotFound
from core.models import (
    Assessment,
    AssessmentStatus,
    ItemVerdict,
    ModelVersion,
    ReviewRound,
    Role,
    TrainingRun,
    User,
    UserPublic,
    UserRole,
    VersionStatus,
    utcnow,
)

VERDICTS = {"agree": "Agree", "disagree": "Disagree", "needs_work": "Needs work"}
DECISIONS = {"approve": "Approve", "approve_with_conditions": "Approve with conditions",
             "request_changes": "Request changes", "reject": "Reject"}
OUTCOME = {  # decision -> (assessment status, version status)
    "approve": (AssessmentStatus.approved, VersionStatus.approved),
    "approve_with_conditions": (AssessmentStatus.approved, VersionStatus.approved),
    "request_changes": (AssessmentStatus.changes_requested, VersionStatus.changes_requested),
    "reject": (AssessmentStatus.rejected, VersionStatus.rejected),
}
DECIDED = {"approve": "approved", "approve_with_conditions": "approved with conditions",
           "request_changes": "asked for changes to", "reject": "rejected"}
REVIEWERS = (Role.reviewer, Role.admin)
MAX_COMMENT = 5000
# The review only moves a version that is still on its way to production; a live model keeps its status.
PRE_PRODUCTION = {VersionStatus.candidate, VersionStatus.in_review, VersionStatus.approved,
                  VersionStatus.changes_requested, VersionStatus.rejected}


@dataclass
class VerdictState:
    code: str
    verdict: str
    comment: str
    revision: int
    reviewer_name: str
    updated_at: datetime


@dataclass
class RoundView:
    number: int
    snapshot: dict[str, Any]
    submitted_by_name: str
    submitted_at: datetime
    decision: str | None
    conditions: str
    comment: str
    decided_by_name: str | None
    decided_at: datetime | None
    verdicts: dict[str, VerdictState] = field(default_factory=dict)


@dataclass
class QueueEntry:
    version_id: int
    label: str
    project_id: int
    round: int
    submitted_by_name: str
    submitted_at: datetime
    refusal: str | None  # why this user may not review it, or None


def _name(session: Session, user_id: int | None) -> str:
    user = session.get(User, user_id) if user_id else None
    return (user.display_name or user.username) if user else "–"


def _version(session: Session, version_id: int) -> ModelVersion:
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise NotFound(f"Model version {version_id} does not exist.")
    return version


def _assessment(session: Session, version_id: int) -> Assessment:
    assessment = session.exec(select(Assessment).where(Assessment.version_id == version_id)).first()
    if assessment is None:
        raise NotFound("This model version has no self-assessment yet. Start it on the Checklist page.")
    return assessment


def _rounds(session: Session, assessment_id: int) -> list[ReviewRound]:
    return list(session.exec(select(ReviewRound).where(ReviewRound.assessment_id == assessment_id)
                             .order_by(ReviewRound.number)))


def _current_round(session: Session, assessment: Assessment) -> ReviewRound:
    rounds = _rounds(session, assessment.id)
    if not rounds or assessment.status != AssessmentStatus.in_review:
        raise Conflict("This assessment is not waiting for review.")
    return rounds[-1]


def authors_of(*, session: Session, version_id: int) -> set[int]:
    """Who trained the run, edited its model card or answered or submitted its self-assessment."""
    version = _version(session, version_id)
    run = session.get(TrainingRun, version.run_id)
    authors = {run.created_by_id} | model_card.editor_ids(session=session, run_id=run.id)
    assessment = session.exec(select(Assessment).where(Assessment.version_id == version_id)).first()
    if assessment is not None:
        authors |= checklist.answer_author_ids(session=session, assessment_id=assessment.id)
        authors |= {r.submitted_by_id for r in _rounds(session, assessment.id)}
    return authors


def review_refusal(*, session: Session, actor: UserPublic, version_id: int) -> str | None:
    """Why ``actor`` may not review this version (None when they may)."""
    if not actor.has_role(*REVIEWERS):
        return "Only reviewers review self-assessments."
    if actor.id in authors_of(session=session, version_id=version_id):
        return ("You trained this model, edited its model card or answered its self-assessment, so a colleague "
                "must review it (four-eyes rule).")
    return None


def _check_reviewer(session: Session, actor: UserPublic, version_id: int) -> None:
    require_role(actor, *REVIEWERS)
    ensure_not_author(actor, authors_of(session=session, version_id=version_id), what="this model")


def _reviewer_ids(session: Session) -> set[int]:
    rows = session.exec(select(UserRole.user_id).join(User, User.id == UserRole.user_id)
                        .where(UserRole.role == Role.reviewer, User.is_active))
    return set(rows)


def submit(*, session: Session, settings: Settings, actor: UserPublic, version_id: int) -> RoundView:
    """Send the self-assessment to review, freezing answers and evidence; refused while items are unanswered."""
    require_role(actor, Role.builder, Role.admin)
    version = _version(session, version_id)
    assessment = _assessment(session, version_id)
    if assessment.status not in checklist.EDITABLE:
        raise Conflict("This self-assessment is already submitted or decided.")
    view = checklist.get_assessment(session=session, version_id=version_id)
    unanswered = view.unanswered()
    if unanswered:
        raise InvalidInput(f"Answer every required item (answer and justification) before submitting. Still open: "
                           f"{', '.join(unanswered)}.")
    evidence = checklist.evidence_for(session=session, settings=settings, version_id=version_id)
    template = checklist.load_template()
    card = model_card.card_document(session=session, run_id=version.run_id)
    snapshot = {
        "template_id": assessment.template_id, "template_version": assessment.template_version,
        "card_revision": card.revision.number if card.revision else 0,
        "card_completeness": card.completeness.percent,
        "items": {item.code: {"question": item.question, "dimension": item.dimension, "stage": item.stage,
                              "answer": view.items[item.code].answer,
                              "justification": view.items[item.code].justification,
                              "answered_by": view.items[item.code].updated_by_name,
                              "evidence": evidence[item.code].to_dict()}
                  for item in template.items},
    }
    assessment.rounds += 1
    assessment.status = AssessmentStatus.in_review
    assessment.updated_at = utcnow()
    review_round = ReviewRound(assessment_id=assessment.id, number=assessment.rounds, snapshot=snapshot,
                               submitted_by_id=actor.id)
    session.add(assessment)
    session.add(review_round)
    if version.status in PRE_PRODUCTION:
        registry.change_status(session=session, actor=actor, version_id=version_id,
                               to_status=VersionStatus.in_review, reason=f"review round {assessment.rounds}")
    label = registry.get_version(session=session, version_id=version_id).label
    audit.record_event(session, actor=actor, action="review.submit", entity_type="assessment",
                       entity_id=assessment.id, details={"version_id": version_id, "round": assessment.rounds})
    reviewers = _reviewer_ids(session) - authors_of(session=session, version_id=version_id)
    notifications.notify(session, user_ids=reviewers, page="review",
                         message=f"{actor.label} asks for a review of {label} (round {assessment.rounds}).")
    session.commit()
    return round_views(session=session, version_id=version_id)[-1]


def round_views(*, session: Session, version_id: int) -> list[RoundView]:
    """Every review round of a version's assessment, oldest first, with the reviewer's verdicts."""
    assessment = session.exec(select(Assessment).where(Assessment.version_id == version_id)).first()
    if assessment is None:
        return []
    views = []
    for row in _rounds(session, assessment.id):
        verdicts = session.exec(select(ItemVerdict).where(ItemVerdict.round_id == row.id))
        views.append(RoundView(
            number=row.number, snapshot=row.snapshot, submitted_by_name=_name(session, row.submitted_by_id),
            submitted_at=row.submitted_at, decision=row.decision, conditions=row.conditions, comment=row.comment,
            decided_by_name=_name(session, row.decided_by_id) if row.decided_by_id else None,
            decided_at=row.decided_at,
            verdicts={v.code: VerdictState(v.code, v.verdict, v.comment, v.revision, _name(session, v.reviewer_id),
                                           v.updated_at) for v in verdicts}))
    return views


def review_queue(*, session: Session, actor: UserPublic) -> list[QueueEntry]:
    """Assessments waiting for review, each with why this user may not take it (if so)."""
    waiting = session.exec(select(Assessment).where(Assessment.status == AssessmentStatus.in_review)
                           .order_by(Assessment.updated_at))
    entries = []
    for assessment in waiting:
        last = _rounds(session, assessment.id)[-1]
        version = registry.get_version(session=session, version_id=assessment.version_id)
        entries.append(QueueEntry(version_id=version.id, label=version.label, project_id=version.project_id,
                                  round=last.number, submitted_by_name=_name(session, last.submitted_by_id),
                                  submitted_at=last.submitted_at,
                                  refusal=review_refusal(session=session, actor=actor, version_id=version.id)))
    return entries


def save_verdict(*, session: Session, actor: UserPublic, version_id: int, code: str, verdict: str, comment: str,
                 expected_revision: int) -> VerdictState:
    """The reviewer's verdict on one item of the current round, on top of the revision they saw."""
    _check_reviewer(session, actor, version_id)
    if verdict not in VERDICTS:
        raise InvalidInput(f"Choose one of: {', '.join(VERDICTS.values())}.")
    comment = comment.strip()
    if verdict != "agree" and not comment:
        raise InvalidInput("Say what is wrong or missing, so the builder knows what to change.")
    if len(comment) > MAX_COMMENT:
        raise InvalidInput(f"The comment is longer than {MAX_COMMENT} characters; shorten it.")
    checklist.load_template().item(code)
    current = _current_round(session, _assessment(session, version_id))
    row = session.exec(select(ItemVerdict).where(ItemVerdict.round_id == current.id, ItemVerdict.code == code)
                       .with_for_update()).first()
    if (row.revision if row else 0) != expected_revision:
        raise Conflict(f"The verdict on {code} was changed by {_name(session, row.reviewer_id)} at "
                       f"{row.updated_at:%Y-%m-%d %H:%M} UTC since you opened it. Reload to see it; yours was not "
                       "saved.")
    if row is None:
        row = ItemVerdict(round_id=current.id, code=code, verdict=verdict, reviewer_id=actor.id)
    row.verdict, row.comment, row.reviewer_id, row.updated_at = verdict, comment, actor.id, utcnow()
    row.revision += 1
    session.add(row)
    audit.record_event(session, actor=actor, action="review.verdict", entity_type="assessment",
                       entity_id=current.assessment_id, details={"round": current.number, "code": code,
                                                                 "verdict": verdict})
    session.commit()
    return round_views(session=session, version_id=version_id)[-1].verdicts[code]


def decide(*, session: Session, settings: Settings, actor: UserPublic, version_id: int, decision: str,
           conditions: str = "", comment: str = "") -> RoundView:
    """Close the current round with the reviewer's decision; the builder is notified."""
    _check_reviewer(session, actor, version_id)
    if decision not in DECISIONS:
        raise InvalidInput(f"Choose one of: {', '.join(DECISIONS.values())}.")
    conditions, comment = conditions.strip(), comment.strip()
    if len(conditions) > MAX_COMMENT or len(comment) > MAX_COMMENT:
        raise InvalidInput(f"Conditions and comment are limited to {MAX_COMMENT} characters each.")
    assessment = _assessment(session, version_id)
    current = _current_round(session, assessment)
    verdicts = {v.code: v for v in session.exec(select(ItemVerdict).where(ItemVerdict.round_id == current.id))}
    objections = sorted(code for code, v in verdicts.items() if v.verdict != "agree")
    if decision in ("approve", "approve_with_conditions"):
        missing = [code for code in current.snapshot["items"] if code not in verdicts]
        if missing:
            raise InvalidInput(f"Give a verdict on every item before approving. Still open: {', '.join(missing)}.")
        if decision == "approve" and objections:
            raise InvalidInput(f"Items {', '.join(objections)} are marked disagree or needs work: approve with "
                               "conditions, request changes, or change those verdicts.")
        if decision == "approve_with_conditions" and not conditions:
            raise InvalidInput("Write the conditions of the approval.")
    elif decision == "request_changes" and not (objections or comment):
        raise InvalidInput("Mark the items that need work, or write a comment, so the builder knows what to change.")
    elif decision == "reject" and not comment:
        raise InvalidInput("Write why the model is rejected.")
    current.decision, current.conditions, current.comment = decision, conditions, comment
    current.decided_by_id, current.decided_at = actor.id, utcnow()
    assessment.status, version_status = OUTCOME[decision]
    assessment.updated_at = current.decided_at
    if assessment.status == AssessmentStatus.approved:
        assessment.reassess_by = checklist.reassess_date(settings)
        assessment.reopened_reason = ""
    session.add(current)
    session.add(assessment)
    version = _version(session, version_id)
    if version.status in PRE_PRODUCTION:
        registry.change_status(session=session, actor=actor, version_id=version_id, to_status=version_status,
                               reason=f"review round {current.number}: {DECISIONS[decision].lower()}")
    audit.record_event(session, actor=actor, action="review.decide", entity_type="assessment",
                       entity_id=assessment.id, details={"round": current.number, "decision": decision,
                                                         "conditions": conditions})
    label = registry.get_version(session=session, version_id=version_id).label
    builders = authors_of(session=session, version_id=version_id) - {actor.id}
    notifications.notify(session, user_ids=builders, page="checklist",
                         message=f"{actor.label} {DECIDED[decision]} {label} (review round {current.number}).")
    session.commit()
    return round_views(session=session, version_id=version_id)[-1]


def reopen(*, session: Session, actor: UserPublic, version_id: int, reason: str) -> None:
    """Re-open a decided assessment (e.g. a persistent drift alert): the builder answers again, then a new round."""
    reason = reason.strip()
    if not reason:
        raise InvalidInput("Say why the assessment is re-opened.")
    require_role(actor, Role.builder, Role.reviewer, Role.manager, Role.admin)
    assessment = _assessment(session, version_id)
    if assessment.status in checklist.EDITABLE:
        return
    if assessment.status == AssessmentStatus.in_review:
        raise Conflict("The assessment is being reviewed; wait for the decision before re-opening it.")
    assessment.status = AssessmentStatus.draft
    assessment.reopened_reason = reason[:2000]
    assessment.updated_at = utcnow()
    session.add(assessment)
    audit.record_event(session, actor=actor, action="review.reopen", entity_type="assessment",
                       entity_id=assessment.id, details={"reason": reason})
    label = registry.get_version(session=session, version_id=version_id).label
    notifications.notify(session, user_ids=authors_of(session=session, version_id=version_id), page="checklist",
                         message=f"The self-assessment of {label} was re-opened: {reason[:200]}")
    session.commit()


def latest_decision(*, session: Session, version_id: int) -> dict[str, Any] | None:
    """The newest decided round of a version's review, or None when none is decided yet."""
    decided = [r for r in round_views(session=session, version_id=version_id) if r.decision]
    if not decided:
        return None
    last = decided[-1]
    return {"decision": last.decision, "conditions": last.conditions, "comment": last.comment,
            "decided_by_name": last.decided_by_name, "decided_at": last.decided_at, "round": last.number}


# ── dashboard ───────────────────────────────────────────────────────────────────────────────────────


LIGHTS = {"red": "Problems", "amber": "Open points", "green": "In order"}


@dataclass
class Dashboard:
    status: str
    rounds: int
    reviewers: list[str]
    submitted_at: datetime | None
    decided_at: datetime | None
    reassess_by: date | None
    dimensions: list[dict[str, Any]]
    open_items: list[dict[str, str]]


def _light(statuses: list[str]) -> str:
    if "red" in statuses:
        return "red"
    return "amber" if "amber" in statuses else "green"


def dashboard(*, session: Session, settings: Settings, version_id: int) -> Dashboard:
    """Status by dimension (traffic lights), open items, rounds, reviewers and dates of one version's review."""
    view = checklist.get_assessment(session=session, version_id=version_id)
    if view is None:
        raise NotFound("This model version has no self-assessment yet.")
    evidence = checklist.evidence_for(session=session, settings=settings, version_id=version_id)
    rounds = round_views(session=session, version_id=version_id)
    verdicts = rounds[-1].verdicts if rounds else {}
    template = checklist.load_template()
    per_dimension: dict[str, list[str]] = {code: [] for code in template.dimensions}
    open_items = []
    for item in template.items:
        state, auto, verdict = view.items[item.code], evidence[item.code].status, verdicts.get(item.code)
        answered = bool(state.answer and state.justification.strip())
        light = "green"
        reasons = []
        if auto == "fail" or (verdict and verdict.verdict == "disagree"):
            light = "red"
        elif auto == "warn" or (verdict and verdict.verdict == "needs_work") or (item.required and not answered):
            light = "amber"
        if item.required and not answered:
            reasons.append("not answered")
        if auto in ("fail", "warn"):
            reasons.append(f"evidence: {checklist.STATUS_LABELS[auto].lower()}")
        if verdict and verdict.verdict != "agree":
            reasons.append(f"reviewer: {VERDICTS[verdict.verdict].lower()}")
        per_dimension[item.dimension].append(light)
        if reasons:
            open_items.append({"Item": item.code, "Question": item.question, "Why open": "; ".join(reasons)})
    dimensions = [{"code": code, "name": name, "light": _light(per_dimension[code]),
                   "items": len(per_dimension[code]),
                   "open": sum(light != "green" for light in per_dimension[code])}
                  for code, name in template.dimensions.items()]
    decided = [r for r in rounds if r.decided_at]
    return Dashboard(status=view.status, rounds=len(rounds),
                     reviewers=sorted({r.decided_by_name for r in decided if r.decided_by_name}),
                     submitted_at=rounds[-1].submitted_at if rounds else None,
                     decided_at=decided[-1].decided_at if decided else None, reassess_by=view.reassess_by,
                     dimensions=dimensions, open_items=open_items)

