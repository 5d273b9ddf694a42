"""PDF reports for managers: model card, review, monitoring and portfolio.

Each report opens with one page in plain language, then the details. Every page carries a header and a footer
(title, project, model and version, when and by whom it was generated, the Steward version, "page X of Y" and the
hashes of what it describes). Charts are the Altair specs the pages show, rendered to PNG. User text is escaped,
the font is embedded, group counts below ``settings.min_cell_size`` are suppressed, and no record of the data is
printed. Generating a report stores the PDF in the artifact store and records an audit event.

``render_*_report`` are the services; :func:`render_report` picks one by kind (for the page and the CLI).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from core import audit
from core.artifacts import ArtifactStore
from core.config import Settings
from core.errors import InvalidInput, NotFound
from core.models import UserPublic, utcnow
from core.reports import _common
from core.reports import _template as t
from core.reports._common import KINDS, Report, slug, steward_version
from core.reports._template import FontMissing

__all__ = ["KINDS", "FontMissing", "GeneratedReport", "Report", "load_pdf", "recent_reports",
           "render_model_card_report", "render_monitoring_report", "render_portfolio_report", "render_report",
           "render_review_report", "slug", "steward_version"]


def _meta_maker(session: Session, actor: UserPublic, kind: str, generated_at: datetime):
    """``make(project, subject, hashes)`` for a builder; hashes None: the store state is what identifies it."""
    seq, head = _common.audit_position(session)

    def make(project: str, subject: str, hashes: list[tuple[str, str]] | None) -> t.Meta:
        return t.Meta(title=KINDS[kind], project=project, subject=subject, generated_at=generated_at,
                      generated_by=f"{actor.label} ({actor.username})" if actor.display_name else actor.username,
                      steward_version=steward_version(),
                      hashes=hashes if hashes is not None else [(f"Store state (audit event {seq:,})", head)],
                      store_state=(seq, head) if hashes is not None else None)
    return make


def render_model_card_report(*, session: Session, settings: Settings, actor: UserPublic, run_id: int) -> Report:
    """The model card of a trained run as a PDF: every section, figures with intervals, groups, lineage, hashes."""
    from core.reports import _model_card

    _common.require_viewer(actor)
    at = utcnow()
    facts, meta, data, pages = _model_card.build(session=session, settings=settings, run_id=run_id,
                                                 meta_for=_meta_maker(session, actor, "model-card", at))
    return _common.finish(session=session, settings=settings, actor=actor, kind="model-card", subject=meta.subject,
                          data=data, pages=pages, generated_at=at, entity_type="training_run", entity_id=run_id,
                          project_id=facts.run.project_id,
                          details={"version_id": facts.version.id if facts.version else None})


def render_review_report(*, session: Session, settings: Settings, actor: UserPublic, version_id: int) -> Report:
    """The responsible-ML assessment of a model version and its peer review, with sign-off and overrides."""
    from core.reports import _review

    _common.require_viewer(actor)
    at = utcnow()
    facts, meta, data, pages = _review.build(session=session, settings=settings, version_id=version_id,
                                             meta_for=_meta_maker(session, actor, "review", at))
    return _common.finish(session=session, settings=settings, actor=actor, kind="review", subject=meta.subject,
                          data=data, pages=pages, generated_at=at, entity_type="model_version", entity_id=version_id,
                          project_id=facts.version.project_id)


def render_monitoring_report(*, session: Session, settings: Settings, actor: UserPublic, model_id: int,
                             since: date | None = None, until: date | None = None) -> Report:
    """One model's monitoring for a period (dates in UTC, both included; None: open-ended)."""
    from core.reports import _monitoring

    _common.require_viewer(actor)
    at = utcnow()
    facts, meta, data, pages = _monitoring.build(session=session, settings=settings, model_id=model_id, since=since,
                                                 until=until, meta_for=_meta_maker(session, actor, "monitoring", at))
    return _common.finish(session=session, settings=settings, actor=actor, kind="monitoring", subject=meta.subject,
                          data=data, pages=pages, generated_at=at, entity_type="registered_model",
                          entity_id=model_id, project_id=facts.model.project_id,
                          details={"since": since, "until": until, "batches": len(facts.points)})


def render_portfolio_report(*, session: Session, settings: Settings, actor: UserPublic,
                            project_id: int | None = None) -> Report:
    """Every model of a project (or of every project the user can see): status, maturity, reviews, alerts."""
    from core.reports import _portfolio

    _common.require_viewer(actor)
    at = utcnow()
    meta, data, pages = _portfolio.build(session=session, settings=settings, project_id=project_id,
                                         meta_for=_meta_maker(session, actor, "portfolio", at))
    return _common.finish(session=session, settings=settings, actor=actor, kind="portfolio", subject=meta.subject,
                          data=data, pages=pages, generated_at=at, entity_type="project",
                          entity_id=project_id if project_id is not None else "all", project_id=project_id)


def render_report(*, session: Session, settings: Settings, actor: UserPublic, kind: str, **subject: Any) -> Report:
    """The report of ``kind`` (a key of :data:`KINDS`) about ``subject`` (run_id, version_id, model_id, …)."""
    renderers = {"model-card": render_model_card_report, "review": render_review_report,
                 "monitoring": render_monitoring_report, "portfolio": render_portfolio_report}
    if kind not in renderers:
        raise InvalidInput(f"There is no {kind!r} report. Reports are: {', '.join(renderers)}.")
    return renderers[kind](session=session, settings=settings, actor=actor, **subject)


# ── reports generated earlier ───────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class GeneratedReport:
    """A report someone generated, as the audit trail recorded it; its PDF is kept in the artifact store."""

    kind: str
    title: str
    subject: str
    project_id: int | None
    generated_by: str
    generated_at: datetime
    pages: int
    sha256: str
    filename: str


def recent_reports(*, session: Session, actor: UserPublic, project_id: int | None = None,
                   limit: int = 20) -> list[GeneratedReport]:
    """The newest generated reports (of one project, plus the all-project portfolios, when ``project_id`` is given)."""
    _common.require_viewer(actor)
    found = []
    for event in audit.list_events(session=session, action=_common.ACTION, limit=500):
        details = event.details or {}
        if project_id is not None and details.get("project_id") not in (project_id, None):
            continue
        found.append(GeneratedReport(kind=details.get("kind", ""), title=KINDS.get(details.get("kind", ""), "Report"),
                                     subject=details.get("subject", ""), project_id=details.get("project_id"),
                                     generated_by=event.actor_name, generated_at=event.at,
                                     pages=int(details.get("pages") or 0), sha256=details.get("sha256", ""),
                                     filename=details.get("filename", "report.pdf")))
        if len(found) >= limit:
            break
    return found


def load_pdf(*, session: Session, settings: Settings, actor: UserPublic, sha256: str) -> bytes:
    """A generated report's PDF from the artifact store (its hash checked).

    Only hashes the audit trail records as generated reports are served: the artifact store also holds data.
    """
    _common.require_viewer(actor)
    known = any((event.details or {}).get("sha256") == sha256
                for event in audit.list_events(session=session, action=_common.ACTION, limit=100_000))
    if not known:
        raise NotFound("There is no generated report with that fingerprint.")
    return ArtifactStore(settings.artifacts_path).read_bytes(sha256)
