"""The model registry: named models in a project, their immutable versions and every status change.

A version is one trained run, registered once. Its status follows the lifecycle
``candidate → in_review → approved | changes_requested | rejected → production → retired``; every change is a
``StageTransition`` row and an audit event.

Promotion to production is a manager's or an administrator's decision, refused to the version's authors and
refused until every gate passes (peer review, model card, reproducibility, baseline, production version, groups);
an administrator may override a failed gate with a written reason. The version it replaces is kept as the
fallback, which :func:`rollback` restores in one step. The module also compares versions, traces a version's
lineage and judges each model's MLOps maturity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import audit, datasets, model_card
from core.auth import OPERATOR, clean_name, ensure_not_author, require_role
from core.config import Settings
from core.errors import Conflict, GateFailed, InvalidInput, NotFound
from core.models import (
    AlertRule,
    Assessment,
    AssessmentStatus,
    GateOverride,
    ModelVersion,
    ModelVersionPublic,
    MonitoringReport,
    PipelineConfig,
    PipelineRun,
    PredictionBatch,
    RegisteredModel,
    Role,
    RunStatus,
    StageTransition,
    StageTransitionPublic,
    TrainingRun,
    TrainingRunPublic,
    User,
    UserPublic,
    VersionStatus,
    utcnow,
)
from core.training import evaluation, runs

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
    before = session.get(TrainingRun, previous.run_id) if previous else None
    if before is not None and (before.target, before.task) != (run.target, run.task):
        raise InvalidInput(f"{name} predicts {before.target!r} ({before.task}); run {run_id} predicts {run.target!r} "
                           f"({run.task}). Register it under another name: versions of one model do the same job.")
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


def production_version(*, session: Session, project_id: int, model_name: str) -> ModelVersionPublic | None:
    """The version of ``model_name`` in production (there is at most one), or None."""
    version = session.exec(select(ModelVersion).join(RegisteredModel)
                           .where(RegisteredModel.project_id == project_id, RegisteredModel.name == model_name,
                                  ModelVersion.status == VersionStatus.production)).first()
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


def _get_model(session: Session, model_id: int) -> RegisteredModel:
    model = session.get(RegisteredModel, model_id)
    if model is None:
        raise NotFound(f"Model {model_id} does not exist.")
    return model


def find_model(*, session: Session, name: str, project_id: int | None = None) -> RegisteredModel:
    """The model called ``name`` (in ``project_id`` when given); refuses an unknown or ambiguous name."""
    query = select(RegisteredModel).where(RegisteredModel.name == name)
    if project_id is not None:
        query = query.where(RegisteredModel.project_id == project_id)
    found = session.exec(query).all()
    if not found:
        where = " in this project" if project_id is not None else ""
        raise NotFound(f"There is no model named {name!r}{where}. Register a run under that name first.")
    if len(found) > 1:
        raise InvalidInput(f"Several projects have a model named {name!r}: say which project (--project).")
    return found[0]


def find_version(*, session: Session, model_id: int, number: int) -> ModelVersionPublic:
    """Version ``number`` of a model."""
    version = session.exec(select(ModelVersion).where(ModelVersion.model_id == model_id,
                                                      ModelVersion.number == number)).first()
    if version is None:
        raise NotFound(f"{_get_model(session, model_id).name} has no version {number}.")
    return _public(session, version)


def registrable_runs(*, session: Session, project_id: int) -> list[TrainingRunPublic]:
    """Finished runs of the project that are not registered yet, newest first."""
    registered = set(session.exec(select(ModelVersion.run_id)))
    return [run for run in runs.list_runs(session=session, project_id=project_id)
            if run.status == RunStatus.succeeded and run.id not in registered]


@dataclass(frozen=True)
class ModelSummary:
    """A registered model with its versions, newest first, and which one is in production and which is fallback."""

    id: int
    name: str
    project_id: int
    versions: list[ModelVersionPublic]
    production: ModelVersionPublic | None
    fallback: ModelVersionPublic | None


def _fallback(session: Session, model_id: int) -> ModelVersion | None:
    """The version "roll back" restores: the one most recently retired by a promotion and not rolled back since."""
    return session.exec(select(ModelVersion).where(ModelVersion.model_id == model_id,
                                                   ModelVersion.status == VersionStatus.retired,
                                                   col(ModelVersion.is_fallback).is_(True))
                        .order_by(col(ModelVersion.status_changed_at).desc(), col(ModelVersion.id).desc())).first()


def _production(session: Session, model_id: int) -> ModelVersion | None:
    return session.exec(select(ModelVersion).where(ModelVersion.model_id == model_id,
                                                   ModelVersion.status == VersionStatus.production)).first()


def _summary(session: Session, model: RegisteredModel) -> ModelSummary:
    versions = session.exec(select(ModelVersion).where(ModelVersion.model_id == model.id)
                            .order_by(col(ModelVersion.number).desc())).all()
    production, fallback = _production(session, model.id), _fallback(session, model.id)
    return ModelSummary(id=model.id, name=model.name, project_id=model.project_id,
                        versions=[_public(session, v) for v in versions],
                        production=_public(session, production) if production else None,
                        fallback=_public(session, fallback) if fallback else None)


def list_models(*, session: Session, project_id: int) -> list[ModelSummary]:
    """Every registered model of a project, by name."""
    models = session.exec(select(RegisteredModel).where(RegisteredModel.project_id == project_id)
                          .order_by(RegisteredModel.name)).all()
    return [_summary(session, model) for model in models]


def get_model(*, session: Session, model_id: int) -> ModelSummary:
    return _summary(session, _get_model(session, model_id))


def status_label(version: ModelVersionPublic) -> str:
    """The status in words: "in review", "changes requested", "retired (fallback)"…"""
    words = version.status.replace("_", " ")
    return f"{words} (fallback)" if version.status == VersionStatus.retired and version.is_fallback else words


# ── comparing metrics ───────────────────────────────────────────────────────────────────────────────

# Metrics without a fixed scale (errors in the target's units, log loss) are compared as a share of the reference
# value: a margin of 0.01 means 1 % better. The others (AUC, accuracy, F1, R², Brier) are compared in their units.
RELATIVE_METRICS = frozenset({"rmse", "mae", "log_loss"})


def advantage(metric: str, value: float, reference: float) -> float:
    """How much better ``value`` is than ``reference`` (negative when worse), whichever way the metric runs.

    In the metric's units, or as a share of ``reference`` for the metrics in :data:`RELATIVE_METRICS`.
    """
    difference = value - reference if evaluation.GREATER_IS_BETTER[metric] else reference - value
    if metric not in RELATIVE_METRICS:
        return difference
    if reference == 0:
        return 0.0 if difference == 0 else math.copysign(math.inf, difference)
    return difference / abs(reference)


def _count(number: int, one: str, many: str) -> str:
    return f"{number:,} {one if number == 1 else many}"


def _amount(metric: str, amount: float) -> str:
    return f"{amount:.1%}" if metric in RELATIVE_METRICS else f"{amount:.3f}"


def _value(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.1f}" if abs(value) >= 1000 else f"{value:.3f}" if abs(value) < 100 else f"{value:,.2f}"


def metric_name(metric: str) -> str:
    """A metric's short name for sentences: "ROC AUC", "macro F1", "RMSE"."""
    return SHORT_METRICS.get(metric, metric.replace("_", " "))


