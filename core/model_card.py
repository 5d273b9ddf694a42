"""Model cards (after Mitchell et al., 2019): filled from the store, completed by the builder, exported.

A card belongs to one trained run. What the store knows (owner, versions and hashes, algorithm and
parameters, data, metrics with intervals, subgroups, explanation, reproducibility) is assembled fresh every
time and marked as automatic; only the free text the builder writes is stored, and every save of it is a
new ``ModelCardRevision`` with who, when and what changed. Saving on top of a revision someone else has
replaced is refused, so concurrent edits never overwrite each other.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from core import audit
from core.auth import require_role
from core.config import Settings
from core.errors import Conflict, InvalidInput, NotFound
from core.models import (
    Assessment,
    AssessmentStatus,
    DatasetVersion,
    ModelCardRevision,
    ModelCardRevisionPublic,
    ModelVersion,
    Project,
    Role,
    RunStatus,
    TrainingRun,
    User,
    UserPublic,
)
from core.training import runs
from core.training.candidates import candidates_for
from core.training.evaluation import GREATER_IS_BETTER, metric_label

MAX_TEXT = 5000
MAX_RISKS = 30
MCT_SCHEMA_VERSION = "0.0.2"


@dataclass(frozen=True)
class CardField:
    key: str
    section: str
    label: str
    help: str
    required: bool = True


SECTIONS = {
    "model_details": "Model details",
    "intended_use": "Intended use",
    "factors": "Factors",
    "metrics": "Metrics",
    "evaluation_data": "Evaluation data",
    "training_data": "Training data",
    "quantitative_analyses": "Quantitative analyses",
    "ethical_considerations": "Ethical considerations",
    "caveats": "Caveats and recommendations",
}

FIELDS: tuple[CardField, ...] = (
    CardField("overview", "model_details", "Overview", "One or two sentences: what the model does, for whom."),
    CardField("owner_contact", "model_details", "Owner and contact",
              "The team accountable for the model and how to reach it."),
    CardField("documentation", "model_details", "Further documentation",
              "Links or references to method notes, if any.", required=False),
    CardField("license", "model_details", "Licence or terms of use", "For example: internal use only.",
              required=False),
    CardField("retention_until", "model_details", "Keep data and model until (YYYY-MM-DD)",
              "When data, model and reports are to be deleted.", required=False),
    CardField("primary_uses", "intended_use", "Primary uses", "What the predictions are used for."),
    CardField("primary_users", "intended_use", "Primary users", "Who uses the predictions."),
    CardField("out_of_scope", "intended_use", "Out-of-scope uses", "Uses the model must not be put to."),
    CardField("factors", "factors", "Relevant factors",
              "Groups, regions, periods or conditions where performance may differ."),
    CardField("metric_rationale", "metrics", "Why these metrics",
              "Why the primary metric and any decision threshold fit the intended use."),
    CardField("evaluation_notes", "evaluation_data", "Notes on the evaluation data",
              "Anything a reader should know about the held-out test data.", required=False),
    CardField("data_notes", "training_data", "How the data was collected",
              "Source, population and period the data covers."),
    CardField("labelling", "training_data", "How the target values were produced",
              "For example: expert coding, double coding, administrative records."),
    CardField("analysis_notes", "quantitative_analyses", "Reading of the results",
              "What the overall and subgroup figures mean for the intended use.", required=False),
    CardField("limitations", "caveats", "Known limitations", "Where the model is weak or should not be trusted."),
    CardField("tradeoffs", "caveats", "Trade-offs", "Choices made, e.g. accuracy against manual workload.",
              required=False),
    CardField("recommendations", "caveats", "Recommendations", "How to use the model well."),
)
FIELD_KEYS = {f.key for f in FIELDS}
RISKS_KEY = "risks"  # a list of {"name", "mitigation"}; at least one complete risk is required


@dataclass
class Completeness:
    filled: int
    required: int
    missing: list[str] = field(default_factory=list)

    @property
    def percent(self) -> int:
        return round(100 * self.filled / self.required) if self.required else 100

    @property
    def complete(self) -> bool:
        return not self.missing


@dataclass
class CardDocument:
    """Everything on a card: the automatic parts (``auto``) and the builder's free text (``content``)."""

    run_id: int
    title: str
    revision: ModelCardRevisionPublic | None
    content: dict[str, Any]
    auto: dict[str, Any]
    completeness: Completeness


