"""Explanations: guards, the overall picture of a binary run, one record in plain words, and a text run's words."""

import json

import pytest

from core.training import runs
from tests.app.conftest import open_page, page_links, page_title, plain, sample_head, texts
from tests.factories import make_dataset_version, make_project, make_trained_run, make_user


@pytest.fixture
def team(db):
    """A builder who owns the project, and a reviewer."""
    with db() as session:
        bea = make_user(session, "bea")
        rita = make_user(session, "rita", roles=("reviewer",))
        return bea, rita, make_project(session, bea)


@pytest.fixture
def binary_run(db, sqlite_settings, team, tmp_path):
    """A yes/no model for ``employed`` on 600 survey rows (the tiny budget finishes logistic regression)."""
    bea, _rita, project = team
    with db() as session:
        version = make_dataset_version(session, sqlite_settings, bea, project,
                                       sample_head(tmp_path, "labour_force.csv", 600))
        return make_trained_run(session, sqlite_settings, bea, version)


def chart_titles(block) -> list:
    """The title of every Altair chart in ``block`` (st.altair_chart is a vega_lite_chart element)."""
    return [json.loads(chart.proto.spec).get("title") for chart in block.get("vega_lite_chart")]


def test_explanations_need_an_open_project(app_test, team):
    bea, _rita, _project = team
    at = open_page(app_test(), bea, "explain.py")

    assert not at.exception
    assert texts(at.info) == ["Open a project first: data, models and reviews always belong to a project."]
    assert page_links(at) == [("Go to Projects", "home")]


def test_without_a_trained_model_the_page_points_to_model_results(app_test, team):
    _bea, rita, project = team
    at = open_page(app_test(), rita, "explain.py", project)

    assert not at.exception
    assert page_title(at) == "Explanations"
    assert texts(at.info) == ["Explanations appear here once a model has been trained successfully in this project."]
    assert page_links(at) == [("Model results", "run")]
    assert not at.tabs


def test_the_overall_tab_shows_which_columns_matter_and_how_that_was_computed(app_test, db, team, binary_run):
    _bea, rita, project = team
    with db() as session:
        stored = runs.get_explanation(session=session, run_id=binary_run.id)
    at = open_page(app_test(), rita, "explain.py", project)

    assert not at.exception
    overall = at.tabs[0]
    assert overall.label == "The model overall"
    titles = chart_titles(overall)
    assert titles[:2] == ["Which columns matter most", "How each column pushes individual predictions"]
    assert len(titles) == 3  # importance, beeswarm, and the dependence plot of the chosen column
    captions = texts(overall.caption)
    assert captions[0] == (f"LinearExplainer on {stored.rows_explained:,} test records (seed {binary_run.seed}); "
                           "values on the log-odds scale. They add up to the model's output (checked).")
    # 8 input columns are always all in the top 10: the overlap would be 100 % whatever the folds say.
    assert captions[1] == ("Stability: not measured. The model has only 8 input columns, so all of them are in the "
                           "top 10 of every model refitted on 3 cross-validation folds.")
    top = list(stored.result["overall"])[0]
    assert at.selectbox(key="explain_dependence").value == top
    assert titles[2] == f"Effect of {top} by its value"


def test_one_record_is_explained_in_a_sentence_and_a_search_without_match_says_so(app_test, team, binary_run,
                                                                                   sqlite_settings):
    _bea, rita, project = team
    worst = runs.find_test_records(
        run=binary_run, test=runs.load_test_set(settings=sqlite_settings, run=binary_run)).iloc[0]
    at = open_page(app_test(), rita, "explain.py", project)

    record = at.tabs[1]
    assert not at.exception
    assert record.label == "One record"
    [message] = plain(record.info)
    predicted = worst["predicted"]
    assert message.startswith(f"Predicted '{predicted}' with probability 0.")  # the largest error comes first
    assert "The main reasons: " in message
    assert predicted != worst["actual"]
    assert chart_titles(record) == ["From the average prediction to this one"]

    at.text_input(key="explain_search").input("no record contains this").run()

    assert not at.exception
    assert texts(at.tabs[1].info) == ["No test record matches. Clear the search."]
    assert chart_titles(at.tabs[1]) == []


def test_a_text_model_shows_the_words_that_push_each_class(app_test, db, sqlite_settings, team, tmp_path):
    bea, _rita, project = team
    with db() as session:
        version = make_dataset_version(session, sqlite_settings, bea, project,
                                       sample_head(tmp_path, "job_descriptions.csv", 600),
                                       dataset_name="job_descriptions")
        run = make_trained_run(session, sqlite_settings, bea, version, target="code")
    at = open_page(app_test(), bea, "explain.py", project)

    assert not at.exception
    overall = at.tabs[0]
    assert "Words that push each class up or down" in [header.value for header in overall.subheader]
    first_class = run.classes[0]
    assert at.selectbox(key="explain_terms_class").value == first_class
    raises, lowers = overall.dataframe[-2].value, overall.dataframe[-1].value
    assert list(raises.columns) == ["Raises it", "Weight"] and (raises["Weight"] > 0).all() and len(raises)
    assert list(lowers.columns) == ["Lowers it", "Weight"] and (lowers["Weight"] < 0).all() and len(lowers)
    assert chart_titles(overall) == ["Which columns matter most"]  # free text has no beeswarm

    words = at.tabs[1].dataframe[-1].value  # the words of the explained record
    assert list(words.columns) == ["Word or n-gram", "Effect"] and len(words)
