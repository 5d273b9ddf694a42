"""Model results: guards, the tabs of a binary and a text run, thresholds, reproduction and other data."""

import json

import pytest
from sqlmodel import select

from core import datasets
from core.models import AuditEvent, RunCertificate, RunEvaluation, TrainingRun
from core.training import evaluation, runs
from tests.app.conftest import (
    button,
    finish_jobs,
    open_page,
    page_links,
    page_title,
    plain,
    sample,
    sample_head,
    texts,
)
from tests.factories import make_dataset_version, make_project, make_trained_run, make_user

LABOUR = "labour_force.csv"
SIMILAR = "labour_force_batch_similar.csv"


@pytest.fixture
def team(db):
    """A builder who owns the project and a reviewer."""
    with db() as session:
        bea = make_user(session, "bea")
        rita = make_user(session, "rita", roles=("reviewer",))
        return bea, rita, make_project(session, bea)


@pytest.fixture
def binary_run(db, sqlite_settings, team, tmp_path):
    """A yes/no model for ``employed`` on 800 survey rows, with sex marked sensitive."""
    bea, _rita, project = team
    with db() as session:
        version = make_dataset_version(session, sqlite_settings, bea, project, sample_head(tmp_path, LABOUR, 800),
                                       metadata=datasets.VersionMetadata(sensitive_columns=["sex"]))
        return make_trained_run(session, sqlite_settings, bea, version)


@pytest.fixture
def text_run(db, sqlite_settings, team, tmp_path):
    """A coding model: occupation codes from 800 free-text job descriptions."""
    bea, _rita, project = team
    with db() as session:
        version = make_dataset_version(session, sqlite_settings, bea, project,
                                       sample_head(tmp_path, "job_descriptions.csv", 800),
                                       dataset_name="job_descriptions")
        return make_trained_run(session, sqlite_settings, bea, version, target="code")


def stored_run(db, run_id: int) -> TrainingRun:
    with db() as session:
        return session.get(TrainingRun, run_id)


def chart_titles(block) -> list:
    """The title of every Altair chart in ``block`` (st.altair_chart is a vega_lite_chart element)."""
    return [json.loads(chart.proto.spec).get("title") for chart in block.get("vega_lite_chart")]


def test_results_need_an_open_project(app_test, team):
    bea, _rita, _project = team
    at = open_page(app_test(), bea, "run.py")

    assert not at.exception
    assert texts(at.info) == ["Open a project first: data, models and reviews always belong to a project."]
    assert page_links(at) == [("Go to Projects", "home")]


def test_without_runs_builders_are_pointed_to_train_and_reviewers_are_not(app_test, team):
    bea, rita, project = team
    for user, links in ((bea, [("Train a model", "train")]), (rita, [])):
        at = open_page(app_test(), user, "run.py", project)

        assert not at.exception
        assert page_title(at) == "Model results"
        assert texts(at.info) == ["No model has been trained in this project yet."]
        assert page_links(at) == links
        assert not at.tabs


def test_binary_run_shows_its_stored_test_metrics_subgroups_and_diagnostics(app_test, team, binary_run):
    _bea, rita, project = team
    at = open_page(app_test(), rita, "run.py", project)

    assert not at.exception
    assert [tab.label for tab in at.tabs] == ["Overview", "Subgroups", "Diagnostics", "Reproducibility",
                                              "Other data"]
    stored = binary_run.evaluation["metrics"]
    headline = {"ROC AUC": "roc_auc", "Accuracy": "accuracy", "Balanced accuracy": "balanced_accuracy", "F1": "f1"}
    assert [(metric.label, metric.value) for metric in at.metric] == [
        (label, f"{stored[name]['value']:.3f}") for label, name in headline.items()]
    overview = at.tabs[0].dataframe[0].value
    roc = overview[overview["Metric"] == evaluation.metric_label("roc_auc")].iloc[0]
    assert roc["95% interval from"] < roc["Value"] < roc["to"]
    leaderboard = at.tabs[0].dataframe[1].value
    assert len(leaderboard) == len(binary_run.finished_candidates) >= 1

    groups = at.tabs[1].dataframe[0].value
    assert set(groups["Group"]) == {"female", "male"} and set(groups["Column"]) == {"sex"}
    assert len(chart_titles(at.tabs[1])) == 1
    assert len(chart_titles(at.tabs[2])) == 4  # confusion, ROC, precision-recall, calibration
    assert at.slider(key="run_threshold").value == 0.5
    assert not [b for b in at.button if b.label.startswith("Use ")]  # reviewers read, builders decide
    assert "Reproduce this run" in [b.label for b in at.button]