# ── free text and revisions ────────────────────────────────────────────────────────────────────────


def _clean_content(content: dict[str, Any]) -> dict[str, Any]:
    unknown = set(content) - FIELD_KEYS - {RISKS_KEY}
    if unknown:
        raise InvalidInput(f"The card has no field named {', '.join(sorted(unknown))}.")
    clean: dict[str, Any] = {}
    for f in FIELDS:
        text = str(content.get(f.key) or "").strip()
        if len(text) > MAX_TEXT:
            raise InvalidInput(f"“{f.label}” is longer than {MAX_TEXT} characters; shorten it.")
        clean[f.key] = text
    risks = []
    for risk in content.get(RISKS_KEY) or []:
        name = str(risk.get("name") or "").strip()
        mitigation = str(risk.get("mitigation") or "").strip()
        if not name and not mitigation:
            continue
        if len(name) > MAX_TEXT or len(mitigation) > MAX_TEXT:
            raise InvalidInput(f"A risk or its mitigation is longer than {MAX_TEXT} characters; shorten it.")
        risks.append({"name": name, "mitigation": mitigation})
    if len(risks) > MAX_RISKS:
        raise InvalidInput(f"Record at most {MAX_RISKS} risks; group related ones.")
    clean[RISKS_KEY] = risks
    return clean


def completeness(*, session: Session, run_id: int) -> Completeness:
    """How much of the card's required free text is written, and what is still missing."""
    return _completeness(_latest(session, run_id))


def _completeness(revision: ModelCardRevision | None) -> Completeness:
    content = revision.content if revision else {}
    required = [f for f in FIELDS if f.required]
    missing = [f.label for f in required if not str(content.get(f.key) or "").strip()]
    risks = content.get(RISKS_KEY) or []
    if not any(r.get("name") and r.get("mitigation") for r in risks):
        missing.append("At least one risk with its mitigation")
    total = len(required) + 1
    return Completeness(filled=total - len(missing), required=total, missing=missing)


def _latest(session: Session, run_id: int) -> ModelCardRevision | None:
    return session.exec(select(ModelCardRevision).where(ModelCardRevision.run_id == run_id)
                        .order_by(ModelCardRevision.number.desc())).first()


def _user_name(session: Session, user_id: int | None) -> str:
    user = session.get(User, user_id) if user_id else None
    return (user.display_name or user.username) if user else "unknown"


def _revision_public(session: Session, revision: ModelCardRevision) -> ModelCardRevisionPublic:
    return ModelCardRevisionPublic(**revision.model_dump(), created_by_name=_user_name(session, revision.created_by_id))


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, str]]:
    labels = {f.key: f.label for f in FIELDS} | {RISKS_KEY: "Risks"}
    changes = []
    for key, label in labels.items():
        old, new = before.get(key) or ("" if key != RISKS_KEY else []), after.get(key)
        if old != new:
            render = (lambda v: "; ".join(f"{r['name']}: {r['mitigation']}" for r in v)) if key == RISKS_KEY else str
            changes.append({"field": label, "before": render(old)[:300], "after": render(new)[:300]})
    return changes


def _run(session: Session, run_id: int) -> TrainingRun:
    run = session.get(TrainingRun, run_id)
    if run is None:
        raise NotFound(f"Run {run_id} does not exist.")
    if run.status != RunStatus.succeeded:
        raise InvalidInput(f"Run {run_id} did not finish successfully; only a trained model gets a model card.")
    return run


