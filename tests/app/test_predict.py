"""Predict: guards, a file checked then scored as a job with its downloads, one typed-in record, and refusals."""

import io

import pandas as pd
import pytest
from sqlmodel import select

from core import registry, serving
from core.models import PredictionBatch, VersionStatus
from tests.app.conftest import SAMPLE_DATA, button, finish_jobs, open_page, page_links, plain, sample_head, texts
from tests.factories import make_dataset_version, make_project, make_trained_run, make_user

BATCH = "labour_force_batch_similar.csv"


@pytest.fixture
def team(db):
    with db() as session:
        bea = make_user(session, "bea")
        rita = make_user(session, "rita", roles=("reviewer",))
        return bea, rita, make_project(session, bea)


@pytest.fixture
def registered(db, sqlite_settings, team, tmp_path):
    """``employment`` v1: a yes/no model on 300 survey rows, registered but not yet in production."""
    bea, _rita, project = team
    quick = sqlite_settings.model_copy(update={"explain_rows": 50, "explain_background_rows": 20})
    with db() as session:
        version = make_dataset_version(session, sqlite_settings, bea, project,
                                       sample_head(tmp_path, "labour_force.csv", 300))
        run = make_trained_run(session, quick, bea, version)
        return registry.register_run(session=session, actor=bea, run_id=run.id, model_name="employment")


@pytest.fixture
def production(db, team, registered):
    bea, _rita, _project = team
    with db() as session:
        for status in (VersionStatus.approved, VersionStatus.production):
            registry.change_status(session=session, actor=bea, version_id=registered.id, to_status=status)
        session.commit()
    return registered


def batch_head(rows: int) -> bytes:
    lines = (SAMPLE_DATA / BATCH).read_bytes().splitlines(keepends=True)
    return b"".join(lines[: rows + 1])


def uploader(at):
    return next(u for u in at.file_uploader if u.key.startswith("predict_upload"))


def test_predict_needs_an_open_project_and_the_builder_role(app_test, team):
    bea, rita, _project = team
    at = open_page(app_test(), bea, "predict.py")
    assert not at.exception
    assert texts(at.info) == ["Open a project first: data, models and reviews always belong to a project."]
    with pytest.raises(ValueError):  # a reviewer's navigation has no Predict page to switch to
        open_page(app_test(), rita, "predict.py", _project)


def test_without_a_registered_model_the_page_says_what_to_do(app_test, team):
    bea, _rita, project = team
    at = open_page(app_test(), bea, "predict.py", project)
    assert not at.exception
    assert texts(at.info)[0].startswith("No model is registered in this project yet.")
    assert not at.tabs


def test_without_a_production_version_the_page_says_how_to_promote_one(app_test, team, registered):
    bea, _rita, project = team
    at = open_page(app_test(), bea, "predict.py", project)
    assert not at.exception
    [warning] = plain(at.warning)
    assert warning.startswith("'employment' has no version in production, so there is nothing to score with. A "
                              "manager or administrator promotes an approved version on the Registry page")
    assert not at.file_uploader


def test_a_file_is_checked_scored_as_a_job_and_offered_for_download(app_test, db, team, production, thread_runner):
    bea, _rita, project = team
    at = open_page(app_test(), bea, "predict.py", project)
    assert not at.exception
    assert at.selectbox(key="predict_model").value == "employment"
    assert "needs these 8 columns: age, sex, region" in plain(at.caption)[0]
    uploader(at).set_value(("batch.csv", batch_head(40), "text/csv"))
    at.run()
    assert not at.exception
    assert plain(at.success) == ["batch.csv fits employment v1: checked all 40 rows."]
    assert any("**Ignored** (the model does not use them): person_id, employed" in m for m in plain(at.markdown))
    with db() as session:
        assert session.exec(select(PredictionBatch)).all() == []  # checking stores nothing

    at = finish_jobs(button(at, "Score all rows").click().run(), db)
    assert not at.exception
    assert plain(at.success)[0].startswith("Scored 40 rows of batch.csv with employment v1 (batch ")
    assert any(m.startswith("Predicted: ") for m in plain(at.markdown))
    assert [b.label for b in at.tabs[0].get("download_button")] == ["Download CSV", "Download Parquet"]
    assert uploader(at).value is None  # a fresh uploader for the next file
    with db() as session:
        batch = session.exec(select(PredictionBatch)).one()
    assert (batch.rows, batch.channel, batch.source) == (40, "file", "batch.csv")
    shown = at.dataframe[0].value
    assert list(shown.columns)[:3] == ["predicted_employed", "probability_false", "probability_true"]


def test_a_file_missing_a_column_is_refused_before_anything_is_scored(app_test, db, team, production):
    bea, _rita, project = team
    frame = pd.read_csv(io.BytesIO(batch_head(10))).drop(columns=["hours_usual"])
    at = open_page(app_test(), bea, "predict.py", project)
    uploader(at).set_value(("batch.csv", frame.to_csv(index=False).encode(), "text/csv"))
    at.run()
    assert not at.exception
    [error] = plain(at.error)
    assert error.startswith("The file lacks 1 column the model needs: hours_usual.")
    assert not [b for b in at.button if b.label == "Score all rows"]
    with db() as session:
        assert session.exec(select(PredictionBatch)).all() == []


def test_one_typed_record_gets_a_prediction_and_its_reasons(app_test, db, team, production):
    bea, _rita, project = team
    at = open_page(app_test(), bea, "predict.py", project)
    record = at.tabs[1]
    assert [field.label for field in record.get("number_input")] == ["age", "hours_usual", "household_size",
                                                                    "months_since_last_job"]
    at = button(at, "Predict").click().run()
    assert not at.exception
    shown = plain(at.tabs[1].markdown)
    assert any(line.startswith("**Prediction: ") and "** · probability 0." in line for line in shown)
    assert plain(at.tabs[1].info)[0].startswith("Predicted '")
    with db() as session:
        batch = session.exec(select(PredictionBatch)).one()
        assert (batch.channel, batch.rows) == ("form", 1)


def test_earlier_batches_are_listed(app_test, db, sqlite_settings, team, production):
    bea, _rita, project = team
    with db() as session:
        serving.score_file(session=session, settings=sqlite_settings, actor=bea, project_id=project.id,
                           model_name="employment", filename="old.csv", data=batch_head(12), keep_export=True)
    at = open_page(app_test(), bea, "predict.py", project)
    history = at.tabs[2]
    table = history.dataframe[0].value
    assert table[["Model", "Channel", "Source", "Rows"]].values.tolist() == [["employment v1", "file", "old.csv", 12]]
    assert [b.label for b in history.get("download_button")] == ["Download CSV", "Download Parquet"]
    assert page_links(at) == []


def test_a_workbooks_data_on_another_sheet_can_be_chosen(app_test, team, production):
    bea, _rita, project = team
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer) as workbook:
        pd.DataFrame({"About": ["Survey batch of May"]}).to_excel(workbook, sheet_name="Cover", index=False)
        pd.read_csv(io.BytesIO(batch_head(15))).to_excel(workbook, sheet_name="Data", index=False)
    at = open_page(app_test(), bea, "predict.py", project)
    uploader(at).set_value(("batch.xlsx", buffer.getvalue(),
                            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
    at.run()
    assert plain(at.error)[0].startswith("The file lacks 8 columns the model needs")
    at.selectbox(key="predict_sheet").select("Data").run()
    assert not at.exception
    assert plain(at.success) == ["batch.xlsx fits employment v1: checked all 15 rows."]