SHORT_METRICS = {"roc_auc": "ROC AUC", "accuracy": "accuracy", "balanced_accuracy": "balanced accuracy",
                 "f1": "F1", "f1_macro": "macro F1", "log_loss": "log loss", "brier": "Brier score",
                 "rmse": "RMSE", "mae": "MAE", "r2": "R²"}


def cross_score(*, settings: Settings, model_run: TrainingRunPublic, test_run: TrainingRunPublic,
                session: Session | None = None) -> dict[str, Any]:
    """Score ``model_run``'s model on ``test_run``'s held-out test rows, when the two fit together.

    The test set keeps only ``test_run``'s input columns. With a ``session``, columns ``model_run`` needs beyond
    those are taken from the same rows of ``test_run``'s dataset version, so a model using more columns can still
    be scored on exactly these rows. Returns ``{"comparable": True, "rows", "metrics", "note"}`` or
    ``{"comparable": False, "why"}``. Both runs' artifacts are content-addressed, so the answer never changes for the
    same two runs (callers may cache it).
    """
    why = _mismatch(model_run, test_run)
    if why:
        return {"comparable": False, "why": why}
    test = runs.load_test_set(settings=settings, run=test_run)
    needed = list(model_run.feature_types)
    available = dict(test_run.feature_types)
    missing = sorted(name for name in needed if name not in available)
    note, rows = "", test
    if missing and session is not None:
        data = datasets.get_version(session=session, version_id=test_run.dataset_version_id)
        if all(name in data.types for name in missing):
            frame = datasets.load_frame(settings=settings, version=data)
            if test.index.isin(frame.index).all():
                rows = frame.loc[test.index, needed].assign(__target__=test["__target__"].to_numpy())
                available |= {name: data.types[name] for name in missing}
                note = (f"{_names(missing)} taken from the same rows of {data.dataset_name} v{data.number}, "
                        "which the test set does not keep")
                missing = []
    if missing:
        return {"comparable": False, "why": f"the test data lacks column(s) it needs: {_names(missing)}"}
    retyped = sorted(name for name in needed if available[name] != model_run.feature_types[name])
    if retyped:
        return {"comparable": False, "why": f"column(s) {_names(retyped)} have another type there"}
    model = runs.load_run_model(settings=settings, run=model_run)
    predicted = model.predict(rows[needed])
    proba = model.predict_proba(rows[needed]) if model_run.classes else None
    metrics = evaluation.compute_metrics(model_run.task, rows["__target__"].to_numpy(), predicted, proba,
                                         model_run.classes)
    return {"comparable": True, "rows": len(rows), "metrics": metrics, "note": note}


def _mismatch(model_run: TrainingRunPublic, test_run: TrainingRunPublic) -> str | None:
    """Why one run's model can never be scored on the other's test rows (another target, task or classes)."""
    if model_run.target != test_run.target:
        return f"it predicts {model_run.target!r}, not {test_run.target!r}"
    if model_run.task != test_run.task:
        return f"it is a {model_run.task} model, not {test_run.task}"
    if model_run.classes and set(model_run.classes) != set(test_run.classes or []):
        return "its classes differ"
    return None


def _names(names: list[str], shown: int = 5) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def _same_split(a: TrainingRunPublic, b: TrainingRunPublic) -> bool:
    """Whether two runs held out exactly the same test rows (same data, seed and way of splitting)."""
    keys = ("cv", "cv_column", "test_share")
    return (a.dataset_version_id == b.dataset_version_id and a.seed == b.seed
            and all(a.config.get(key) == b.config.get(key) for key in keys))


Scorer = Callable[[TrainingRunPublic, TrainingRunPublic], dict[str, Any]]


# ── promotion gates ─────────────────────────────────────────────────────────────────────────────────

GATES = {
    "review": "Peer review approved",
    "model_card": "Model card complete",
    "reproducibility": "Reproducibility certificate passed",
    "baseline": "Beats the dummy baseline",
    "production": "Not worse than the production version",
    "subgroups": "No sensitive group much worse",
}
APPROVED = ("approve", "approve_with_conditions")
MIN_REASON = 10


@dataclass(frozen=True)
class GateOverridePublic:
    id: int
    version_id: int
    gate: str
    reason: str
    actor_name: str
    created_at: datetime
    current: bool = True  # False once the version has left production since: its gates are judged afresh


@dataclass(frozen=True)
class GateResult:
    """One gate: whether it passes, why in plain words, and an administrator's override when there is one."""

    gate: str
    title: str
    passed: bool
    reason: str
    override: GateOverridePublic | None = None
    conditions: str = ""

    @property
    def ok(self) -> bool:
        return self.passed or self.override is not None

    @property
    def verdict(self) -> str:
        return "passed" if self.passed else "overridden" if self.override else "failed"


