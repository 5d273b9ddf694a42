"""UI pieces for PDF reports: the subject pickers of the Reports page and a download button for other pages."""

from __future__ import annotations

from datetime import date, timedelta

import streamlit as st

from app import resources
from core import checklist, registry, reports
from core.models import ProjectPublic, UserPublic
from core.training import runs

KIND_HELP = {
    "model-card": "Every section of a trained model's card, its figures with intervals, results per group, what "
                  "drives its predictions, lineage and hashes.",
    "review": "The responsible-ML self-assessment of a model version and its peer review: status by dimension, "
              "the decision and its conditions, every item with its evidence, all rounds, sign-off, overrides.",
    "monitoring": "A model in operation over a period: health, drift and quality over time, alerts and what was "
                  "done, retraining runs and promotions.",
    "portfolio": "Every model of this project (or of all projects): status, production version, maturity, last "
                 "review, reassessment dates and open alerts.",
}


def choose_subject(kind: str, project: ProjectPublic) -> dict | None:
    """The inputs that say what the report is about, or None (with a message) when there is nothing to report."""
    with resources.db_session() as session:
        if kind == "model-card":
            found = [r for r in runs.list_runs(session=session, project_id=project.id) if r.status == "succeeded"]
            if not found:
                st.info("No model has been trained in this project yet.")
                return None
            run = st.selectbox("Trained model", found, format_func=lambda r: r.label, key="reports_run")
            return {"run_id": run.id}
        if kind in ("review", "monitoring"):
            models = registry.list_models(session=session, project_id=project.id)
    if kind == "portfolio":
        scope = st.radio("Which models", ["project", "all"], horizontal=True, key="reports_scope",
                         format_func=lambda s: f"This project ({project.name})" if s == "project" else "All projects")
        return {"project_id": project.id if scope == "project" else None}
    if not models:
        st.info("No model is registered in this project yet.")
        return None
    if kind == "review":
        versions = [v for m in models for v in m.versions]
        version = st.selectbox("Model version", versions, key="reports_version",
                               format_func=lambda v: f"{v.label} · {registry.status_label(v)}")
        return {"version_id": version.id}
    model = st.selectbox("Model", models, format_func=lambda m: m.name, key="reports_model")
    today = date.today()
    since, until = st.columns(2)
    first = since.date_input("From (UTC)", value=today - timedelta(days=30), key="reports_since")
    last = until.date_input("To, included (UTC)", value=today, key="reports_until")
    return {"model_id": model.id, "since": first, "until": last}


def recent(user: UserPublic, project: ProjectPublic) -> None:
    with resources.db_session() as session:
        found = reports.recent_reports(session=session, actor=user, project_id=project.id)
    if found:
        st.subheader("Generated recently")
        st.dataframe([{"Report": r.title, "About": r.subject, "By": r.generated_by,
                       "When (UTC)": f"{r.generated_at:%Y-%m-%d %H:%M}", "Pages": r.pages,
                       "SHA-256": r.sha256[:16]} for r in found], hide_index=True)


def download_button(user: UserPublic, kind: str, *, subject_label: str, key: str, label: str | None = None,
                    **subject) -> None:
    """A button that makes the report only when clicked (recorded in the audit trail) and downloads it."""

    def generate() -> bytes:
        with resources.db_session() as session:
            made = reports.render_report(session=session, settings=resources.settings(), actor=user, kind=kind,
                                         **subject)
        return made.data

    st.download_button(label or f"{reports.KINDS[kind]} (PDF)", data=generate, mime="application/pdf",
                       file_name=f"{kind}-{reports.slug(subject_label)}.pdf", key=key,
                       icon=":material/picture_as_pdf:", on_click="ignore",
                       help=f"Generates the {reports.KINDS[kind].lower()} now; the download is recorded in the "
                            "audit trail.")


def version_reports(user: UserPublic, version, *, key: str) -> None:
    """Download buttons for a model version's model card report and, once it is assessed, its review report."""
    with resources.db_session() as session:
        assessed = checklist.get_assessment(session=session, version_id=version.id) is not None
    with st.container(horizontal=True):
        download_button(user, "model-card", subject_label=version.label, key=f"{key}_card_pdf", run_id=version.run_id)
        if assessed:
            download_button(user, "review", subject_label=version.label, key=f"{key}_review_pdf",
                            version_id=version.id)
