"""Data contract: derive one from a version, edit its rules, save, and check new batches against it."""

import math

import pytest
from sqlmodel import select

from app import widgets
from core import datasets
from core.models import DataContract
from tests.app.conftest import SAMPLE_DATA, edit_table, open_page, page_links, plain, sample, texts
from tests.factories import make_dataset_version, make_project, make_user

DERIVE = "contract_derive"
SAVE = "contract_save"


@pytest.fixture
def labour(db, sqlite_settings):
    """Bea's project with version 1 of labour_force, and a reviewer."""
    with db() as session:
        bea = make_user(session, "bea")
        project = make_project(session, bea)
        rita = make_user(session, "rita", roles=("reviewer",))
        version = make_dataset_version(session, sqlite_settings, bea, project, SAMPLE_DATA / "labour_force.csv")
    return bea, rita, project, version


@pytest.fixture
def contract_1(db, sqlite_settings, labour):
    bea, _rita, _project, version = labour
    with db() as session:
        return datasets.save_contract(session=session, settings=sqlite_settings, actor=bea, version_id=version.id)


def stored_contracts(db) -> list[DataContract]:
    with db() as session:
        return session.exec(select(DataContract).order_by(DataContract.number)).all()


def rules(at) -> dict[str, dict]:
    """The contract editor's rows, by column."""
    return {row["column"]: row for row in at.data_editor[0].value.to_dict("records")}


def check_file(at, name: str, data: bytes):
    at.file_uploader(key="contract_upload").set_value((name, data, "text/csv"))
    return at.run()


def report_lines(at) -> list[str]:
    return [line for line in plain(at.main.markdown) if line.startswith("- :material/")]


def test_the_contract_needs_an_open_project(app_test, db):
    with db() as session:
        bea = make_user(session, "bea")
    at = open_page(app_test(), bea, "contract.py")

    assert not at.exception
    assert texts(at.info) == ["Open a project first: data, models and reviews always belong to a project."]
    assert page_links(at) == [("Go to Projects", "home")]


def test_a_project_without_data_points_to_the_data_page(app_test, db):
    with db() as session:
        bea = make_user(session, "bea")
        project = make_project(session, bea)
    at = open_page(app_test(), bea, "contract.py", project)

    assert not at.exception
    assert texts(at.info) == ["This project has no data yet."]
    assert page_links(at) == [("Upload data", "data")]


def test_builder_derives_the_first_contract_from_a_version(app_test, db, labour):
    bea, _rita, project, version = labour
    at = open_page(app_test(), bea, "contract.py", project)
    assert texts(at.info) == ["No contract yet. Derive one from a version above."]

    at = at.button(key=DERIVE).click().run()

    assert not at.exception
    assert texts(at.success) == ["Saved contract 1."]
    assert texts(at.subheader)[0] == "Contract 1"
    [contract] = stored_contracts(db)
    assert (contract.number, contract.based_on_version_id) == (1, version.id)
    shown = rules(at)
    assert (shown["age"]["type"], shown["age"]["min"], shown["age"]["max"]) == (
        "numeric", contract.content["columns"]["age"]["min"], contract.content["columns"]["age"]["max"])
    assert list(shown["sex"]["allowed_categories"]) == ["female", "male"]

    at.run()  # the message is shown once
    assert not at.success


def test_edited_rules_are_saved_as_the_next_contract(app_test, db, labour, contract_1):
    bea, _rita, project, _version = labour
    at = open_page(app_test(), bea, "contract.py", project)
    assert rules(at)["age"]["max"] > 60

    # Lower the age limit, and allow any region (an emptied list means no rule).
    edit_table(at, at.data_editor[0].key, {"age": {"max": 60}, "region": {"allowed_categories": []}})
    at = at.button(key=SAVE).click().run()

    assert not at.exception
    assert not at.error
    assert texts(at.success) == ["Saved contract 2."]
    assert texts(at.subheader)[0] == "Contract 2"
    first, second = stored_contracts(db)
    assert second.content["columns"]["age"]["max"] == 60
    assert second.content["columns"]["region"]["allowed_categories"] is None
    assert second.content["columns"]["sex"] == first.content["columns"]["sex"]
    assert second.content["reference"] == first.content["reference"]
    assert first.content["columns"]["age"]["max"] > 60  # contract 1 is kept as it was
    assert rules(at)["age"]["max"] == 60

    at = check_file(at, "labour_force_batch_similar.csv", sample("labour_force_batch_similar.csv"))

    assert plain(at.error) == ["labour_force_batch_similar.csv does not meet contract 2: 1 problem to fix."]
    assert report_lines(at)[0].startswith("- :material/error: **Problem:** Column 'age' has 90 value(s) outside "
                                          "the allowed range (from 13 to 60)")


