"""Monitoring page: guards, the project overview, dashboards, a batch's drift table, labels, the full report."""

import json

import pandas as pd
import pytest
from sqlmodel import select

from core import serving
from core.artifacts import ArtifactStore
from core.models import Job, MonitoringReport, PredictionBatch
from tests.app.conftest import SAMPLE_DATA, button, open_page, plain, sample_head, texts, wait_until_finished
from tests.factories import make_production_version, make_project, make_user

SIMILAR, DRIFTED = "labour_force_batch_similar.csv", "labour_force_batch_drifted.csv"


@pytest.fixture
def team(db):
    with db() as session:
        bea = make_user(session, "bea")
        rita = make_user(session, "rita", roles=("reviewer",))
        return bea, rita, make_project(session, bea)


@pytest.fixture
def production(db, sqlite_settings, team, tmp_path):
    """``employment`` v1 in production (1,500 survey rows), then a similar, a tiny and a drifted batch scored."""
    bea, _rita, project = team
    with db() as session:
        version = make_production_version(session, sqlite_settings, bea, project,
                                          sample_head(tmp_path, "labour_force.csv", 1500))
        for name, rows in ((SIMILAR, 300), (DRIFTED, 30), (DRIFTED, 300)):
            lines = (SAMPLE_DATA / name).read_bytes().splitlines(keepends=True)
            serving.score_file(session=session, settings=sqlite_settings, actor=bea, project_id=project.id,
                               model_name="employment", filename=name, data=b"".join(lines[: rows + 1]),
                               keep_export=True)
        batches = session.exec(select(PredictionBatch.id).order_by(PredictionBatch.id)).all()
    return version, batches


def chart_titles(block) -> list[str]:
    """The title of every Altair chart in ``block`` (st.altair_chart is a vega_lite_chart element)."""
    return [json.loads(chart.proto.spec).get("title") for chart in block.get("vega_lite_chart")]


def labels_uploader(at):
    return next(u for u in at.file_uploader if u.key.startswith("monitor_labels_file"))


def test_the_page_needs_an_open_project_and_says_when_there_is_no_model(app_test, team):
    bea, rita, project = team
    at = open_page(app_test(), rita, "monitor.py")
    assert not at.exception
    assert texts(at.info) == ["Open a project first: data, models and reviews always belong to a project."]
    at = open_page(app_test(), bea, "monitor.py", project)
    assert not at.exception
    assert texts(at.info)[0].startswith("No model is registered in this project yet.")
    assert not at.tabs


def test_overview_dashboards_and_the_drifted_batch(app_test, team, production):
    bea, _rita, project = team
    _version, (similar, small, drifted) = production
    at = open_page(app_test(), bea, "monitor.py", project)
    assert not at.exception
    overview = at.dataframe[0].value
    assert overview[["Model", "Health", "In production", "Batches"]].values.tolist() == [
        ["employment", "warning", "v1", 3]]
    assert plain(at.warning)[0].startswith(f"**:material/warning: Warning** — Batch {drifted}: 4 of 8 input "
                                           "columns drifted (50%")
    # Drift share over time, the per-column heat map and the volume; no performance before labels arrive.
    assert chart_titles(at.tabs[0]) == ["Drifted input columns per batch",
                                        "Drift score per column (▲ drift, ~ batch too small to judge)",
                                        "Volume: rows per batch"]
    assert any("Performance appears here once true values are uploaded" in c for c in plain(at.tabs[0].caption))

    batches = at.tabs[1]
    table = batches.dataframe[0].value
    assert table["Batch"].tolist() == [drifted, small, similar]
    assert table["Verdict"].tolist() == ["▲ drift", "~ not judged", "no drift"]
    assert plain(batches.warning)[0].startswith("**Drift**: 4 of 8 input columns drifted (50%")
    columns = batches.dataframe[1].value
    assert set(columns.loc[columns["Verdict"] == "▲ drift", "Column"]) == {"age", "hours_usual", "region",
                                                                          "education"}
    assert any(c.startswith("Method: evidently defaults for a 1,500-row reference") for c in plain(batches.caption))