def test_builder_saves_a_decision_threshold_and_it_is_audited(app_test, db, team, binary_run):
    bea, _rita, project = team
    at = open_page(app_test(), bea, "run.py", project)
    assert not [b for b in at.button if b.label.startswith("Use ")]  # nothing to save at the stored threshold

    at.slider(key="run_threshold").set_value(0.35).run()
    assert any(line.startswith("At 0.35: ") for line in plain(at.tabs[2].markdown))
    at = button(at, "Use 0.35 as the decision threshold").click().run()

    assert not at.exception
    assert not at.error
    assert stored_run(db, binary_run.id).decision_threshold == 0.35
    with db() as session:
        event = session.exec(select(AuditEvent).where(AuditEvent.action == "training.run.thresholds")).one()
    assert (event.actor_name, event.entity_id) == ("bea", str(binary_run.id))
    assert event.details["before"]["decision"] == 0.5 and event.details["after"]["decision"] == 0.35
    assert not [b for b in at.button if b.label.startswith("Use ")]


def test_text_run_renders_and_reach_95_sets_the_coding_threshold(app_test, db, team, text_run):
    bea, _rita, project = team
    tradeoff = text_run.evaluation["diagnostics"]["coding_tradeoff"]
    target = evaluation.threshold_for_accuracy(tradeoff, 0.95)
    assert target is not None
    at = open_page(app_test(), bea, "run.py", project)

    assert not at.exception
    assert at.metric[0].label == "Macro F1"
    assert at.metric[0].value == f"{text_run.evaluation['metrics']['f1_macro']['value']:.3f}"
    assert len(chart_titles(at.tabs[2])) == 2  # confusion and the coding trade-off
    assert texts(at.tabs[1].info) == [
        "No sensitive columns were marked for this data, so there are no subgroup results."]

    at.slider(key="run_coding_threshold").set_value(0.1).run()
    at = button(at, "Use 0.10").click().run()
    assert not at.exception
    assert stored_run(db, text_run.id).coding_threshold == 0.1
    assert button(at, "Use 0.10").disabled  # the page shows the stored threshold, nothing left to save

    at = button(at, "Reach 95% accuracy").click().run()

    assert not at.exception
    assert not at.error
    assert stored_run(db, text_run.id).coding_threshold == target


def test_reproducing_a_run_gives_identical_predictions(app_test, db, team, binary_run, thread_runner):
    _bea, rita, project = team
    at = open_page(app_test(), rita, "run.py", project)

    at = button(at, "Reproduce this run").click().run()
    assert not at.exception
    at = finish_jobs(at, db)

    assert not at.exception
    with db() as session:
        certificate = session.exec(select(RunCertificate)).one()
    assert (certificate.status, certificate.reproduced_hash) == ("passed", binary_run.prediction_hash)
    [message] = plain(at.success)
    assert message.startswith(f"Reproducibility certificate {certificate.id}: re-running gave identical predictions")


def test_evaluating_on_a_similar_batch_lists_it_with_its_rows(app_test, db, team, binary_run):
    bea, _rita, project = team
    at = open_page(app_test(), bea, "run.py", project)

    at.file_uploader(key="run_evaluate_upload").upload(SIMILAR, sample(SIMILAR), "text/csv").run()
    at = button(at, "Evaluate on this file").click().run()

    assert not at.exception
    assert not at.error
    with db() as session:
        [stored] = runs.list_evaluations(session=session, run_id=binary_run.id)
    assert (stored.source, stored.rows) == (SIMILAR, 1000)
    value = stored.result["metrics"]["roc_auc"]["value"]
    [line] = [text for text in plain(at.tabs[4].markdown) if text.startswith(f"**{SIMILAR}**")]
    assert line.startswith(f"**{SIMILAR}** (1,000 rows, ") and f"ROC AUC {value:.3f} (95% interval " in line


def test_a_file_missing_a_column_is_refused_in_plain_words(app_test, db, team, binary_run):
    bea, _rita, project = team
    at = open_page(app_test(), bea, "run.py", project)
    lines = sample(SIMILAR).decode().splitlines()
    header = lines[0].split(",")
    dropped = header.index("hours_usual")
    without_hours = "\n".join(",".join(v for i, v in enumerate(line.split(",")) if i != dropped) for line in lines)

    at.file_uploader(key="run_evaluate_upload").upload("no_hours.csv", without_hours.encode(), "text/csv").run()
    at = button(at, "Evaluate on this file").click().run()

    assert not at.exception
    assert plain(at.error) == ["The file lacks column(s) the model needs: hours_usual."]
    with db() as session:
        assert session.exec(select(RunEvaluation)).all() == []