def _under_review(session: Session, run_id: int) -> bool:
    version = session.exec(select(ModelVersion).where(ModelVersion.run_id == run_id)).first()
    if version is None:
        return False
    assessment = session.exec(select(Assessment).where(Assessment.version_id == version.id)).first()
    return assessment is not None and assessment.status == AssessmentStatus.in_review


def save_card(*, session: Session, actor: UserPublic, run_id: int, content: dict[str, Any],
              based_on: int) -> ModelCardRevisionPublic:
    """Store the card's free text as a new revision on top of revision ``based_on`` (0: the first)."""
    require_role(actor, Role.builder, Role.admin)
    _run(session, run_id)
    if _under_review(session, run_id):
        raise Conflict("The card is under peer review and cannot change now. Wait for the reviewer's decision.")
    clean = _clean_content(content)
    latest = _latest(session, run_id)
    current = latest.number if latest else 0
    if based_on != current:
        raise Conflict(f"The card was changed by {_user_name(session, latest.created_by_id)} at "
                       f"{latest.created_at:%Y-%m-%d %H:%M} UTC since you opened it. Reload to see their "
                       f"changes; yours were not saved.")
    changes = _changes(latest.content if latest else {}, clean)
    if not changes:
        raise InvalidInput("Nothing changed since the last save.")
    revision = ModelCardRevision(run_id=run_id, number=current + 1, content=clean, changes=changes,
                                 created_by_id=actor.id)
    session.add(revision)
    session.flush()
    audit.record_event(session, actor=actor, action="model_card.save", entity_type="training_run", entity_id=run_id,
                       details={"revision": revision.number, "fields": [c["field"] for c in changes]})
    session.commit()
    return _revision_public(session, revision)


def list_revisions(*, session: Session, run_id: int) -> list[ModelCardRevisionPublic]:
    rows = session.exec(select(ModelCardRevision).where(ModelCardRevision.run_id == run_id)
                        .order_by(ModelCardRevision.number.desc()))
    return [_revision_public(session, row) for row in rows]


def editor_ids(*, session: Session, run_id: int) -> set[int]:
    """Everyone who ever saved the card: authors for the four-eyes rule."""
    return set(session.exec(select(ModelCardRevision.created_by_id).where(ModelCardRevision.run_id == run_id)))


# ── the automatic parts ────────────────────────────────────────────────────────────────────────────


def _parameters(run: TrainingRun) -> dict[str, str]:
    """The chosen estimator's settings as the candidate list defines them (no model load needed)."""
    candidate = next((c for c in candidates_for(run.task) if c.name == run.chosen_candidate), None)
    if candidate is None:
        return {}
    params = candidate.make(run.seed).get_params(deep=False)
    return {key: str(value) for key, value in sorted(params.items()) if value is not None}


def _metrics(run: TrainingRun) -> list[dict[str, Any]]:
    evaluation = run.evaluation or {}
    baseline = run.baseline or {}
    rows = []
    for name, values in (evaluation.get("metrics") or {}).items():
        rows.append({"metric": metric_label(name), "key": name, "value": values.get("value"),
                     "low": values.get("low"), "high": values.get("high"), "baseline": baseline.get(name),
                     "primary": name == run.primary_metric,
                     "greater_is_better": GREATER_IS_BETTER.get(name, True)})
    return rows


def _profile_summary(version: DatasetVersion) -> dict[str, Any]:
    profile = version.profile or {}
    columns = profile.get("columns_profile") or {}
    missing = sorted(((name, c.get("missing_share") or 0.0) for name, c in columns.items() if c.get("missing_share")),
                     key=lambda item: -item[1])
    return {"rows": version.rows, "columns": version.columns, "duplicate_rows": profile.get("duplicate_rows"),
            "most_missing": [{"column": name, "missing_share": share} for name, share in missing[:5]],
            "warnings": [w.get("message", "") for w in (profile.get("warnings") or [])][:10]}


