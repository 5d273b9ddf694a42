"""Train: guards and role gating, training started from the page and followed to its results, refusals."""

import pytest
from sqlmodel import select

from core import datasets
from core.models import Job, RunStatus, TrainingRun
from core.training import runs
from tests.app.conftest import (
    button,
    finish_jobs,
    logged_in,
    open_page,
    page_links,
    page_title,
    plain,
    sample_head,
    texts,
)
from tests.factories import make_admin, make_dataset_version, make_project, make_user

START = "Start training"


@pytest.fixture
def team(db):
    """A builder who owns the project and a reviewer."""
    with db() as session:
        bea = make_user(session, "bea")
        rita = make_user(session, "rita", roles=("reviewer",))
        return bea, rita, make_project(session, bea)


@pytest.fixture
def labour(db, sqlite_settings, team, tmp_path):
    """800 rows of the labour force survey, with sex marked sensitive."""
    bea, _rita, project = team
    with db() as session:
        return make_dataset_version(session, sqlite_settings, bea, project,
                                    sample_head(tmp_path, "labour_force.csv", 800),
                                    metadata=datasets.VersionMetadata(sensitive_columns=["sex"]))


def stored_runs(db) -> list[TrainingRun]:
    with db() as session:
        return session.exec(select(TrainingRun)).all()


def test_train_needs_an_open_project(app_test, team):
    bea, _rita, _project = team
    at = open_page(app_test(), bea, "train.py")

    assert not at.exception
    assert texts(at.info) == ["Open a project first: data, models and reviews always belong to a project."]
    assert page_links(at) == [("Go to Projects", "home")]


def test_reviewer_cannot_open_train(app_test, team):
    _bea, rita, _project = team
    at = logged_in(app_test(), rita).run()

    assert not at.exception
    with pytest.raises(ValueError):
        at.switch_page("../pages/train.py")


def test_without_data_builders_and_admins_are_pointed_to_the_data_page(app_test, db, team):
    bea, _rita, project = team
    with db() as session:
        ada = make_admin(session, "ada")
    for user in (bea, ada):
        at = open_page(app_test(), user, "train.py", project)

        assert not at.exception
        assert page_title(at) == "Train"
        assert texts(at.info) == ["This project has no data yet."]
        assert page_links(at) == [("Upload data", "data")]
        assert not [b for b in at.button if b.label == START]


def test_builder_starts_training_and_follows_it_to_the_results(app_test, db, team, labour, thread_runner,
                                                               monkeypatch):
    monkeypatch.setitem(runs.BUDGET_PRESETS, "quick", 1)  # a second is enough for 800 rows
    bea, _rita, project = team
    at = open_page(app_test(), bea, "train.py", project)
    assert not at.exception
    assert at.selectbox(key="train_target").value == "employed"
    assert at.selectbox(key="train_task").value == "binary"
    assert "Identifier columns are never used as inputs: person_id." in plain(at.warning)

    at.radio(key="train_budget").set_value("quick")
    at = button(at, START).click().run()
    assert not at.exception
    assert not at.error
    at = finish_jobs(at, db)

    assert not at.exception
    [run] = stored_runs(db)
    assert (run.status, run.target, run.task, run.config["budget_seconds"]) == (RunStatus.succeeded, "employed",
                                                                                "binary", 1.0)
    with db() as session:
        assert session.get(Job, run.job_id).kind == "training.run"
    assert f"Training run {run.id} (employed): done." in plain(at.success)
    assert at.subheader[0].value == f"Run {run.id}: predicting employed"
    leaderboard = at.dataframe[0].value
    best_first = sorted(run.leaderboard, key=lambda row: -row["mean"])  # ROC AUC: greater is better
    assert list(leaderboard["Model"]) == [row["description"] for row in best_first]
    assert list(leaderboard[""]).count("chosen") == 1
    assert ("See the results", "run") in page_links(at)


def test_an_identifier_target_is_refused_in_plain_words(app_test, db, team, labour):
    bea, _rita, project = team
    at = open_page(app_test(), bea, "train.py", project)

    at.selectbox(key="train_target").select("person_id").run()

    assert not at.exception
    assert plain(at.error) == ["'person_id' is an identifier (different in every row), so there is nothing to "
                               "learn. Choose the column whose value you want to predict."]
    assert not [b for b in at.button if b.label == START]
    assert stored_runs(db) == []


def test_grouped_validation_without_a_group_column_is_refused(app_test, db, team, labour, thread_runner):
    bea, _rita, project = team
    at = open_page(app_test(), bea, "train.py", project)

    at.selectbox(key="train_cv").select("grouped")
    at = button(at, START).click().run()

    assert not at.exception
    assert plain(at.error) == ["Grouped or time-ordered validation needs the column that holds the groups or the "
                               "times. Choose one."]
    assert stored_runs(db) == []
