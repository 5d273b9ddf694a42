"""Reports page: choose a report and its subject, generate it (audited), download the PDF; refusals shown."""

import io
from types import SimpleNamespace

import pypdf
import pytest
from sqlmodel import select

from app import state
from core import datasets, registry
from core.models import AuditEvent
from tests.app.conftest import button, open_page, page_title, sample_head, texts
from tests.factories import make_dataset_version, make_project, make_trained_run, make_user


@pytest.fixture
def team(db):
    with db() as session:
        bea = make_user(session, "bea")
        return SimpleNamespace(bea=bea, mo=make_user(session, "mo", roles=("manager",)),
                               rita=make_user(session, "rita", roles=("reviewer",)),
                               project=make_project(session, bea))


@pytest.fixture
def run(db, sqlite_settings, team, tmp_path):
    with db() as session:
        data = make_dataset_version(session, sqlite_settings, team.bea, team.project,
                                    sample_head(tmp_path, "labour_force.csv", 300),
                                    metadata=datasets.VersionMetadata(sensitive_columns=["sex"]))
        return make_trained_run(session, sqlite_settings, team.bea, data)


def generated(db) -> list[AuditEvent]:
    with db() as session:
        return list(session.exec(select(AuditEvent).where(AuditEvent.action == "report.generate")))


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def test_the_reports_page_needs_an_open_project(app_test, team):
    at = open_page(app_test(), team.mo, "reports.py")

    assert not at.exception
    assert texts(at.info) == ["Open a project first: data, models and reviews always belong to a project."]


def test_a_manager_generates_a_model_card_report_and_downloads_it(app_test, db, team, run):
    at = open_page(app_test(), team.mo, "reports.py", team.project)
    assert page_title(at) == "Reports"
    assert at.radio(key="reports_kind").value == "model-card"
    assert not at.get("download_button")  # nothing generated yet

    at = button(at, "Generate the report").click().run()

    assert not at.exception
    events = generated(db)
    assert len(events) == 1 and events[0].actor_name == "mo" and events[0].details["kind"] == "model-card"
    assert events[0].entity_id == str(run.id)
    assert at.session_state[state.REPORT_SHA256] == events[0].details["sha256"]
    assert any("Model card report of Run" in message for message in texts(at.success))
    [download] = at.get("download_button")
    assert download.proto.label == "Download the PDF"
    # The table of recent reports lists it, with who made it.
    recent = at.dataframe[0].value
    assert list(recent["By"]) == ["mo"] and list(recent["Report"]) == ["Model card report"]


def test_the_pdf_offered_is_the_one_stored_and_it_names_the_run(app_test, db, team, run, sqlite_settings):
    at = open_page(app_test(), team.mo, "reports.py", team.project)
    at = button(at, "Generate the report").click().run()

    from core import reports

    sha = at.session_state[state.REPORT_SHA256]
    with db() as session:
        data = reports.load_pdf(session=session, settings=sqlite_settings, actor=team.mo, sha256=sha)
    text = pdf_text(data)
    assert "Model card report" in text and f"Run {run.id}" in text and "Generated" in text


def test_a_review_report_of_a_version_without_assessment_is_refused_with_a_message(app_test, db, team, run):
    with db() as session:
        registry.register_run(session=session, actor=team.bea, run_id=run.id, model_name="employment")
    at = open_page(app_test(), team.mo, "reports.py", team.project)
    at.radio(key="reports_kind").set_value("review").run()
    at = button(at, "Generate the report").click().run()

    assert not at.exception
    assert texts(at.error) == ["employment v1 has no self\\-assessment yet, so there is no review to report\\. The "
                               "builder starts it on the Checklist page\\."]
    assert generated(db) == []


def test_a_portfolio_of_all_projects_is_open_to_a_reviewer_too(app_test, db, team, run):
    at = open_page(app_test(), team.rita, "reports.py", team.project)
    at.radio(key="reports_kind").set_value("portfolio").run()
    at.radio(key="reports_scope").set_value("all").run()
    at = button(at, "Generate the report").click().run()

    assert not at.exception
    [event] = generated(db)
    assert event.details["kind"] == "portfolio" and event.entity_id == "all" and event.actor_name == "rita"


def test_without_a_registered_model_the_monitoring_report_says_so(app_test, team, run):
    at = open_page(app_test(), team.mo, "reports.py", team.project)
    at.radio(key="reports_kind").set_value("monitoring").run()

    assert not at.exception
    assert texts(at.info) == ["No model is registered in this project yet."]
    assert not [b for b in at.button if b.label == "Generate the report"]


# ── download buttons where each subject is shown ────────────────────────────────────────────────────


@pytest.fixture
def offered(monkeypatch):
    """Every download button a page draws: (label, data, other arguments); the buttons are still drawn."""
    import streamlit as st

    found = []
    real = st.download_button

    def spy(label, data, *args, **kwargs):
        found.append((label, data, kwargs))
        return real(label, data, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", spy)
    return found


def pdf_buttons(offered) -> dict:
    return {label: data for label, data, kwargs in offered if kwargs.get("mime") == "application/pdf"}


def test_the_model_card_page_makes_the_pdf_only_when_the_button_is_clicked(app_test, db, team, run, offered):
    at = open_page(app_test(), team.mo, "model_card.py", team.project)

    assert not at.exception
    make = pdf_buttons(offered)["Model card report (PDF)"]
    assert callable(make) and generated(db) == []  # drawing the page generates nothing
    text = pdf_text(make())
    assert "Model card report" in text and f"Run {run.id}" in text
    [event] = generated(db)
    assert event.actor_name == "mo" and event.details["kind"] == "model-card"


def test_the_registry_and_checklist_pages_offer_the_reports_of_what_they_show(app_test, db, team, run, offered):
    from core import checklist

    with db() as session:
        version = registry.register_run(session=session, actor=team.bea, run_id=run.id, model_name="employment")
    at = open_page(app_test(), team.mo, "registry.py", team.project)
    assert not at.exception
    assert set(pdf_buttons(offered)) == {"Model card report (PDF)", "Portfolio report of this project (PDF)"}

    with db() as session:
        checklist.start_assessment(session=session, actor=team.bea, version_id=version.id)
    offered.clear()
    at = open_page(app_test(), team.bea, "checklist.py", team.project)
    assert not at.exception
    make = pdf_buttons(offered)["Review report (PDF)"]
    assert "Review report" in pdf_text(make()) and generated(db)[0].details["kind"] == "review"