def auto_sections(*, session: Session, run_id: int) -> dict[str, Any]:
    """What the store knows about a run, grouped by card section."""
    run = _run(session, run_id)
    version = session.get(DatasetVersion, run.dataset_version_id)
    project = session.get(Project, run.project_id)
    public = runs.get_run(session=session, run_id=run_id)
    registered = session.exec(select(ModelVersion).where(ModelVersion.run_id == run_id)).first()
    leader = next((row for row in run.leaderboard if row.get("candidate") == run.chosen_candidate), {})
    try:
        explanation = runs.get_explanation(session=session, run_id=run_id)
    except NotFound:
        explanation = None
    certificate = runs.latest_certificate(session=session, run_id=run_id)
    evaluation = run.evaluation or {}
    features = [name for name in run.feature_types if name not in run.config.get("excluded", [])]
    return {
        "model_details": {
            "name": public.label,
            "registered_as": (f"{registered.number}" if registered else None),
            "project": project.name,
            "project_owner": _user_name(session, project.owner_id),
            "trained_by": public.created_by_name,
            "trained_at": run.finished_at or run.created_at,
            "task": run.task,
            "algorithm": leader.get("description") or run.chosen_candidate,
            "parameters": _parameters(run),
            "seed": run.seed,
            "code_version": run.code_version or "unknown",
            "python": (run.environment or {}).get("python"),
            "model_sha256": run.model_sha256,
            "dataset_sha256": version.sha256,
            "test_set_sha256": run.test_set_sha256,
            "prediction_hash": run.prediction_hash,
        },
        "factors": {"sensitive_columns": list(version.sensitive_columns)},
        "metrics": {"primary_metric": metric_label(run.primary_metric), "rows": _metrics(run),
                    "decision_threshold": run.decision_threshold, "coding_threshold": run.coding_threshold},
        "evaluation_data": {"rows": evaluation.get("n_rows"), "share": run.config.get("test_share"),
                            "split": run.config.get("cv", "stratified"), "seed": run.seed},
        "training_data": {"dataset": f"{public.dataset_name} v{public.dataset_number}",
                          "source_file": version.source_filename, "source": (version.meta or {}).get("source", ""),
                          "legal_basis": (version.meta or {}).get("legal_basis", ""), "target": run.target,
                          "features": features, "profile": _profile_summary(version)},
        "quantitative_analyses": {"subgroups": list(evaluation.get("subgroups") or []),
                                  "leaderboard": [{"candidate": row.get("description") or row.get("candidate"),
                                                   "cv_mean": row.get("mean"), "cv_std": row.get("std")}
                                                  for row in run.leaderboard]},
        "explanation": None if explanation is None else {
            "method": explanation.method, "rows": explanation.rows_explained, "additive": explanation.additive,
            "top_features": list(explanation.result.get("overall") or {})[:5],
            "stability": explanation.stability.get("mean_overlap")},
        "reproducibility": None if certificate is None else {
            "status": certificate.status, "checked_at": certificate.finished_at or certificate.created_at},
    }


def card_document(*, session: Session, run_id: int) -> CardDocument:
    auto = auto_sections(session=session, run_id=run_id)
    latest = _latest(session, run_id)
    content = _clean_content(latest.content) if latest else _clean_content({})
    return CardDocument(run_id=run_id, title=auto["model_details"]["name"],
                        revision=_revision_public(session, latest) if latest else None, content=content, auto=auto,
                        completeness=_completeness(latest))


# ── exports ─────────────────────────────────────────────────────────────────────────────────────────


def _number(value: Any) -> str:
    return "–" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _date(value: Any) -> str:
    return value.strftime("%Y-%m-%d") if hasattr(value, "strftime") else str(value or "")


