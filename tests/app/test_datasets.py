"""Versions and profiles: a dataset's history, one version's profile and charts, and two versions compared."""

import json

import pytest

from core import datasets
from core.artifacts import ArtifactStore
from tests.app.conftest import SAMPLE_DATA, open_page, page_links, plain, texts
from tests.factories import make_dataset_version, make_project, make_user

LABOUR = SAMPLE_DATA / "labour_force.csv"
DRIFTED = SAMPLE_DATA / "labour_force_batch_drifted.csv"


@pytest.fixture
def labour(db, sqlite_settings):
    """Bea's project with version 1 of labour_force (sex marked sensitive), and a reviewer."""
    with db() as session:
        bea = make_user(session, "bea")
        project = make_project(session, bea)
        rita = make_user(session, "rita", roles=("reviewer",))
        meta = datasets.VersionMetadata(owner="Survey team", sensitive_columns=["sex"])
        version = make_dataset_version(session, sqlite_settings, bea, project, LABOUR, metadata=meta)
    return bea, rita, project, version


def add_drifted_version(db, settings, labour):
    bea, _rita, project, _version = labour
    with db() as session:
        return make_dataset_version(session, settings, bea, project, DRIFTED)


def chart_titles(block) -> list[str]:
    """The title of every Altair chart shown (st.altair_chart is a vega_lite_chart element)."""
    return [json.loads(chart.proto.spec).get("title") for chart in block.get("vega_lite_chart")]


def test_versions_need_an_open_project(app_test, db):
    with db() as session:
        bea = make_user(session, "bea")
    at = open_page(app_test(), bea, "datasets.py")

    assert not at.exception
    assert texts(at.info) == ["Open a project first: data, models and reviews always belong to a project."]
    assert page_links(at) == [("Go to Projects", "home")]


def test_a_project_without_data_points_to_the_data_page(app_test, db):
    with db() as session:
        bea = make_user(session, "bea")
        project = make_project(session, bea)
    at = open_page(app_test(), bea, "datasets.py", project)

    assert not at.exception
    assert texts(at.info) == ["This project has no data yet."]
    assert page_links(at) == [("Upload data", "data")]


def test_the_history_lists_every_version_newest_first(app_test, db, sqlite_settings, labour):
    add_drifted_version(db, sqlite_settings, labour)
    bea, _rita, project, first = labour
    at = open_page(app_test(), bea, "datasets.py", project)

    assert not at.exception
    assert at.selectbox(key="datasets_dataset").options == ["labour_force (2 versions)"]
    history = at.dataframe[0].value
    assert [(r["Version"], r["Rows"], r["File"], r["By"]) for r in history.to_dict("records")] == [
        (2, 1000, "labour_force_batch_drifted.csv", "bea"), (1, 5000, "labour_force.csv", "bea")]
    assert history["SHA-256"].iloc[1] == first.sha256


def test_a_reviewer_reads_a_profile_with_its_warnings_and_a_chart_per_column(app_test, labour):
    _bea, rita, project, version = labour
    at = open_page(app_test(), rita, "datasets.py", project)

    assert not at.exception
    profile = at.tabs[0]
    assert [(m.label, m.value) for m in profile.metric] == [
        ("Rows", "5,000"), ("Columns", "10"), ("Duplicate rows", "0"), ("Sensitive columns", "1")]
    assert f"SHA-256 {version.sha256} · from labour_force.csv · saved by bea" in plain(profile.caption)[0]
    assert "Owner: Survey team\nSensitive: sex" in profile.text[0].value
    assert plain(profile.warning) == [
        "Column 'person_id' identifies rows: it is kept for matching records but never used to train a model. "
        "If it can point to a person, check that you need to keep it."]
    assert at.selectbox(key="datasets_column").value == "age"  # opens on a column with a chart
    assert chart_titles(profile) == ["Distribution of age"]

    at = at.selectbox(key="datasets_column").select("person_id").run()
    assert not at.exception
    assert chart_titles(at.tabs[0]) == []  # every identifier is different: nothing to count
    assert "identifier" in plain(at.tabs[0].caption)[-1]

    at = at.selectbox(key="datasets_column").select("region").run()
    assert chart_titles(at.tabs[0]) == ["Most frequent values of region"]


def test_one_version_cannot_be_compared(app_test, labour):
    bea, _rita, project, _version = labour
    at = open_page(app_test(), bea, "datasets.py", project)

    assert not at.exception
    assert texts(at.tabs[1].info) == ["Upload a second version of this dataset to compare versions."]


def test_two_versions_compared_show_rows_and_the_shift_of_each_column(app_test, db, sqlite_settings, labour):
    add_drifted_version(db, sqlite_settings, labour)
    bea, _rita, project, _version = labour
    at = open_page(app_test(), bea, "datasets.py", project)

    assert not at.exception
    compare = at.tabs[1]
    assert (at.selectbox(key="datasets_old").value.number, at.selectbox(key="datasets_new").value.number) == (1, 2)
    assert plain(compare.markdown) == ["Rows: 5,000 → 1,000."]
    drift = {r["Column"]: r for r in compare.dataframe[0].value.to_dict("records")}
    assert (drift["age"]["Method"], drift["age"]["Shifted"]) == ("wasserstein", "yes")
    assert (drift["sex"]["Method"], drift["sex"]["Shifted"]) == ("jensen-shannon", "no")
    assert drift["person_id"]["Method"] == "not compared"
    assert (drift["hours_usual"]["Missing before"], drift["hours_usual"]["Missing now"]) == ("4.8%", "20.0%")
    assert chart_titles(compare) == ["Distribution shift per column"]

    at = at.selectbox(key="datasets_key").select("person_id").run()

    assert not at.exception
    assert plain(at.tabs[1].markdown) == ["Rows: 5,000 → 1,000.",
                                          "Matched by person_id: 1,000 rows added, 5,000 removed."]


def test_a_damaged_stored_file_is_reported_not_compared(app_test, db, sqlite_settings, labour):
    add_drifted_version(db, sqlite_settings, labour)
    bea, _rita, project, first = labour
    ArtifactStore(sqlite_settings.artifacts_path).path_for(first.parquet_sha256).write_bytes(b"changed on disk")
    at = open_page(app_test(), bea, "datasets.py", project)

    assert not at.exception
    [error] = plain(at.tabs[1].error)
    assert error.startswith(f"The stored file {first.parquet_sha256[:12]}… was changed or damaged on disk")
    assert not at.tabs[1].dataframe