def test_a_small_batch_shows_that_it_was_not_judged(app_test, team, production):
    bea, _rita, project = team
    _version, (_similar, small, _drifted) = production
    at = open_page(app_test(), bea, "monitor.py", project)
    at.selectbox(key=f"monitor_batch_{1}").set_value(small).run()
    assert not at.exception
    assert any(i.startswith("This batch has 30 rows, fewer than the 100 needed to judge drift")
               for i in plain(at.tabs[1].info))
    assert set(at.tabs[1].dataframe[1].value["Verdict"]) == {"~ not judged"}


def test_uploading_true_values_adds_the_performance(app_test, db, team, production):
    bea, _rita, project = team
    _version, (_similar, _small, drifted) = production
    truth = pd.read_csv(SAMPLE_DATA / DRIFTED, nrows=300)[["person_id", "employed"]]
    at = open_page(app_test(), bea, "monitor.py", project)
    labels_uploader(at).upload("truth.csv", truth.to_csv(index=False).encode(), "text/csv")
    at.text_input(key=f"monitor_labels_key_{drifted}").set_value("person_id")
    at = button(at, "Add the true values").click().run()
    assert not at.exception
    assert plain(at.success)[0] == f"Added true values for 300 of 300 rows of batch {drifted}."
    assert any(m.startswith("**Performance** on 300 of 300 rows with a true value (matched by key person_id")
               for m in plain(at.markdown))
    performance = at.tabs[1].dataframe[2].value
    assert performance["Metric"].tolist()[0] == "ROC AUC"
    assert "Performance on labelled batches (bars: 95% interval)" in chart_titles(at.tabs[0])
    with db() as session:
        assert session.get(PredictionBatch, drifted).labels_sha256


def test_true_values_that_do_not_fit_are_refused_in_plain_words(app_test, db, team, production):
    bea, _rita, project = team
    truth = pd.read_csv(SAMPLE_DATA / DRIFTED, nrows=299)[["employed"]]
    at = open_page(app_test(), bea, "monitor.py", project)
    labels_uploader(at).upload("truth.csv", truth.to_csv(index=False).encode(), "text/csv")
    at.radio(key=f"monitor_labels_how_{production[1][2]}").set_value("row order")
    at = button(at, "Add the true values").click().run()
    assert not at.exception
    assert plain(at.error) == ["The file has 299 rows but the batch has 300. Matching by row order needs exactly one "
                               "true value per scored row, in the same order; or match by a key column that both "
                               "have."]
    with db() as session:
        assert all(r.performance is None for r in session.exec(select(MonitoringReport)))


def test_a_reviewer_reads_but_does_not_upload_or_recompute(app_test, team, production):
    _bea, rita, project = team
    at = open_page(app_test(), rita, "monitor.py", project)
    assert not at.exception
    assert not [u for u in at.file_uploader if u.key.startswith("monitor_labels_file")]
    assert "Builders and administrators upload the true values of a batch." in plain(at.caption)
    assert not [b for b in at.button if b.label == "Recompute this report"]


def test_the_full_evidently_report_is_made_as_a_job_and_offered_for_download(app_test, db, sqlite_settings, team,
                                                                            production, thread_runner):
    bea, _rita, project = team
    _version, (_similar, _small, drifted) = production
    at = open_page(app_test(), bea, "monitor.py", project)
    at = button(at, "Make the full evidently report").click().run()
    with db() as session:  # loading evidently takes a while on a busy machine
        job_id = session.exec(select(Job.id).where(Job.kind == "monitoring.html")).one()
    wait_until_finished(db, job_id, timeout=180)
    at.run()
    assert not at.exception
    [download] = at.tabs[1].get("download_button")
    assert download.label == "Download the full report (HTML)"
    with db() as session:
        assert session.exec(select(Job).where(Job.kind == "monitoring.html")).one().status == "succeeded"
        sha256 = session.exec(select(MonitoringReport).where(MonitoringReport.batch_id == drifted)).one().html_sha256
    html = ArtifactStore(sqlite_settings.artifacts_path).read_bytes(sha256).decode()
    assert "<html" in html.lower() and "months_since_last_job" in html