def to_mct(document: CardDocument) -> dict[str, Any]:
    """The card as Model Card Toolkit JSON (schema v0.0.2): metric values as strings, dates as YYYY-MM-DD."""
    auto, text = document.auto, document.content
    details = auto["model_details"]
    metrics = [
        {"type": row["key"], "value": _number(row["value"]), "slice": "overall",
         **({"confidence_interval": {"lower_bound": _number(row["low"]), "upper_bound": _number(row["high"])}}
            if row["low"] is not None else {})}
        for row in auto["metrics"]["rows"]
    ]
    metrics += [{"type": group["metric"], "value": _number(group["value"]),
                 "slice": f"{group['column']}={group['group']}"}
                for group in auto["quantitative_analyses"]["subgroups"] if not group.get("small")]

    def entries(key: str, kind: str = "description") -> list[dict[str, str]]:
        return [{kind: text[key]}] if text.get(key) else []

    owner = {"name": details["project_owner"]}
    if text.get("owner_contact"):
        owner["contact"] = text["owner_contact"]
    card: dict[str, Any] = {
        "schema_version": MCT_SCHEMA_VERSION,
        "model_details": {
            "name": details["name"],
            "overview": text.get("overview", ""),
            "documentation": text.get("documentation", ""),
            "owners": [owner],
            "version": {"name": str(details["registered_as"] or f"run {document.run_id}"),
                        "date": _date(details["trained_at"]),
                        "diff": f"card revision {document.revision.number if document.revision else 0}"},
            "path": f"sha256:{details['model_sha256']}",
        },
        "model_parameters": {
            "model_architecture": str(details["algorithm"]),
            "data": [{"name": auto["training_data"]["dataset"],
                      "sensitive": {"sensitive_data": auto["factors"]["sensitive_columns"]},
                      "description": text.get("data_notes", "")}],
            "input_format": ", ".join(auto["training_data"]["features"]),
            "output_format": f"{auto['model_details']['task']} prediction of {auto['training_data']['target']}",
        },
        "quantitative_analysis": {"performance_metrics": metrics},
        "considerations": {
            "users": entries("primary_users"),
            "use_cases": entries("primary_uses") + [{"description": f"Out of scope: {text['out_of_scope']}"}
                                                    for _ in [0] if text.get("out_of_scope")],
            "limitations": entries("limitations"),
            "tradeoffs": entries("tradeoffs"),
            "ethical_considerations": [{"name": r["name"], "mitigation_strategy": r["mitigation"]}
                                       for r in text.get(RISKS_KEY, [])],
        },
    }
    if text.get("license"):
        card["model_details"]["licenses"] = [{"custom_text": text["license"]}]
    return card


def validate_mct(card: dict[str, Any], schema_path: Path | None) -> list[str]:
    """Errors of ``card`` against the Model Card Toolkit schema; raises when no schema file is configured."""
    import jsonschema

    if schema_path is None or not schema_path.is_file():
        raise InvalidInput("No Model Card Toolkit schema file is configured (STEWARD_MODEL_CARD_SCHEMA), so the "
                           "JSON export cannot be validated.")
    schema = json.loads(schema_path.read_text())
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    return [f"{'/'.join(str(p) for p in error.absolute_path) or 'card'}: {error.message}"
            for error in sorted(validator.iter_errors(card), key=lambda e: list(e.absolute_path))]


def export_json(*, settings: Settings, document: CardDocument) -> tuple[bytes, list[str]]:
    """The JSON export and its validation errors (empty when it validates)."""
    card = to_mct(document)
    return json.dumps(card, indent=2, ensure_ascii=False).encode(), validate_mct(card, settings.model_card_schema)


def _md(value: Any) -> str:
    """Text in Markdown, HTML escaped so a rendered export shows it literally."""
    return html.escape("–" if value is None else str(value)).replace("\n", "  \n")


def _free_text(value: str) -> str:
    return _md(value) if value else "_(not written yet)_"