def test_a_contradictory_edit_is_refused_and_nothing_is_saved(app_test, db, labour, contract_1):
    bea, _rita, project, _version = labour
    at = open_page(app_test(), bea, "contract.py", project)

    edit_table(at, at.data_editor[0].key, {"age": {"min": 70, "max": 60}})
    at = at.button(key=SAVE).click().run()

    assert not at.exception
    assert plain(at.error) == ["Column 'age': 'min' (70) is greater than 'max' (60)."]
    assert [c.number for c in stored_contracts(db)] == [1]


def test_a_batch_like_the_reference_meets_the_contract(app_test, labour, contract_1):
    bea, _rita, project, _version = labour
    at = open_page(app_test(), bea, "contract.py", project)

    at = check_file(at, "labour_force_batch_similar.csv", sample("labour_force_batch_similar.csv"))

    assert not at.exception
    assert plain(at.success) == ["labour_force_batch_similar.csv meets contract 1 (1,000 rows)."]
    assert not at.error
    assert report_lines(at) == []


def test_a_drifted_batch_fails_on_missing_hours_and_warns_about_shifts(app_test, labour, contract_1):
    bea, _rita, project, _version = labour
    at = open_page(app_test(), bea, "contract.py", project)

    at = check_file(at, "labour_force_batch_drifted.csv", sample("labour_force_batch_drifted.csv"))

    assert not at.exception
    assert plain(at.error) == ["labour_force_batch_drifted.csv does not meet contract 1: 1 problem to fix."]
    lines = report_lines(at)
    assert lines[0] == ("- :material/error: **Problem:** Column 'hours_usual' is empty in 20.0% of rows; "
                        "the contract allows at most 9.8%.")
    warned = [line for line in lines if line.startswith("- :material/warning: **Warning:** The values of column")]
    assert [line.split("'")[1] for line in warned] == ["age", "region", "education", "hours_usual"]
    assert len(lines) == 1 + len(warned)


def test_a_file_that_cannot_be_read_is_refused_in_plain_words(app_test, labour, contract_1):
    bea, _rita, project, _version = labour
    at = open_page(app_test(), bea, "contract.py", project)

    at = check_file(at, "empty.csv", b"")

    assert not at.exception
    assert plain(at.error) == ["'empty.csv' is empty. Upload a file with a header row and at least one row of data."]


def test_reviewer_reads_the_contract_and_checks_files_but_cannot_change_it(app_test, labour, contract_1):
    _bea, rita, project, _version = labour
    at = open_page(app_test(), rita, "contract.py", project)

    assert not at.exception
    assert texts(at.subheader)[0] == "Contract 1"
    assert plain(at.caption)[0].startswith("Saved by bea on ")
    assert not [b for b in at.button if b.key in (DERIVE, SAVE)]
    assert not [s for s in at.selectbox if s.key == "contract_base"]
    assert at.data_editor[0].proto.disabled
    at = check_file(at, "labour_force_batch_similar.csv", sample("labour_force_batch_similar.csv"))
    assert plain(at.success) == ["labour_force_batch_similar.csv meets contract 1 (1,000 rows)."]


def test_reviewer_is_not_invited_to_derive_a_contract(app_test, labour):
    _bea, rita, project, _version = labour
    at = open_page(app_test(), rita, "contract.py", project)

    assert not at.exception
    assert texts(at.info) == ["No contract yet."]
    assert not [b for b in at.button if b.key == DERIVE]


def test_empty_number_cells_from_the_editor_mean_no_rule():
    # Once a column of the editor holds a number, st.data_editor returns its empty cells as NaN.
    content = {"columns": {"sex": {"type": "categorical", "required": True, "allowed_categories": ["f", "m"],
                                   "min": None, "max": None, "max_missing_share": 0.05}},
               "reference": {"sex": {"method": "jensen-shannon"}}}
    [row] = widgets.contract_rows(content)
    edited = {**row, "min": math.nan, "max": math.nan}

    assert widgets.contract_from_rows(content, [edited]) == content
