"""The portfolio report: every model of a project, or of every project the user can see, on a few pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from reportlab.platypus import Flowable, Paragraph
from sqlmodel import select

from core import alerts, monitoring, projects, registry, review
from core.config import Settings
from core.models import Assessment, ModelVersionPublic, ProjectPublic
from core.reports import _template as t
from core.reports._common import DECIDED

SOON = timedelta(days=60)  # a reassessment due within this is listed as coming up
HEALTH_LIGHTS = {"alert": ("red", "alert"), "warning": ("amber", "warning"), "ok": ("green", "ok"),
                 "no data": ("grey", "no batches yet")}
SEVERITY_ORDER = ("critical", "warning", "info")


@dataclass
class ModelLine:
    """What the portfolio says about one registered model."""

    project: str
    name: str
    model_id: int
    newest: ModelVersionPublic | None
    production: ModelVersionPublic | None
    maturity: registry.Maturity
    review: dict[str, Any] | None  # the newest decided review of any version, with "version"
    reassess_by: date | None
    reassess_version: int | None
    open_alerts: dict[str, int]
    health: monitoring.ModelHealth | None
    attention: list[str] = field(default_factory=list)

    @property
    def alert_count(self) -> int:
        return sum(self.open_alerts.values())


def _reassessment(session, summary: registry.ModelSummary, judged: ModelVersionPublic | None
                  ) -> tuple[date | None, int | None]:
    """When the judged version's approved assessment must be repeated."""
    if judged is None:
        return None, None
    found = session.exec(select(Assessment).where(Assessment.version_id == judged.id)).first()
    return (found.reassess_by, judged.number) if found is not None and found.reassess_by else (None, None)


def _last_review(session, summary: registry.ModelSummary) -> dict[str, Any] | None:
    decided = []
    for version in summary.versions:
        decision = review.latest_decision(session=session, version_id=version.id)
        if decision is not None:
            decided.append({**decision, "version": version.number})
    return max(decided, key=lambda d: d["decided_at"] or datetime.min, default=None)


def _attention(line: ModelLine, today: date) -> list[str]:
    found = []
    if line.alert_count:
        parts = [f"{line.open_alerts[s]} {s}" for s in SEVERITY_ORDER if line.open_alerts.get(s)]
        found.append(f"{t.plural(line.alert_count, 'open alert')} ({', '.join(parts)})")
    if line.reassess_by is not None:
        if line.reassess_by < today:
            found.append(f"reassessment of v{line.reassess_version} overdue since {line.reassess_by:%Y-%m-%d}")
        elif line.reassess_by - today <= SOON:
            found.append(f"reassessment of v{line.reassess_version} due by {line.reassess_by:%Y-%m-%d}")
    if line.review and line.review["decision"] not in registry.APPROVED:
        found.append(f"last review of v{line.review['version']}: {DECIDED.get(line.review['decision'])}")
    if line.health is not None and line.health.health == "warning":
        found.append(f"monitoring warning: {t.shorten(line.health.reasons[0], 160)}" if line.health.reasons
                     else "monitoring warning")
    if line.production is None:
        found.append("no version in production")
    return found


def collect(*, session, project_ids: list[int], today: date | None = None) -> list[ModelLine]:
    today = today or date.today()
    lines = []
    for project_id in project_ids:
        project = projects.get_project(session=session, project_id=project_id)
        counts = alerts.open_alert_counts(session=session, project_id=project_id)
        for summary in registry.list_models(session=session, project_id=project_id):
            maturity = registry.maturity(session=session, model_id=summary.id)
            reassess_by, reassess_version = _reassessment(session, summary, maturity.judged)
            line = ModelLine(project=project.name, name=summary.name, model_id=summary.id,
                             newest=summary.versions[0] if summary.versions else None, production=summary.production,
                             maturity=maturity, review=_last_review(session, summary), reassess_by=reassess_by,
                             reassess_version=reassess_version, open_alerts=counts.get(summary.id, {}),
                             health=monitoring.model_health(session=session, model_id=summary.id))
            line.attention = _attention(line, today)
            lines.append(line)
    return lines


def _review_text(line: ModelLine) -> str:
    if line.review is None:
        return "no decision yet"
    return (f"v{line.review['version']} {DECIDED.get(line.review['decision'], line.review['decision'])} by "
            f"{line.review['decided_by_name']}, {t.when(line.review['decided_at'], time=False)}")


def _reassess_text(line: ModelLine, today: date) -> str:
    if line.reassess_by is None:
        return "–"
    text = f"{line.reassess_by:%Y-%m-%d} (v{line.reassess_version})"
    if line.reassess_by < today:
        return f"{text}: OVERDUE"
    return text