@dataclass(frozen=True)
class GateReport:
    version: ModelVersionPublic
    production: ModelVersionPublic | None
    gates: list[GateResult]

    @property
    def ok(self) -> bool:
        return all(gate.ok for gate in self.gates)

    @property
    def failed(self) -> list[GateResult]:
        return [gate for gate in self.gates if not gate.ok]


def _latest_decision(session: Session, version_id: int) -> dict[str, Any] | None:
    from core import review  # review moves versions through change_status: import it only when needed

    return review.latest_decision(session=session, version_id=version_id)


def _authors(session: Session, version_id: int) -> set[int]:
    from core import review

    return review.authors_of(session=session, version_id=version_id)


def _review_gate(session: Session, version: ModelVersionPublic) -> GateResult:
    decision = _latest_decision(session, version.id)
    title = GATES["review"]
    if decision is None:
        return GateResult("review", title, False, "No review decision yet: submit the self-assessment for peer "
                                                  "review on the checklist page.")
    when = f"{decision['decided_at']:%Y-%m-%d}" if decision.get("decided_at") else "an unknown date"
    who = f"{decision.get('decided_by_name') or 'a reviewer'} on {when} (round {decision.get('round')})"
    conditions = (decision.get("conditions") or "").strip()
    assessment = session.exec(select(Assessment).where(Assessment.version_id == version.id)).first()
    if decision["decision"] in APPROVED and assessment is not None:
        if assessment.status != AssessmentStatus.approved:  # re-opened (e.g. after an alert) or resubmitted
            why = f": {assessment.reopened_reason}" if assessment.reopened_reason else "."
            return GateResult("review", title, False, f"The approval by {who} was re-opened{why} It needs a new "
                                                      "review round.")
        if assessment.reassess_by is not None and assessment.reassess_by < date.today():
            return GateResult("review", title, False, f"The approval by {who} expired on "
                                                      f"{assessment.reassess_by:%Y-%m-%d}: reassess the model.")
    if decision["decision"] == "approve":
        return GateResult("review", title, True, f"Approved by {who}.")
    if decision["decision"] == "approve_with_conditions":
        return GateResult("review", title, True, f"Approved with conditions by {who}: {conditions}",
                          conditions=conditions)
    if decision["decision"] == "request_changes":
        return GateResult("review", title, False, f"Changes requested by {who}: answer them and submit the "
                                                  "assessment again.")
    return GateResult("review", title, False, f"Rejected by {who}.")


def _card_gate(session: Session, version: ModelVersionPublic) -> GateResult:
    found = model_card.completeness(session=session, run_id=version.run_id)
    if found.complete:
        return GateResult("model_card", GATES["model_card"], True, "Every required part of the card is written.")
    return GateResult("model_card", GATES["model_card"], False,
                      f"The card is {found.percent}% complete. Missing: {'; '.join(found.missing)}.")


def _reproducibility_gate(session: Session, version: ModelVersionPublic) -> GateResult:
    certificate = runs.latest_certificate(session=session, run_id=version.run_id)
    title = GATES["reproducibility"]
    if certificate is None:
        return GateResult("reproducibility", title, False, f"Run {version.run_id} has not been reproduced yet: "
                                                           "use Reproduce on the Model results page.")
    if certificate.status == "running":
        return GateResult("reproducibility", title, False, f"Certificate {certificate.id} is still being produced.")
    if certificate.status != "passed":
        return GateResult("reproducibility", title, False, f"Certificate {certificate.id} failed: re-running run "
                                                           f"{version.run_id} gave different predictions.")
    return GateResult("reproducibility", title, True, f"Certificate {certificate.id}: re-running run "
                                                      f"{version.run_id} gave identical predictions.")


def _baseline_gate(run: TrainingRunPublic, margin: float) -> GateResult:
    metric, title = run.primary_metric, GATES["baseline"]
    value = ((run.evaluation or {}).get("metrics", {}).get(metric) or {}).get("value")
    reference = (run.baseline or {}).get(metric)
    if value is None or reference is None:
        return GateResult("baseline", title, False, f"The {metric_name(metric)} of the model or of the baseline could "
                                                    "not be computed on the test set.")
    better = advantage(metric, value, reference)
    dummy = "always predicts the average" if run.task == "regression" else "always gives the most common answer"
    facts = f"{metric_name(metric)} {_value(value)} against {_value(reference)} for a model that {dummy}"
    if better > 0 and better >= margin:
        return GateResult("baseline", title, True, f"{facts}: better by {_amount(metric, better)} "
                                                   f"(margin {_amount(metric, margin)}).")
    how = f"better by only {_amount(metric, better)}" if better > 0 else f"worse by {_amount(metric, -better)}" \
        if better < 0 else "no better"
    return GateResult("baseline", title, False, f"{facts}: {how}, short of the margin {_amount(metric, margin)}.")


