"""Data: upload a file, check the guessed column types, save it as a version (a job), and the refusals."""

import pytest
from sqlmodel import select

from core import datasets
from core.models import DatasetVersion, DatasetVersionPublic, Job
from tests.app.conftest import (
    SAMPLE_DATA,
    button,
    edit_table,
    finish_jobs,
    open_page,
    page_links,
    plain,
    sample,
    texts,
)
from tests.factories import make_dataset_version, make_project, make_user

LABOUR = "labour_force.csv"
SAVE = "Save version"


@pytest.fixture
def bea_and_project(db):
    with db() as session:
        bea = make_user(session, "bea")
        return bea, make_project(session, bea)


def open_data(app_test, bea_and_project):
    bea, project = bea_and_project
    return open_page(app_test(), bea, "data.py", project)


def upload(at, name: str, data: bytes):
    """Put ``name`` in the uploader (replacing any file there) and run the page."""
    at.file_uploader(key="data_upload").set_value((name, data, "text/csv"))
    return at.run()


def column_types(at) -> dict[str, str]:
    rows = at.data_editor(key="data_columns").value
    return dict(zip(rows["column"], rows["type"], strict=True))


def stored_versions(db) -> list[DatasetVersionPublic]:
    with db() as session:
        ids = session.exec(select(DatasetVersion.id).order_by(DatasetVersion.id)).all()
        return [datasets.get_version(session=session, version_id=i) for i in ids]


def staged_files(settings) -> list:
    """Uploads waiting in $STEWARD_HOME/staging for a job: none once every job has ended."""
    staging = settings.home / "staging"
    return sorted(staging.iterdir()) if staging.exists() else []


def test_data_needs_an_open_project(app_test, db):
    with db() as session:
        bea = make_user(session, "bea")
    at = open_page(app_test(), bea, "data.py")

    assert not at.exception
    assert texts(at.info) == ["Open a project first: data, models and reviews always belong to a project."]
    assert page_links(at) == [("Go to Projects", "home")]
    assert not at.file_uploader


def test_reviewer_reads_but_cannot_upload(app_test, db):
    with db() as session:
        bea = make_user(session, "bea")
        project = make_project(session, bea)
        rita = make_user(session, "rita", roles=("reviewer",))
    at = open_page(app_test(), rita, "data.py", project)

    assert not at.exception
    assert texts(at.info) == ["Uploading data needs the builder role. You can read versions and profiles."]
    assert not at.file_uploader
    assert not [b for b in at.button if b.label == SAVE]


def test_builder_saves_an_upload_with_the_types_and_sensitive_columns_chosen(app_test, db, sqlite_settings,
                                                                            bea_and_project, thread_runner):
    at = upload(open_data(app_test, bea_and_project), LABOUR, sample(LABOUR))

    assert not at.exception
    assert "Detected encoding UTF-8 and separator ','." in plain(at.caption)
    preview = at.dataframe[0].value
    assert len(preview) == 20 and preview["person_id"].iloc[0] == "P000001"
    guessed = column_types(at)
    assert guessed["person_id"] == "identifier" and guessed["age"] == "numeric"
    assert guessed["household_size"] == "numeric" and guessed["employed"] == "boolean"

    edit_table(at, "data_columns", {"household_size": {"type": "categorical"}, "sex": {"sensitive": True},
                                    "region": {"sensitive": True}})
    at.text_input(key="data_name").input("Labour force (2025)")
    at.text_area(key="data_source").input("Synthetic survey")
    at.text_input(key="data_owner").input("Survey team")
    at = button(at, SAVE).click().run()

    assert not at.exception
    assert not at.error
    at = finish_jobs(at, db)

    assert not at.exception
    assert "Saved as version 1 of Labour force (2025) (5,000 rows)." in plain(at.success)
    assert ("See its profile", "datasets") in page_links(at)
    [version] = stored_versions(db)
    assert (version.dataset_name, version.number, version.rows, version.columns) == (
        "Labour force (2025)", 1, 5000, 10)
    assert version.types == {**guessed, "household_size": "categorical"}
    assert version.sensitive_columns == ["sex", "region"]
    assert (version.meta["source"], version.meta["owner"]) == ("Synthetic survey", "Survey team")
    assert staged_files(sqlite_settings) == []


def test_the_same_file_uploaded_again_is_not_stored_twice(app_test, db, bea_and_project, thread_runner):
    first = upload(open_data(app_test, bea_and_project), LABOUR, sample(LABOUR))
    first = finish_jobs(button(first, SAVE).click().run(), db)
    assert "Saved as version 1 of labour_force (5,000 rows)." in plain(first.success)

    again = upload(open_data(app_test, bea_and_project), LABOUR, sample(LABOUR))  # another visit, same file
    again = finish_jobs(button(again, SAVE).click().run(), db)

    assert not again.exception
    assert plain(again.info) == ["This content is already version 1 of labour_force: nothing new was stored."]
    assert not [s for s in plain(again.success) if s.startswith("Saved as")]
    assert [v.number for v in stored_versions(db)] == [1]


