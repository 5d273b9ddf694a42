"""PDF reports: their text (extracted with pypdf) holds the sections, the store's numbers, hostile text shown
literally and small counts suppressed; rights, the audit event, the stored copy, fonts and the CLI.

One store is built once for the module through the real services: bea trained ``employment`` on 400 survey rows
(sex and region sensitive; the smallest region has fewer than 10 test rows), wrote a card full of hostile text,
answered the checklist; rita asked for changes, then approved with conditions; the run was reproduced; an
administrator overrode the gates that still failed; mo promoted it; five batches were scored (two drifted, two
labelled) and one alert was resolved. Each test works on its own copy.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pypdf
import pytest
from click.testing import CliRunner
from sqlmodel import select

from core import alerts, auth, checklist, datasets, model_card, monitoring, registry, reports, review, serving
from core.artifacts import ArtifactStore
from core.cli import cli
from core.config import get_settings
from core.db import create_store_engine, migrate, session_scope
from core.errors import NotAllowed, NotFound
from core.models import Assessment, AuditEvent, DatasetVersion
from core.reports import _disclosure as disclosure
from core.reports import _template as template
from core.training import runs
from tests.factories import COMPLETE_CARD, PASSWORD, make_dataset_version, make_project, make_trained_run, make_user

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
HOSTILE = "R&D <img src=x> <a href='http://evil.example'>click</a> x<y Łódź Øresund Šibenik Ελλάδα"
ROUND_ONE = "Proxies <img src=x> & more: explain them"
CONDITIONS = "Recheck groups <b>quarterly</b> & report"
OVERRIDE = "Accepted by the board <img src=x> & minuted"
RESOLUTION = "Fixed the source <a href='x'>file</a> & re-ran"


@dataclass(frozen=True)
class Ids:
    run_id: int
    version_id: int
    model_id: int
    project_id: int


def _rows(directory: Path, source: str, first: int, count: int) -> Path:
    lines = (SAMPLES / source).read_text(encoding="utf-8").splitlines()
    path = directory / f"{Path(source).stem}_{first}_{count}.csv"
    path.write_text("\n".join([lines[0], *lines[1 + first:1 + first + count]]) + "\n", encoding="utf-8")
    return path


def _environment(home: Path) -> dict[str, str]:
    return {"STEWARD_HOME": str(home), "STEWARD_DATABASE_URL": f"sqlite:///{home / 'steward.db'}",
            "STEWARD_SECRET_KEY": "k" * 40, "STEWARD_EXPLAIN_ROWS": "50", "STEWARD_EXPLAIN_BACKGROUND_ROWS": "20"}


def _build(directory: Path) -> Path:
    home = directory / "home"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in _environment(home).items():
            patch.setenv(key, value)
        get_settings.cache_clear()
        settings = get_settings()
        settings.ensure_home()
        migrate(settings.resolved_database_url)
        engine = create_store_engine(settings.resolved_database_url)
        try:
            with session_scope(engine) as session:
                ids = _fill(session, settings, directory)
        finally:
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            engine.dispose()
            get_settings.cache_clear()
    (home / "ids.json").write_text(json.dumps(ids.__dict__))
    return home


def _fill(session, settings, directory: Path) -> Ids:
    bea = make_user(session, "bea")
    rita = make_user(session, "rita", roles=("reviewer",))
    mo = make_user(session, "mo", roles=("manager",))
    admin = auth.get_user_by_name(session=session, username="admin")
    project = make_project(session, bea)
    data = make_dataset_version(session, settings, bea, project, _rows(directory, "labour_force.csv", 0, 400),
                                metadata=datasets.VersionMetadata(sensitive_columns=["sex", "region"],
                                                                  legal_basis="Statistics Act"))
    run = make_trained_run(session, settings, bea, data)
    card = dict(COMPLETE_CARD, overview=HOSTILE, limitations=f"Weak for {HOSTILE}\nsecond line",
                risks=[{"name": "Bias <script>alert(1)</script>", "mitigation": "Monitor & review"}])
    model_card.save_card(session=session, actor=bea, run_id=run.id, content=card, based_on=0)
    version = registry.register_run(session=session, actor=bea, run_id=run.id, model_name="employment")
    view = checklist.start_assessment(session=session, actor=bea, version_id=version.id)
    for code, item in view.items.items():
        checklist.save_answer(session=session, actor=bea, assessment_id=view.id, code=code, answer="yes",
                              justification=f"Checked {code}.", expected_revision=item.revision)
    review.submit(session=session, settings=settings, actor=bea, version_id=version.id)
    review.save_verdict(session=session, actor=rita, version_id=version.id, code="RP-05", verdict="needs_work",
                        comment=ROUND_ONE, expected_revision=0)
    review.decide(session=session, settings=settings, actor=rita, version_id=version.id, decision="request_changes",
                  comment="See RP-05 & RP-06")
    view = checklist.get_assessment(session=session, version_id=version.id)
    checklist.save_answer(session=session, actor=bea, assessment_id=view.id, code="RP-05", answer="partly",
                          justification=f"Explained: {HOSTILE}", expected_revision=view.items["RP-05"].revision)
    submitted = review.submit(session=session, settings=settings, actor=bea, version_id=version.id)
    for code in submitted.snapshot["items"]:
        review.save_verdict(session=session, actor=rita, version_id=version.id, code=code, verdict="agree",
                            comment="", expected_revision=0)
    review.decide(session=session, settings=settings, actor=rita, version_id=version.id,
                  decision="approve_with_conditions", conditions=CONDITIONS)
    certificate = runs.start_reproduction(session=session, runner=None, actor=bea, run_id=run.id)
    runs.reproduce(session=session, settings=settings, certificate_id=certificate.id, actor=bea)
    gates = registry.evaluate_gates(session=session, settings=settings, version_id=version.id)
    for gate in gates.failed:
        registry.override_gate(session=session, settings=settings, actor=admin, version_id=version.id,
                               gate=gate.gate, reason=OVERRIDE)
    registry.promote_version(session=session, settings=settings, actor=mo, version_id=version.id,
                             reason="First production version")
    for index, source in enumerate(["labour_force_batch_similar.csv", "labour_force_batch_drifted.csv"] * 2
                                   + ["labour_force_batch_similar.csv"]):
        path = _rows(directory, source, index * 120, 120)
        scored = serving.score_file(session=session, settings=settings, actor=bea, project_id=project.id,
                                    model_name="employment", filename=path.name, path=path)
        if index < 2:
            lines = path.read_text(encoding="utf-8").splitlines()
            column = lines[0].split(",").index("employed")
            labels = "employed\n" + "\n".join(line.split(",")[column] for line in lines[1:]) + "\n"
            monitoring.attach_labels(session=session, settings=settings, actor=bea, batch_id=scored.batch.id,
                                     filename="labels.csv", data=labels.encode())
    model = registry.find_model(session=session, name="employment", project_id=project.id)
    raised = alerts.list_alerts(session=session, project_id=project.id)
    assert raised, "the drifted batches should raise an alert"
    alerts.resolve(session=session, actor=mo, alert_id=raised[-1].id, note=RESOLUTION)
    return Ids(run_id=run.id, version_id=version.id, model_id=model.id, project_id=project.id)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return _build(tmp_path_factory.mktemp("reports-store"))


@pytest.fixture
def store(built, tmp_path, monkeypatch):
    """A private copy of the built store: (settings, session, ids)."""
    home = tmp_path / "home"
    shutil.copytree(built, home)
    for key, value in _environment(home).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    settings = get_settings()
    engine = create_store_engine(settings.resolved_database_url)
    with session_scope(engine) as session:
        yield settings, session, Ids(**json.loads((home / "ids.json").read_text()))
    engine.dispose()
    get_settings.cache_clear()


def user(session, name: str):
    return auth.get_user_by_name(session=session, username=name)


def text_of(report: reports.Report) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(report.data)).pages)


def pages_of(report: reports.Report) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(report.data)).pages]


def flat(text: str) -> str:
    """Extracted text with line breaks as spaces (table cells and wrapped lines come out on several lines)."""
    return re.sub(r"\s+", " ", text)


def fmt(value: float) -> str:
    return f"{value:.3f}"


# ── model card ──────────────────────────────────────────────────────────────────────────────────────


def test_the_model_card_report_has_a_summary_page_then_every_card_section(store):
    settings, session, ids = store
    report = reports.render_model_card_report(session=session, settings=settings, actor=user(session, "mo"),
                                              run_id=ids.run_id)
    pages = pages_of(report)
    first = flat(pages[0])
    assert "In brief" in first and "Points for attention" in first and "What this report describes" in first
    assert "1. Model details" not in first  # the details start on page 2
    body = flat("\n".join(pages[1:]))
    for number, title in enumerate(model_card.SECTIONS.values(), start=1):
        assert f"{number}. {title}" in body, title
    assert "10. Lineage and hashes" in body
    for page_number, page in enumerate(pages, start=1):
        assert f"Page {page_number} of {len(pages)}" in page
        assert "Model card report" in page and "employment v1" in page and "Generated" in page
    assert report.pages == len(pages) and report.filename.startswith("model-card-employment-v1-")


def test_the_model_card_report_prints_the_stored_metrics_intervals_and_hashes(store):
    settings, session, ids = store
    run = runs.get_run(session=session, run_id=ids.run_id)
    report = reports.render_model_card_report(session=session, settings=settings, actor=user(session, "mo"),
                                              run_id=ids.run_id)
    text = flat(text_of(report))
    primary = run.evaluation["metrics"][run.primary_metric]
    assert (f"ROC AUC is {fmt(primary['value'])} (95% interval {fmt(primary['low'])} to {fmt(primary['high'])})"
            in text)
    for values in run.evaluation["metrics"].values():
        assert f"{fmt(values['value'])} {fmt(values['low'])} to {fmt(values['high'])}" in text
    assert f"On {run.evaluation['n_rows']} held-out test rows" in text
    for digest in (run.model_sha256, run.dataset_sha256, run.test_set_sha256, run.prediction_hash):
        assert digest in text.replace(" ", "")
    assert "Re-running the training from its recorded data, settings and seed gave identical predictions" in text


def test_user_text_appears_literally_and_never_as_markup(store):
    settings, session, ids = store
    report = reports.render_model_card_report(session=session, settings=settings, actor=user(session, "mo"),
                                              run_id=ids.run_id)
    text = flat(text_of(report))
    assert f"What it is for: {HOSTILE}" in text
    assert "<img src=x>" in text and "<a href='http://evil.example'>click</a>" in text and "R&D " in text
    assert "Bias <script>alert(1)</script>" in text and "Monitor & review" in text
    assert "R&D;" not in text
    document = pypdf.PdfReader(io.BytesIO(report.data))
    images = sum(len(page.images) for page in document.pages)
    assert images == 2  # the two charts: no image was pulled in by <img src=...>
    links = [annotation for page in document.pages for annotation in page.get("/Annots") or []]
    assert links == []


def test_group_counts_below_the_minimum_are_suppressed(store):
    settings, session, ids = store
    run = runs.get_run(session=session, run_id=ids.run_id)
    groups = run.evaluation["subgroups"]
    small = [g for g in groups if g["count"] < settings.min_cell_size]
    assert small, "the fixture should have a group with fewer test rows than the minimum cell size"
    report = reports.render_model_card_report(session=session, settings=settings, actor=user(session, "mo"),
                                              run_id=ids.run_id)
    text = flat(text_of(report))
    for group in small:
        assert f"{group['column']} {group['group']} < {settings.min_cell_size} suppressed suppressed" in text
    for group in groups:
        if group["count"] >= settings.min_cell_size and not any(
                other["column"] == group["column"] for other in small):
            assert f"{group['column']} {group['group']} {group['count']} {fmt(group['value'])}" in text
    assert f"counts below {settings.min_cell_size} are shown as “< {settings.min_cell_size}”" in text


def test_generating_a_report_is_audited_and_the_pdf_is_kept(store):
    settings, session, ids = store
    mo = user(session, "mo")
    report = reports.render_model_card_report(session=session, settings=settings, actor=mo, run_id=ids.run_id)

    event = session.exec(select(AuditEvent).where(AuditEvent.action == "report.generate")).one()
    assert event.actor_name == "mo" and event.entity_type == "training_run" and event.entity_id == str(ids.run_id)
    assert event.details["sha256"] == report.sha256 and event.details["pages"] == report.pages
    assert event.details["project_id"] == ids.project_id and event.details["kind"] == "model-card"
    assert ArtifactStore(settings.artifacts_path).read_bytes(report.sha256) == report.data
    assert reports.load_pdf(session=session, settings=settings, actor=mo, sha256=report.sha256) == report.data
    [recent] = reports.recent_reports(session=session, actor=mo, project_id=ids.project_id)
    assert (recent.kind, recent.generated_by, recent.sha256) == ("model-card", "mo", report.sha256)


def test_only_report_files_are_served_from_the_artifact_store(store):
    settings, session, _ids = store
    data_file = session.exec(select(DatasetVersion)).first().parquet_sha256
    with pytest.raises(NotFound, match="no generated report"):
        reports.load_pdf(session=session, settings=settings, actor=user(session, "mo"), sha256=data_file)


def test_the_font_is_embedded(store):
    settings, session, ids = store
    report = reports.render_model_card_report(session=session, settings=settings, actor=user(session, "mo"),
                                              run_id=ids.run_id)
    fonts = {}
    for page in pypdf.PdfReader(io.BytesIO(report.data)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            fonts[str(font["/BaseFont"])] = "/FontFile2" in font["/FontDescriptor"].get_object()
    assert fonts and all(fonts.values()), fonts  # every font embedded, no bare Helvetica
    assert all("DejaVuSans" in name for name in fonts)
    assert "Łódź Øresund Šibenik Ελλάδα" in text_of(report)


# ── review ──────────────────────────────────────────────────────────────────────────────────────────


def test_the_review_report_gives_the_decision_lights_items_rounds_sign_off_and_overrides(store):
    settings, session, ids = store
    report = reports.render_review_report(session=session, settings=settings, actor=user(session, "mo"),
                                          version_id=ids.version_id)
    pages = pages_of(report)
    first = flat(pages[0])
    assert f"Overall decision: APPROVED WITH CONDITIONS by rita on {date.today():%Y-%m-%d} (round 2 of 2)" in first
    assert f"Conditions: {CONDITIONS}" in first
    board = review.dashboard(session=session, settings=settings, version_id=ids.version_id)
    words = {"green": "Green", "amber": "Amber", "red": "Red"}
    for dimension in board.dimensions:
        assert f"{dimension['code']} · {dimension['name']}" in first
        assert f"● {words[dimension['light']]}" in first  # the light is written, not only coloured
    text = flat("\n".join(pages))
    template_items = checklist.load_template().items
    for item in template_items:
        assert f"{item.code} · " in text
    assert f"Self-assessment: Partly (answered by bea) Explained: {HOSTILE}" in text
    assert "Reviewer (rita): Agree" in text
    assert ROUND_ONE in text and "See RP-05 & RP-06" in text and "Needs work" in text  # round 1 kept
    assert "3. Review rounds" in text and "changes requested" in text
    sign_off = text[text.index("4. Sign-off"):]
    assert "Builder bea" in sign_off and "Reviewer rita" in sign_off and "Approver mo" in sign_off
    overrides = registry.list_overrides(session=session, version_id=ids.version_id)
    if overrides:
        assert OVERRIDE in text and "admin" in sign_off
    else:
        assert "No promotion gate of this version was overridden." in text


def test_the_review_report_freezes_evidence_with_its_hash_and_suppresses_small_counts(store):
    settings, session, ids = store
    report = reports.render_review_report(session=session, settings=settings, actor=user(session, "rita"),
                                          version_id=ids.version_id)
    text = flat(text_of(report))
    last = review.round_views(session=session, version_id=ids.version_id)[-1]
    canonical = json.dumps(last.snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    import hashlib

    assert hashlib.sha256(canonical.encode()).hexdigest() in text.replace(" ", "")
    assert "Answers and evidence as frozen when round 2 was submitted." in text
    assert f"< {settings.min_cell_size}" in text and "Disclosure control:" in text


def test_a_version_without_assessment_has_no_review_report(store, tmp_path):
    settings, session, ids = store
    bea = user(session, "bea")
    data = session.exec(select(DatasetVersion)).first()
    other = make_trained_run(session, settings, bea, datasets.get_version(session=session, version_id=data.id))
    version = registry.register_run(session=session, actor=bea, run_id=other.id, model_name="employment")
    with pytest.raises(NotFound, match="has no self-assessment yet"):
        reports.render_review_report(session=session, settings=settings, actor=bea, version_id=version.id)
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "report.generate")).first() is None


# ── monitoring ──────────────────────────────────────────────────────────────────────────────────────


def test_the_monitoring_report_counts_the_batches_and_tells_what_was_done_about_alerts(store):
    settings, session, ids = store
    report = reports.render_monitoring_report(session=session, settings=settings, actor=user(session, "mo"),
                                              model_id=ids.model_id)
    pages = pages_of(report)
    first, text = flat(pages[0]), flat("\n".join(pages))
    assert "Health now" in first and "In this period" in first
    found = monitoring.list_reports(session=session, model_id=ids.model_id)
    rows = sum(r.rows for r in found)
    assert f"{len(found)} batches ({rows:,} rows) were scored with employment in this period, by version v1." in first
    drifted = [r for r in found if r.dataset_drift]
    judged = [r for r in found if r.finished and r.judged]
    assert (f"The input data had drifted away from the training data in {len(drifted)} of the {len(judged)} batches "
            "large enough to judge") in first
    raised = alerts.list_alerts(session=session, project_id=ids.project_id)
    assert f"{len(raised)} alert{'s' if len(raised) != 1 else ''} raised: 1 resolved" in first
    for section in ("1. Batches scored", "2. Drift over time", "3. Quality over time", "4. Alerts and what was done",
                    "5. Retraining and promotions", "Production changes"):
        assert section in text
    assert f"Resolved by mo: {RESOLUTION}" in text
    labelled = [r for r in found if r.primary_performance()]
    for r in labelled:
        performance = r.primary_performance()
        assert f"ROC AUC {fmt(performance['value'])} ({fmt(performance['low'])} to {fmt(performance['high'])})" in text
    assert "into production First production version" in text
    # The drift and the performance charts over time.
    assert sum(len(page.images) for page in pypdf.PdfReader(io.BytesIO(report.data)).pages) >= 2


def test_a_period_without_batches_says_so(store):
    settings, session, ids = store
    later = date.today() + timedelta(days=10)
    report = reports.render_monitoring_report(session=session, settings=settings, actor=user(session, "mo"),
                                              model_id=ids.model_id, since=later, until=later + timedelta(days=5))
    text = flat(text_of(report))
    assert "No batch was scored with employment in this period." in text
    assert f"{later:%Y-%m-%d} to {later + timedelta(days=5):%Y-%m-%d}" in text
    # An alert still open from before the period is listed all the same.
    unresolved = [a for a in alerts.list_alerts(session=session, project_id=ids.project_id) if a.status != "resolved"]
    if unresolved:
        assert "from before the period" in text


# ── portfolio ───────────────────────────────────────────────────────────────────────────────────────


def test_the_portfolio_lists_status_maturity_review_reassessment_and_open_alerts(store):
    settings, session, ids = store
    report = reports.render_portfolio_report(session=session, settings=settings, actor=user(session, "rita"),
                                             project_id=ids.project_id)
    text = flat(text_of(report))
    maturity = registry.maturity(session=session, model_id=ids.model_id)
    assessment = session.exec(select(Assessment).where(Assessment.version_id == ids.version_id)).one()
    open_alerts = sum(alerts.open_alert_counts(session=session, project_id=ids.project_id)
                      .get(ids.model_id, {}).values())
    assert "This report covers 1 registered model in the project Labour force." in text
    assert "In production: 1 of 1." in text
    assert f"Level {maturity.level} ({maturity.met} of {len(maturity.principles)} principles)" in text
    assert f"v1 approved with conditions by rita, {date.today():%Y-%m-%d}" in text
    assert f"{assessment.reassess_by:%Y-%m-%d} (v1)" in text
    assert f"Open monitoring alerts: {open_alerts or 'none'}." in text
    for principle in maturity.principles:
        assert principle.title in text


def test_the_portfolio_of_every_project_includes_projects_without_models(store):
    settings, session, ids = store
    make_project(session, user(session, "bea"), name="Business register")
    report = reports.render_portfolio_report(session=session, settings=settings, actor=user(session, "mo"))
    text = flat(text_of(report))
    assert "Models in 2 projects you can see" in text
    assert "1. Business register Employment status · owner: bea" in text  # projects by name
    assert "No model registered yet." in text
    assert "2. Labour force" in text


def test_a_portfolio_works_on_both_databases(settings, session):
    """The reports only read; this one runs on SQLite and on PostgreSQL."""
    owner = make_user(session, "bea")
    project = make_project(session, owner)
    report = reports.render_portfolio_report(session=session, settings=settings, actor=owner, project_id=project.id)
    assert "No model is registered in the project Labour force yet." in flat(text_of(report))


# ── rights ──────────────────────────────────────────────────────────────────────────────────────────


def test_a_deactivated_account_gets_no_report(store):
    settings, session, ids = store
    admin = user(session, "admin")
    gone = auth.set_active(session=session, actor=admin, user_id=user(session, "rita").id, active=False)
    with pytest.raises(NotAllowed):
        reports.render_model_card_report(session=session, settings=settings, actor=gone, run_id=ids.run_id)
    with pytest.raises(NotAllowed):
        reports.render_portfolio_report(session=session, settings=settings, actor=None)


# ── pieces ──────────────────────────────────────────────────────────────────────────────────────────


def test_a_lone_small_group_hides_the_next_smallest_count_too():
    rows = [{"column": "region", "group": g, "count": n, "metric": "roc_auc", "value": 0.7, "overall": 0.7,
             "gap": 0.0} for g, n in (("North", 40), ("South", 25), ("Islands", 4))]
    found = {row.group: row for row in disclosure.subgroup_rows(rows, 10)}
    assert found["Islands"].count == "< 10" and found["Islands"].value is None and found["Islands"].suppressed
    assert found["South"].count == "hidden" and found["South"].hidden and found["South"].value == 0.7
    assert found["North"].count == "40"
    assert [r["group"] for r in disclosure.chartable(rows, 10)] == ["North"]


def test_evidence_tables_suppress_counts_and_the_shares_made_from_them():
    rows = [{"Column": "sex", "Group": "f", "Rows": 200, "Share": "50%", "Test rows": 40},
            {"Column": "sex", "Group": "m", "Rows": 195, "Share": "49%", "Test rows": 39},
            {"Column": "sex", "Group": "x", "Rows": 5, "Share": "1%", "Test rows": 1}]
    safe, count = disclosure.table_rows(rows, 10)
    assert safe[2]["Rows"] == "< 10" and safe[2]["Test rows"] == "< 10" and safe[2]["Share"] == "suppressed"
    assert safe[1]["Rows"] == "hidden" and safe[1]["Test rows"] == "hidden"
    assert safe[0]["Rows"] == 200 and count == 4


def test_markup_in_user_text_is_escaped_for_reportlab():
    assert template.esc("<img src='/etc/passwd'/> & R&D\nnext") == \
        "&lt;img src='/etc/passwd'/&gt; &amp; R&amp;D<br/>next"
    assert template.shorten("x" * 30, 10).startswith("xxxxxxxxxx … [shortened here; 30 characters in all]")


# ── command line ────────────────────────────────────────────────────────────────────────────────────


def test_the_cli_writes_each_report_and_refuses_an_unknown_user(store, tmp_path):
    _settings, _session, ids = store
    runner = CliRunner()
    env = {"STEWARD_PASSWORD": PASSWORD}
    commands = {
        "card.pdf": ["report", "model-card", str(ids.run_id)],
        "review.pdf": ["report", "review", "employment", "1"],
        "monitoring.pdf": ["report", "monitoring", "employment", "--project", "Labour force",
                           "--since", f"{date.today() - timedelta(days=1):%Y-%m-%d}"],
        "portfolio.pdf": ["report", "portfolio", "Labour force"],
    }
    for name, command in commands.items():
        out = tmp_path / "out" / name
        result = runner.invoke(cli, ["--json", *command, "--out", str(out), "--user", "mo"], env=env)
        assert result.exit_code == 0, result.output
        answer = json.loads(result.output)
        assert out.read_bytes()[:5] == b"%PDF-" and answer["pages"] == len(pypdf.PdfReader(out).pages)
        assert answer["sha256"] and answer["out"] == str(out)
    refused = runner.invoke(cli, ["report", "portfolio", "--out", str(tmp_path / "x.pdf"), "--user", "nobody"],
                            env=env)
    assert refused.exit_code == 2 and "There is no user called 'nobody'" in refused.output
    assert not (tmp_path / "x.pdf").exists()


def test_without_the_font_installed_reports_are_refused_with_what_to_install(monkeypatch):
    template.register_fonts.cache_clear()
    monkeypatch.setattr(template, "FONT_DIRS", (Path("/nonexistent/fonts"),))
    try:
        with pytest.raises(template.FontMissing, match="install the Debian package fonts-dejavu-core"):
            template.register_fonts()
    finally:
        template.register_fonts.cache_clear()  # the next report registers the real font again