def _subgroup_gate(run: TrainingRunPublic, tolerance: float) -> GateResult:
    title = GATES["subgroups"]
    rows = (run.evaluation or {}).get("subgroups") or []
    if not rows:
        return GateResult("subgroups", title, True, "No sensitive columns were marked for this data, so no group "
                                                    "results were measured.")
    judged, small, undefined = [], 0, 0
    for row in rows:
        if row.get("small"):
            small += 1
        elif row.get("gap") is None:
            undefined += 1
        else:
            gap = row["gap"] / abs(row["overall"]) if row["metric"] in RELATIVE_METRICS and row["overall"] else \
                row["gap"]
            judged.append((gap, row))
    notes = []
    if small:
        notes.append(f"{small} group{'s' * (small != 1)} with too few test rows not judged")
    if undefined:
        notes.append(f"{undefined} group{'s' * (undefined != 1)} where the metric is undefined")
    note = f" ({'; '.join(notes)})" if notes else ""

    def describe(gap: float, row: dict) -> str:
        return (f"{row['column']} = {row['group']}: {metric_name(row['metric'])} {_value(row['value'])} against "
                f"{_value(row['overall'])} overall, {_amount(row['metric'], gap)} worse")

    over = sorted(((gap, row) for gap, row in judged if gap > tolerance), key=lambda item: -item[0])
    if over:
        metric = over[0][1]["metric"]
        return GateResult("subgroups", title, False, "; ".join(describe(gap, row) for gap, row in over)
                          + f" (tolerance {_amount(metric, tolerance)}){note}.")
    if not judged:
        return GateResult("subgroups", title, True, f"No group is large enough to judge{note}.")
    gap, row = max(judged, key=lambda item: item[0])
    if gap <= 0:
        return GateResult("subgroups", title, True, f"No group does worse than overall{note}.")
    return GateResult("subgroups", title, True, f"Largest gap {describe(gap, row)} (tolerance "
                                                f"{_amount(row['metric'], tolerance)}){note}.")


def _production_gate(session: Session, settings: Settings, version: ModelVersionPublic,
                     run: TrainingRunPublic, scorer: Scorer) -> GateResult:
    title = GATES["production"]
    current = _production(session, version.model_id)
    if current is None:
        return GateResult("production", title, True, f"No version of {version.model_name} is in production yet, "
                                                     "so there is nothing to compare with.")
    if current.id == version.id:
        return GateResult("production", title, True, "This is the production version.")
    other = runs.get_run(session=session, run_id=current.run_id)
    label = f"v{current.number}"
    metric, tolerance = run.primary_metric, settings.production_tolerance
    mine = ((run.evaluation or {}).get("metrics", {}).get(metric) or {}).get("value")
    scored = scorer(other, run)
    if scored["comparable"]:
        theirs = scored["metrics"].get(metric)
        where = f"On this version's {scored['rows']:,} held-out test rows"
        if scored.get("note"):
            where += f" ({scored['note']})"
        caveat = "" if _same_split(run, other) else (
            f" {label} held out other rows ({other.dataset_name} v{other.dataset_number}, seed {other.seed}): it may "
            f"have been trained on some of these test rows, which flatters {label}.")
    else:
        if other.task != run.task or other.target != run.target:
            return GateResult("production", title, False, f"The production version {label} cannot be compared: "
                                                          f"{scored['why']}. A different model needs its own name.")
        theirs = ((other.evaluation or {}).get("metrics", {}).get(metric) or {}).get("value")
        where = (f"Not scored on the same data ({label} cannot be: {scored['why']}); compared the recorded test "
                 "results instead")
        caveat = (" Both were tested on the same held-out rows (same data, seed and split)." if _same_split(run, other)
                  else " They come from different test rows, so small differences mean little.")
    if mine is None or theirs is None:
        return GateResult("production", title, False, f"{where}: the {metric_name(metric)} could not be computed.")
    better = advantage(metric, mine, theirs)
    facts = f"{where}: {metric_name(metric)} {_value(mine)} against {_value(theirs)} for {label}"
    if better >= 0:
        verdict = f"{facts}, better by {_amount(metric, better)}."
    else:
        verdict = f"{facts}, worse by {_amount(metric, -better)} (tolerance {_amount(metric, tolerance)})."
    return GateResult("production", title, -better <= tolerance, verdict + caveat)


def _default_scorer(settings: Settings, session: Session) -> Scorer:
    return lambda model_run, test_run: cross_score(settings=settings, model_run=model_run, test_run=test_run,
                                                   session=session)


def _left_production_at(session: Session, version_id: int) -> datetime | None:
    """When the version last left production (replaced or rolled back), or None."""
    query = select(StageTransition.created_at).where(StageTransition.version_id == version_id,
                                                     StageTransition.from_status == VersionStatus.production)
    return session.exec(query.order_by(col(StageTransition.id).desc())).first()


def list_overrides(*, session: Session, version_id: int) -> list[GateOverridePublic]:
    """Every override of a version's gates, oldest first (for the history and the reports).

    An override counts for one stay in production: once the version leaves production, its gates are judged
    afresh, and earlier overrides are listed with ``current`` False.
    """
    left = _left_production_at(session, version_id)
    rows = session.exec(select(GateOverride).where(GateOverride.version_id == version_id)
                        .order_by(col(GateOverride.id))).all()
    return [GateOverridePublic(id=row.id, version_id=row.version_id, gate=row.gate, reason=row.reason,
                               actor_name=_name_of(session, row.actor_id), created_at=row.created_at,
                               current=left is None or row.created_at > left) for row in rows]


def _overrides(session: Session, version_id: int) -> dict[str, GateOverridePublic]:
    """The latest override of each gate of a version that still counts."""
    return {row.gate: row for row in list_overrides(session=session, version_id=version_id) if row.current}


def evaluate_gates(*, session: Session, settings: Settings, version_id: int,
                   scorer: Scorer | None = None) -> GateReport:
    """Every promotion gate of a version, each with its result, its reason and any override.

    ``scorer`` scores one run's model on another run's test set (default :func:`cross_score`); the app passes a
    cached one, since the answer never changes for the same two runs.
    """
    version = _public(session, _get(session, version_id))
    run = runs.get_run(session=session, run_id=version.run_id)
    scorer = scorer or _default_scorer(settings, session)
    gates = [
        _review_gate(session, version),
        _card_gate(session, version),
        _reproducibility_gate(session, version),
        _baseline_gate(run, settings.baseline_margin),
        _production_gate(session, settings, version, run, scorer),
        _subgroup_gate(run, settings.subgroup_gap_tolerance),
    ]
    overrides = _overrides(session, version_id)
    gates = [replace(gate, override=overrides.get(gate.gate)) if not gate.passed else gate for gate in gates]
    current = _production(session, version.model_id)
    return GateReport(version=version, production=_public(session, current) if current else None, gates=gates)