def _models_table(lines: list[ModelLine], today: date) -> Flowable:
    body, fills = [], {}
    for index, line in enumerate(lines):
        light, word = HEALTH_LIGHTS.get(line.health.health if line.health else "no data", ("grey", "–"))
        fills[(5, index)] = t.LIGHT_FILLS[light]
        newest = line.newest
        body.append([
            line.name,
            f"v{newest.number}: {registry.status_label(newest)}" if newest else "no version",
            f"v{line.production.number}" if line.production else "none",
            f"Level {line.maturity.level} ({line.maturity.met} of {len(line.maturity.principles)} principles)",
            _review_text(line),
            t.light_cell(light, word + (f", {t.plural(line.alert_count, 'open alert')}" if line.alert_count else "")),
            _reassess_text(line, today),
        ])
    return t.table(["Model", "Newest version", "Live version", "Maturity", "Last review", "Monitoring",
                    "Reassess by"], body, (1.0, 1.1, 0.85, 1.05, 1.5, 1.15, 1.0), fills=fills, zebra=False)


def summary(lines: list[ModelLine], project_list: list[ProjectPublic], meta: t.Meta, today: date) -> list[Flowable]:
    s = t.styles()
    in_production = sum(line.production is not None for line in lines)
    level_one = sum(line.maturity.level == 1 for line in lines)
    overdue = [line for line in lines if line.reassess_by is not None and line.reassess_by < today]
    soon = [line for line in lines if line.reassess_by is not None and today <= line.reassess_by <= today + SOON]
    open_alerts = sum(line.alert_count for line in lines)
    scope = (f"the project {project_list[0].name}" if len(project_list) == 1
             else f"{t.plural(len(project_list), 'project')} you can see")
    total = len(lines)
    sentences = [
        f"This report covers {t.plural(total, 'registered model')} in {scope}.",
        f"In production: {in_production} of {total}. At MLOps level 1 (every principle met): {level_one} of {total}.",
        f"Open monitoring alerts: {open_alerts or 'none'}.",
        f"Reassessments overdue: {len(overdue) or 'none'}; due within the next {SOON.days} days: "
        f"{len(soon) or 'none'}.",
    ]
    if not lines:
        sentences = [f"No model is registered in {scope} yet."]
    flow: list[Flowable] = [*t.title_block(meta, f"Models in {scope}")]
    flow += [t.heading("In brief", 1), t.box(t.bullets(sentences, s.bullet))]
    needing = [line for line in lines if line.attention]
    flow.append(t.heading("Needs attention", 2))
    if needing:
        shown = needing[:10]
        flow += t.bullets([f"{line.name}" + (f" ({line.project})" if len(project_list) > 1 else "") + ": "
                           + "; ".join(line.attention) for line in shown])
        if len(needing) > len(shown):
            flow.append(t.para(f"… and {len(needing) - len(shown)} more models, listed on the following pages.",
                               s.small))
    else:
        flow.append(t.para("Nothing: every model is in production, monitored without alerts, and reviewed in time."))
    flow.append(t.heading("What this report describes", 2))
    flow += t.identification(meta, extra=[("Projects", ", ".join(p.name for p in project_list) or "–"),
                                          ("Models", str(len(lines)))])
    flow.append(Paragraph("Maturity: level 1 means data, code and model are versioned, an automated pipeline "
                          "retrains the model, reproducibility is verified, monitoring is configured, deployment "
                          "goes through the registry and the model passed governance review; otherwise level 0.",
                          s.small))
    return flow


def details(lines: list[ModelLine], project_list: list[ProjectPublic], today: date) -> list[Flowable]:
    s = t.styles()
    flow: list[Flowable] = []
    for number, project in enumerate(project_list, start=1):
        mine = [line for line in lines if line.project == project.name]
        about = f"{project.description} · owner: {project.owner_name}" if project.description else \
            f"Owner: {project.owner_name}"
        flow += t.section(f"{number}. {project.name}", t.para(about, s.small))
        if not mine:
            flow.append(t.para("No model registered yet.", s.body))
            continue
        flow.append(_models_table(mine, today))
        for line in mine:
            flow.append(t.heading(f"{line.name}: maturity level {line.maturity.level}", 2))
            if line.attention:
                flow.append(t.labelled("Needs attention", "; ".join(line.attention)))
            flow.append(t.table(["Principle", "Met", "Evidence"],
                                [[p.title, "yes" if p.met else "no", p.evidence] for p in line.maturity.principles],
                                (1.6, 0.4, 4.2)))
            if line.health is not None:
                flow.append(t.para(f"Monitoring: {line.health.health}. "
                                   + " ".join(line.health.reasons[:3]), s.small))
    return flow


def build(*, session, settings: Settings, project_id: int | None, meta_for) -> tuple[t.Meta, bytes, int]:
    today = date.today()
    if project_id is not None:
        project_list = [projects.get_project(session=session, project_id=project_id)]
    else:
        project_list = projects.list_projects(session=session)
    lines = collect(session=session, project_ids=[p.id for p in project_list], today=today)
    subject = "All models" if project_id is not None else "All projects you can see"
    meta = meta_for(project_list[0].name if project_id is not None else "", subject, None)
    return meta, *t.render(meta, summary(lines, project_list, meta, today), details(lines, project_list, today))