def to_markdown(document: CardDocument) -> str:
    auto, text = document.auto, document.content
    details = auto["model_details"]
    by_section: dict[str, list[CardField]] = {}
    for f in FIELDS:
        by_section.setdefault(f.section, []).append(f)
    lines = [f"# Model card: {_md(document.title)}", ""]
    revision = document.revision
    lines.append(f"Card revision {revision.number if revision else 0}"
                 + (f", saved by {_md(revision.created_by_name)} on {_date(revision.created_at)}" if revision else "")
                 + f". Completeness {document.completeness.percent}%. Items marked *(auto)* come from the store.")
    for section, title in SECTIONS.items():
        lines += ["", f"## {title}", ""]
        if section == "model_details":
            for label, key in (("Project", "project"), ("Owner", "project_owner"), ("Trained by", "trained_by"),
                               ("Algorithm", "algorithm"), ("Task", "task"), ("Seed", "seed"),
                               ("Code version", "code_version"), ("Model SHA-256", "model_sha256"),
                               ("Dataset SHA-256", "dataset_sha256"), ("Prediction hash", "prediction_hash")):
                lines.append(f"- {label} *(auto)*: {_md(details[key])}")
            if details["parameters"]:
                lines.append("- Parameters *(auto)*: " + ", ".join(f"{_md(k)}={_md(v)}"
                                                                    for k, v in details["parameters"].items()))
        elif section == "factors":
            sensitive = ", ".join(auto["factors"]["sensitive_columns"]) or "none"
            lines.append(f"- Sensitive columns *(auto)*: {_md(sensitive)}")
        elif section == "metrics":
            lines += ["| Metric *(auto)* | Value | 95% interval | Baseline |", "|---|---|---|---|"]
            for row in auto["metrics"]["rows"]:
                lines.append(f"| {row['metric']}{' (primary)' if row['primary'] else ''} | {_number(row['value'])} | "
                             f"{_number(row['low'])} – {_number(row['high'])} | {_number(row['baseline'])} |")
        elif section == "evaluation_data":
            evaluation = auto["evaluation_data"]
            lines.append(f"- Held-out test data *(auto)*: {_md(evaluation['rows'])} rows, split "
                         f"{_md(evaluation['split'])} with seed {_md(evaluation['seed'])}")
        elif section == "training_data":
            data = auto["training_data"]
            profile = data["profile"]
            lines.append(f"- Dataset *(auto)*: {_md(data['dataset'])} from {_md(data['source_file'])}, "
                         f"{profile['rows']} rows × {profile['columns']} columns, "
                         f"{_md(profile['duplicate_rows'])} duplicate rows")
            lines.append(f"- Source and legal basis *(auto)*: {_md(data['source'] or '–')}; "
                         f"{_md(data['legal_basis'] or '–')}")
            lines.append(f"- Target *(auto)*: {_md(data['target'])}; features: {_md(', '.join(data['features']))}")
        elif section == "quantitative_analyses":
            groups = auto["quantitative_analyses"]["subgroups"]
            if groups:
                lines += ["| Column | Group | Rows | Metric | Value | Gap to overall |", "|---|---|---|---|---|---|"]
                for g in groups:
                    value = "suppressed (too few rows)" if g.get("small") else _number(g["value"])
                    lines.append(f"| {_md(g['column'])} | {_md(g['group'])} | {g['count']} | "
                                 f"{metric_label(g['metric'])} | {value} | {_number(g.get('gap'))} |")
            explanation = auto["explanation"]
            if explanation:
                lines.append("")
                lines.append(f"- Explanation *(auto)*: {_md(explanation['method'])} on {explanation['rows']} rows; "
                             f"top features {_md(', '.join(map(str, explanation['top_features'])))}; "
                             f"additivity {'holds' if explanation['additive'] else 'FAILS'}")
            reproduced = auto["reproducibility"]
            checked = (f"{reproduced['status']} on {_date(reproduced['checked_at'])}" if reproduced
                       else "not checked yet")
            lines.append(f"- Reproducibility *(auto)*: {_md(checked)}")
        elif section == "ethical_considerations":
            risks = text.get(RISKS_KEY) or []
            lines += [f"- **{_md(r['name'])}**. Mitigation: {_md(r['mitigation'])}" for r in risks] or [_free_text("")]
        for f in by_section.get(section, []):
            lines += ["", f"**{f.label}**", "", _free_text(text.get(f.key, ""))]
    return "\n".join(lines) + "\n"