def _check_reason(reason: str, *, what: str) -> str:
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON:
        raise InvalidInput(f"Write why {what} in a sentence (at least {MIN_REASON} characters): it goes into the "
                           "audit trail and the reports.")
    if len(reason) > 2000:
        raise InvalidInput("Keep the reason under 2,000 characters.")
    return reason


def override_gate(*, session: Session, settings: Settings, actor: UserPublic, version_id: int, gate: str,
                  reason: str, scorer: Scorer | None = None) -> GateOverridePublic:
    """An administrator lets a version past a failed gate, with a written reason (stored and audited)."""
    require_role(actor, Role.admin)
    version = _public(session, _get(session, version_id))
    if gate not in GATES:
        raise InvalidInput(f"There is no gate {gate!r}. Gates are: {', '.join(GATES)}.")
    ensure_not_author(actor, _authors(session, version_id), what=version.label)
    reason = _check_reason(reason, what=f"the gate “{GATES[gate]}” may be passed over")
    report = evaluate_gates(session=session, settings=settings, version_id=version_id, scorer=scorer)
    result = next(item for item in report.gates if item.gate == gate)
    if result.passed:
        raise Conflict(f"The gate “{result.title}” passes for {version.label}; there is nothing to override.")
    row = GateOverride(version_id=version_id, gate=gate, reason=reason, actor_id=actor.id or None)
    session.add(row)
    session.flush()
    audit.record_event(session, actor=actor, action="model.gate.override", entity_type="model_version",
                       entity_id=version_id, details={"model": version.model_name, "number": version.number,
                                                      "gate": gate, "failed_because": result.reason,
                                                      "reason": reason})
    session.commit()
    return _overrides(session, version_id)[gate]


def promotion_refusal(*, session: Session, actor: UserPublic, version_id: int) -> str | None:
    """Why ``actor`` may not promote this version, gates aside (None when they may)."""
    version = _get(session, version_id)
    if version.status == VersionStatus.production:
        return "This version is in production."
    if not actor.has_role(Role.manager, Role.admin):
        return "Only a manager or an administrator promotes a version to production."
    if actor.id in _authors(session, version_id):
        return ("You trained this model, edited its card or answered its self-assessment, so a colleague must "
                "promote it (four-eyes rule).")
    return None


def override_refusal(*, session: Session, actor: UserPublic, version_id: int) -> str | None:
    """Why ``actor`` may not override this version's gates (None when they may)."""
    if not actor.has_role(Role.admin):
        return "Only an administrator can override a failed gate."
    if actor.id in _authors(session, version_id):
        return ("You worked on this version, so another administrator must decide on overriding its gates "
                "(four-eyes rule).")
    return None


def _lock_model(session: Session, model_id: int) -> RegisteredModel:
    # PostgreSQL: one promotion or rollback of a model at a time. SQLite serialises writers anyway, and the unique
    # index on production versions catches what slips through.
    return session.exec(select(RegisteredModel).where(RegisteredModel.id == model_id).with_for_update()).one()


def _commit(session: Session, model_name: str) -> None:
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise Conflict(f"Someone changed {model_name}'s production version at the same moment. Reload and look "
                       "again.") from error


def promote_version(*, session: Session, settings: Settings, actor: UserPublic, version_id: int, reason: str = "",
                    scorer: Scorer | None = None) -> ModelVersionPublic:
    """Make a version the production version of its model; the previous one is kept as the fallback.

    Only a manager or an administrator who did not author the version may promote it, and only when every gate
    passes or has been overridden by an administrator.
    """
    require_role(actor, Role.manager, Role.admin)
    version = _get(session, version_id)
    public = _public(session, version)
    ensure_not_author(actor, _authors(session, version_id), what=public.label)
    if version.status == VersionStatus.production:
        raise Conflict(f"{public.label} is already in production.")
    _lock_model(session, version.model_id)
    report = evaluate_gates(session=session, settings=settings, version_id=version_id, scorer=scorer)
    if not report.ok:
        failed = " ".join(f"“{gate.title}” fails: {gate.reason}" for gate in report.failed)
        count = len(report.failed)
        raise GateFailed(f"{public.label} cannot be promoted: {count} gate{'s' * (count != 1)} "
                         f"fail{'s' * (count == 1)}. {failed} An administrator can override a failed gate with a "
                         "written reason.")
    why = (reason or "").strip()[:2000]
    overridden = [gate.gate for gate in report.gates if not gate.passed]
    previous = _production(session, version.model_id)
    if previous is not None:
        change_status(session=session, actor=actor, version_id=previous.id, to_status=VersionStatus.retired,
                      reason=f"Replaced by v{version.number}; kept as the fallback.")
        previous.is_fallback = True
        session.add(previous)
        session.flush()  # out of production before the new one goes in (one production version per model)
    default = "Promoted: every gate passed." if not overridden else \
        f"Promoted with overridden gate(s): {', '.join(GATES[g] for g in overridden)}."
    change_status(session=session, actor=actor, version_id=version.id, to_status=VersionStatus.production,
                  reason=why or default)
    version.is_fallback = False
    session.add(version)
    audit.record_event(session, actor=actor, action="model.promote", entity_type="model_version",
                       entity_id=version.id, details={
                           "model": public.model_name, "number": version.number, "reason": why,
                           "previous": previous.number if previous else None,
                           "gates": {gate.gate: gate.verdict for gate in report.gates},
                           "conditions": next((g.conditions for g in report.gates if g.conditions), "")})
    from core import alerts  # alerts reads the registry's tables; imported here to keep the imports one-way

    alerts.add_default_rules(session, version_id=version.id, actor=actor)  # a model in production is watched
    _commit(session, public.model_name)
    return _public(session, version)