def test_see_its_profile_opens_the_dataset_just_saved(app_test, db, sqlite_settings, bea_and_project,
                                                     thread_runner):
    bea, project = bea_and_project
    with db() as session:  # listed first on the profile page
        make_dataset_version(session, sqlite_settings, bea, project, SAMPLE_DATA / "job_descriptions.csv",
                             dataset_name="Employment codes")
    at = upload(open_data(app_test, bea_and_project), LABOUR, sample(LABOUR))
    at = finish_jobs(button(at, SAVE).click().run(), db)
    assert ("See its profile", "datasets") in page_links(at)

    at = at.switch_page("../pages/datasets.py").run()

    assert not at.exception
    assert at.selectbox(key="datasets_dataset").value.name == "labour_force"
    assert at.dataframe[0].value["File"].tolist() == [LABOUR]


def test_a_second_file_starts_from_its_own_columns_and_name(app_test, db, bea_and_project, thread_runner):
    at = upload(open_data(app_test, bea_and_project), LABOUR, sample(LABOUR))
    edit_table(at, "data_columns", {"age": {"type": "categorical"}, "sex": {"sensitive": True}})
    at.run()

    # The wrong file first, then the right one: nothing chosen for the first may stick to the second.
    at = upload(at, "house_prices.csv", sample("house_prices.csv"))
    assert at.text_input(key="data_name").value == "house_prices"
    at = finish_jobs(button(at, SAVE).click().run(), db)

    assert not at.exception
    assert "Saved as version 1 of house_prices (3,000 rows)." in plain(at.success)
    [version] = stored_versions(db)
    assert version.dataset_name == "house_prices"
    assert version.types["floor_area_m2"] == "numeric"  # the same row as 'age' in the first file
    assert version.sensitive_columns == []


@pytest.mark.parametrize(("name", "data", "message"), [
    ("empty.csv", b"", "'empty.csv' is empty. Upload a file with a header row and at least one row of data."),
    ("ragged.csv", b"a,b,c\n1,2,3\n4,5\n6,7,8\n",
     "Line 3 has 2 values but the header has 3 columns (separator ','). Check that line for a missing value or "
     "separator, fix it and upload again."),
], ids=["empty", "ragged"])
def test_a_file_that_cannot_be_read_is_refused_in_plain_words(app_test, db, sqlite_settings, bea_and_project,
                                                              name, data, message):
    at = upload(open_data(app_test, bea_and_project), name, data)

    assert not at.exception
    assert plain(at.error) == [message]
    assert not [b for b in at.button if b.label == SAVE]
    assert stored_versions(db) == []
    assert staged_files(sqlite_settings) == []


def test_text_in_a_column_guessed_numeric_fails_the_save_and_keeps_nothing(app_test, db, sqlite_settings,
                                                                          bea_and_project, thread_runner):
    # Mostly numbers is guessed numeric; the save then names the stray value and what to do about it.
    rows = [f"R{i:03d},{i * 1.5}" for i in range(300)]
    rows[250] = "R250,unknown"
    data = ("record,amount\n" + "\n".join(rows) + "\n").encode()
    at = upload(open_data(app_test, bea_and_project), "amounts.csv", data)
    assert column_types(at) == {"record": "identifier", "amount": "numeric"}

    at = finish_jobs(button(at, SAVE).click().run(), db)

    assert not at.exception
    assert plain(at.error) == [
        "Saving amounts.csv as amounts failed: Column 'amount' is set to numeric, but 1 value(s) are not numbers "
        "(e.g. 'unknown'). Set it to categorical or text, or fix the values."
    ]
    assert not [s for s in plain(at.success) if s.startswith("Saved as")]
    with db() as session:
        assert session.exec(select(Job.status)).all() == ["failed"]
    assert stored_versions(db) == []
    assert staged_files(sqlite_settings) == []


def test_a_sensitive_column_that_is_ignored_is_refused_before_anything_is_staged(app_test, db, sqlite_settings,
                                                                                bea_and_project, thread_runner):
    at = upload(open_data(app_test, bea_and_project), LABOUR, sample(LABOUR))
    edit_table(at, "data_columns", {"sex": {"type": "ignore", "sensitive": True}})

    at = button(at, SAVE).click().run()

    assert not at.exception
    assert plain(at.error) == ["Sensitive columns must be columns that are kept: sex."]
    with db() as session:
        assert session.exec(select(Job)).all() == []
    assert staged_files(sqlite_settings) == []