def rollback(*, session: Session, actor: UserPublic, model_id: int, reason: str = "") -> ModelVersionPublic:
    """Put the fallback version back into production in one step; the current one is retired (not a fallback)."""
    require_role(actor, Role.manager, Role.admin)
    model = _lock_model(session, model_id)
    current = _production(session, model_id)
    if current is None:
        raise Conflict(f"{model.name} has no version in production, so there is nothing to roll back.")
    fallback = _fallback(session, model_id)
    if fallback is None:
        raise Conflict(f"{model.name} has no earlier production version to go back to.")
    why = (reason or "").strip()[:1900]
    change_status(session=session, actor=actor, version_id=current.id, to_status=VersionStatus.retired,
                  reason=f"Rolled back to v{fallback.number}" + (f": {why}" if why else "."))
    current.is_fallback = False  # a version taken out by a rollback is never restored by the next one
    session.add(current)
    session.flush()
    change_status(session=session, actor=actor, version_id=fallback.id, to_status=VersionStatus.production,
                  reason=f"Restored by a rollback from v{current.number}" + (f": {why}" if why else "."))
    fallback.is_fallback = False
    session.add(fallback)
    audit.record_event(session, actor=actor, action="model.rollback", entity_type="registered_model",
                       entity_id=model_id, details={"model": model.name, "from": current.number,
                                                    "to": fallback.number, "reason": why})
    _commit(session, model.name)
    return _public(session, fallback)


# ── comparing versions ──────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class VersionComparison:
    """Two or more versions side by side; each table is a list of rows keyed by column title."""

    labels: list[str]
    metrics: list[dict[str, Any]]
    notes: list[str]
    parameters: list[dict[str, Any]]
    data: list[dict[str, Any]]
    card: list[dict[str, Any]]


def _rows(labels: list[str], fields: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    rows = []
    for name, values in fields:
        shown = ["—" if value in (None, "") else str(value) for value in values]
        rows.append({"": name, "Differs": "yes" if len(set(shown)) > 1 else "",
                     **dict(zip(labels, shown, strict=True))})
    return rows


def _chosen(run: TrainingRunPublic) -> str:
    row = next((row for row in run.leaderboard if row["candidate"] == run.chosen_candidate), None)
    return row["description"] if row else (run.chosen_candidate or "")


def compare_versions(*, session: Session, settings: Settings, version_ids: list[int],
                     scorer: Scorer | None = None) -> VersionComparison:
    """Versions side by side: metrics on each one's test data (every model scored on it where it fits),
    parameters, data and the differences between their model cards."""
    if len(set(version_ids)) < 2:
        raise InvalidInput("Choose at least two different versions to compare.")
    scorer = scorer or _default_scorer(settings, session)
    versions = sorted((_public(session, _get(session, vid)) for vid in version_ids),
                      key=lambda v: (v.model_name, v.number))  # oldest first: read from left to right
    found = [runs.get_run(session=session, run_id=v.run_id) for v in versions]
    labels = [v.label if len({v.model_name for v in versions}) > 1 else f"v{v.number}" for v in versions]

    metrics, notes = [], []
    for owner_label, test_run in zip(labels, found, strict=True):
        values: dict[str, dict[str, Any]] = {}
        for label, run in zip(labels, found, strict=True):
            if run.id == test_run.id:
                values[label] = {name: m.get("value") for name, m in (run.evaluation or {})["metrics"].items()}
                continue
            scored = scorer(run, test_run)
            if scored["comparable"]:
                values[label] = scored["metrics"]
                if scored.get("note"):
                    notes.append(f"{label} on {owner_label}'s test data: {scored['note']}.")
                if not _same_split(run, test_run):
                    notes.append(f"{label} held out other rows than {owner_label} (other data or seed): it may have "
                                 f"been trained on some of {owner_label}'s test rows, which flatters it there.")
            else:
                values[label] = {}
                notes.append(f"{label} cannot be scored on {owner_label}'s test data: {scored['why']}.")
        rows_count = (test_run.evaluation or {}).get("n_rows")
        where = f"{owner_label}'s test data ({rows_count:,} rows)" if rows_count else f"{owner_label}'s test data"
        for name in evaluation.METRICS[test_run.task]:
            direction = "higher is better" if evaluation.GREATER_IS_BETTER[name] else "lower is better"
            metrics.append({"Test data": where, "Metric": f"{metric_name(name)} ({direction})",
                            **{label: values[label].get(name) for label in labels}})

    parameters = _rows(labels, [
        ("Target", [r.target for r in found]),
        ("Task", [r.task for r in found]),
        ("Metric the search optimised", [metric_name(r.primary_metric) for r in found]),
        ("Chosen model", [_chosen(r) for r in found]),
        ("Seed", [r.seed for r in found]),
        ("Time budget (s)", [r.config.get("budget_seconds") for r in found]),
        ("Validation", [r.config.get("cv") for r in found]),
        ("Candidates evaluated", [len(r.finished_candidates) for r in found]),
        ("Input columns", [", ".join(sorted(r.feature_types)) for r in found]),
        ("Decision threshold", [r.decision_threshold for r in found]),
        ("Coding threshold", [r.coding_threshold for r in found]),
        ("Code version", [r.code_version for r in found]),
        ("scikit-learn", [(r.environment.get("packages") or {}).get("scikit-learn") for r in found]),
        ("Model file SHA-256", [(r.model_sha256 or "")[:16] for r in found]),
    ])
    data_versions = [datasets.get_version(session=session, version_id=r.dataset_version_id) for r in found]
    data = _rows(labels, [
        ("Dataset", [f"{d.dataset_name} v{d.number}" for d in data_versions]),
        ("SHA-256", [d.sha256[:16] for d in data_versions]),
        ("Rows", [f"{d.rows:,}" for d in data_versions]),
        ("Columns", [d.columns for d in data_versions]),
        ("Sensitive columns", [", ".join(d.sensitive_columns) for d in data_versions]),
        ("Source file", [d.source_filename for d in data_versions]),
        ("Test rows", [f"{(r.evaluation or {}).get('n_rows') or 0:,}" for r in found]),
    ])
    cards = [model_card.list_revisions(session=session, run_id=r.id) for r in found]
    latest = [revisions[0] if revisions else None for revisions in cards]
    card_fields = [("Card revision", [f"{c.number} by {c.created_by_name}" if c else "no card yet" for c in latest])]
    for item in model_card.FIELDS:
        card_fields.append((item.label, [(c.content.get(item.key) or "") if c else "" for c in latest]))
    card_fields.append(("Risks", ["; ".join(f"{r['name']}: {r['mitigation']}" for r in c.content.get("risks") or [])
                                  if c else "" for c in latest]))
    card = [row for row in _rows(labels, card_fields) if row["Differs"] or row[""] == "Card revision"]
    return VersionComparison(labels=labels, metrics=metrics, notes=notes, parameters=parameters, data=data,
                             card=card)


# ── lineage ─────────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class LineageStep:
    """One link of a version's chain: what it is, the facts that identify it, and the page that shows it."""

    kind: str
    title: str
    facts: list[str]
    page: str | None = None  # a file in pages/, e.g. "run.py"
    query: dict[str, str] = field(default_factory=dict)
    present: bool = True


def lineage(*, session: Session, version_id: int) -> list[LineageStep]:
    """Dataset version → training run → model artifact → card revision → assessment and review → scoring."""
    version = _public(session, _get(session, version_id))
    run = runs.get_run(session=session, run_id=version.run_id)
    data = datasets.get_version(session=session, version_id=run.dataset_version_id)
    env = run.environment or {}
    packages = env.get("packages") or {}
    steps = [
        LineageStep("data", f"Dataset {data.dataset_name} version {data.number}", [
            f"SHA-256 {data.sha256}",
            f"{data.rows:,} rows, {data.columns} columns, from {data.source_filename}",
            f"Saved by {data.created_by_name} on {data.created_at:%Y-%m-%d %H:%M} UTC"], page="datasets.py"),
        LineageStep("run", f"Training run {run.id}: {run.target} ({run.task})", [
            f"Chosen model: {_chosen(run)}; seed {run.seed}; time budget {run.config.get('budget_seconds')} s; "
            f"validation {run.config.get('cv')}",
            f"Input columns: {', '.join(run.feature_types)}"
            + (f" (left out: {', '.join(run.config['excluded'])})" if run.config.get("excluded") else ""),
            f"Environment: Python {env.get('python')}, scikit-learn {packages.get('scikit-learn')}, "
            f"pandas {packages.get('pandas')}",
            f"Code version: {run.code_version or 'not recorded'}",
            f"Trained by {run.created_by_name} on {run.created_at:%Y-%m-%d %H:%M} UTC"],
            page="run.py", query={"run": str(run.id)}),
        LineageStep("model", "Model artifact", [
            f"Model file SHA-256 {run.model_sha256}",
            f"Test predictions hash {run.prediction_hash}",
            f"Test set SHA-256 {run.test_set_sha256}"], page="run.py", query={"run": str(run.id)}),
    ]
    revisions = model_card.list_revisions(session=session, run_id=run.id)
    if revisions:
        card = revisions[0]
        done = model_card.completeness(session=session, run_id=run.id)
        steps.append(LineageStep("card", f"Model card revision {card.number}", [
            f"Saved by {card.created_by_name} on {card.created_at:%Y-%m-%d %H:%M} UTC",
            f"{done.percent}% complete" + (f"; missing: {', '.join(done.missing)}" if done.missing else "")],
            page="model_card.py", query={"run": str(run.id)}))
    else:
        steps.append(LineageStep("card", "Model card", ["Not written yet."], page="model_card.py",
                                 query={"run": str(run.id)}, present=False))
    assessment = session.exec(select(Assessment).where(Assessment.version_id == version.id)).first()
    decision = _latest_decision(session, version.id)
    if assessment is None:
        steps.append(LineageStep("review", "Self-assessment and peer review", ["Not started yet."],
                                 page="checklist.py", present=False))
    else:
        facts = [f"Checklist {assessment.template_id} {assessment.template_version}; status "
                 f"{assessment.status.replace('_', ' ')}; {_count(assessment.rounds, 'review round', 'review rounds')}"]
        if decision is not None:
            when = f" on {decision['decided_at']:%Y-%m-%d}" if decision.get("decided_at") else ""
            facts.append(f"Decision: {decision['decision'].replace('_', ' ')} by {decision.get('decided_by_name')}"
                         f"{when} (round {decision.get('round')})")
            if decision.get("conditions"):
                facts.append(f"Conditions: {decision['conditions']}")
        steps.append(LineageStep("review", "Self-assessment and peer review", facts, page="review.py"))
    batches = session.exec(select(PredictionBatch).where(PredictionBatch.version_id == version.id)
                           .order_by(col(PredictionBatch.id).desc())).all()
    if batches:
        rows = sum(batch.rows for batch in batches)
        facts = [f"{_count(len(batches), 'batch', 'batches')}, {rows:,} rows in all"]
        facts += [f"Batch {b.id}: {b.rows:,} rows by {b.channel}, {b.created_at:%Y-%m-%d %H:%M} UTC, input SHA-256 "
                  f"{b.input_sha256[:16]}" for b in batches[:5]]
        steps.append(LineageStep("scoring", "Scoring batches", facts, page="predict.py"))
    else:
        steps.append(LineageStep("scoring", "Scoring batches", ["None yet."], page="predict.py", present=False))
    return steps


# ── maturity ────────────────────────────────────────────────────────────────────────────────────────

PRINCIPLES = {
    "versioned": "Data, code and model versioned",
    "pipeline": "Automated pipeline and continuous training",
    "reproducible": "Reproducibility verified",
    "monitoring": "Monitoring configured",
    "deployment": "Deployment through the registry",
    "governance": "Governance review",
}


@dataclass(frozen=True)
class Principle:
    key: str
    title: str
    met: bool
    evidence: str


@dataclass(frozen=True)
class Maturity:
    """Which MLOps principles a model meets, with the evidence, and the level that gives (0 or 1)."""

    model_id: int
    model_name: str
    judged: ModelVersionPublic | None  # the production version, else the newest
    principles: list[Principle]

    @property
    def level(self) -> int:
        return 1 if self.principles and all(p.met for p in self.principles) else 0

    @property
    def met(self) -> int:
        return sum(p.met for p in self.principles)

    @property
    def summary(self) -> str:
        missing = [p.title.lower() for p in self.principles if not p.met]
        if not missing:
            return f"Level 1: all {len(self.principles)} principles are met."
        return (f"Level {self.level}: {self.met} of {len(self.principles)} principles met. Level 1 also needs "
                f"{', '.join(missing)}.")


def _pipeline_principle(session: Session, model_id: int) -> Principle:
    config = session.exec(select(PipelineConfig).where(PipelineConfig.model_id == model_id)).first()
    triggers = []
    if config is not None and config.schedule_days:
        triggers.append(f"every {_count(config.schedule_days, 'day', 'days')}")
    if config is not None and config.on_new_data:
        triggers.append("when new data arrives")
    if not triggers:
        return Principle("pipeline", PRINCIPLES["pipeline"], False,
                         "Not met: no automated retraining pipeline is configured; versions are trained by hand.")
    last = session.exec(select(PipelineRun).where(PipelineRun.model_id == model_id)
                        .order_by(col(PipelineRun.id).desc())).first()
    evidence = f"The pipeline retrains the model {' and '.join(triggers)}"
    evidence += (f"; its last run ({last.trigger}, {last.created_at:%Y-%m-%d}) is {last.status}." if last
                 else "; it has not run yet.")
    return Principle("pipeline", PRINCIPLES["pipeline"], True, evidence)


def _monitoring_principle(session: Session, model_id: int) -> Principle:
    rules = session.exec(select(AlertRule).where(AlertRule.model_id == model_id, col(AlertRule.active).is_(True))
                         ).all()
    if not rules:
        return Principle("monitoring", PRINCIPLES["monitoring"], False, "Not met: no monitoring configured.")
    reports = session.exec(select(MonitoringReport).join(ModelVersion)
                           .where(ModelVersion.model_id == model_id)).all()
    shown = ", ".join(f"{rule.metric} {rule.direction} {rule.threshold:g}" for rule in rules[:3])
    return Principle("monitoring", PRINCIPLES["monitoring"], True,
                     f"{_count(len(rules), 'active alert rule', 'active alert rules')} ({shown}); "
                     f"{_count(len(reports), 'monitoring report', 'monitoring reports')} so far.")


def maturity(*, session: Session, model_id: int) -> Maturity:
    """The maturity of one model, judged on its production version (or its newest when none is in production)."""
    summary = _summary(session, _get_model(session, model_id))
    judged = summary.production or (summary.versions[0] if summary.versions else None)
    if judged is None:
        return Maturity(model_id=summary.id, model_name=summary.name, judged=None,
                        principles=[Principle(k, t, False, "No version registered.") for k, t in PRINCIPLES.items()])
    run = runs.get_run(session=session, run_id=judged.run_id)
    which = f"v{judged.number}"
    principles = []

    hashes = [run.dataset_sha256, run.code_version, run.model_sha256]
    evidence = (f"{which}: data {run.dataset_name} v{run.dataset_number} (SHA-256 {run.dataset_sha256[:12]}…), "
                f"code {run.code_version or 'not recorded'}, model SHA-256 {(run.model_sha256 or '')[:12]}…, "
                f"registered as immutable version {judged.number}.")
    if "@" not in (run.code_version or ""):
        evidence += " No git commit was recorded for the code."
    principles.append(Principle("versioned", PRINCIPLES["versioned"], all(hashes), evidence))
    principles.append(_pipeline_principle(session, summary.id))
    certificate = runs.latest_certificate(session=session, run_id=run.id)
    passed = certificate is not None and certificate.status == "passed"
    principles.append(Principle("reproducible", PRINCIPLES["reproducible"], passed,
                                f"{which}: certificate {certificate.id} passed, identical predictions on re-running."
                                if passed else f"Not met: run {run.id} of {which} has no passed reproducibility "
                                "certificate."))
    principles.append(_monitoring_principle(session, summary.id))
    if summary.production is not None:
        batches = session.exec(select(PredictionBatch).where(PredictionBatch.version_id == judged.id)).all()
        since = session.exec(select(StageTransition).where(StageTransition.version_id == judged.id,
                                                           StageTransition.to_status == VersionStatus.production)
                             .order_by(col(StageTransition.id).desc())).first()
        principles.append(Principle("deployment", PRINCIPLES["deployment"], True,
                                    f"{which} is in production since {since.created_at:%Y-%m-%d}; scoring uses it "
                                    f"({_count(len(batches), 'scoring batch', 'scoring batches')} so far)."))
    else:
        principles.append(Principle("deployment", PRINCIPLES["deployment"], False,
                                    "Not met: no version is in production."))
    decision = _latest_decision(session, judged.id)
    if decision is not None and decision["decision"] in APPROVED:
        conditions = f" with conditions: {decision['conditions'].rstrip('.')}" if decision.get("conditions") else ""
        principles.append(Principle("governance", PRINCIPLES["governance"], True,
                                    f"{which} approved by {decision.get('decided_by_name')}{conditions}."))
    else:
        evidence = (f"Not met: {which} has no review decision." if decision is None else
                    f"Not met: the review of {which} ended in {decision['decision'].replace('_', ' ')}.")
        waived = _overrides(session, judged.id).get("review")
        if waived is not None:
            evidence += f" The review gate was overridden by {waived.actor_name}: {waived.reason}"
        principles.append(Principle("governance", PRINCIPLES["governance"], False, evidence))
    return Maturity(model_id=summary.id, model_name=summary.name, judged=judged, principles=principles)


def project_maturity(*, session: Session, project_id: int) -> list[Maturity]:
    """The maturity of every model in a project: a self-assessment table that fills itself."""
    models = session.exec(select(RegisteredModel).where(RegisteredModel.project_id == project_id)
                          .order_by(RegisteredModel.name)).all()
    return [maturity(session=session, model_id=model.id) for model in models]
