"""SHAP explanations: grouped back to input columns, additive, seeded, in plain words, and kept in the store."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.neighbors import KNeighborsClassifier
from sqlmodel import select

from core import charts, explain
from core.cli import cli
from core.data.reading import ReadLimits, ReadOptions, read_path
from core.data.schema import apply_types, infer_types
from core.models import Explanation
from core.training import runs
from core.training.candidates import Candidate, build_ensemble, build_pipeline, candidates_for
from core.training.features import model_types
from tests.factories import make_dataset_version, make_project, make_trained_run, make_user

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
ROWS = 1500
SEED = 7


@cache
def canonical(name: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """The first rows of a sample file as a dataset version stores them (types inferred, then applied)."""
    raw = read_path(SAMPLES / name, name, limits=ReadLimits(max_bytes=50_000_000), options=ReadOptions(nrows=ROWS))
    types = {column: str(kind) for column, kind in infer_types(raw.frame, raw.decimal).items()}
    return apply_types(raw.frame, types, raw.decimal), types


@cache
def problem(name: str, target: str, task: str, keep: tuple[str, ...] = ()):
    """(inputs, labels, input types), prepared as a training run prepares them."""
    frame, types = canonical(name)
    labels = runs._labels(frame[target], task)
    known = labels.notna() & (labels.isin(keep) if keep else True)
    features = model_types(types, target)
    return frame.loc[known, list(features)], labels[known], features


def candidate(task: str, name: str) -> Candidate:
    return next(c for c in candidates_for(task) if c.name == name)


KNN = Candidate("nearest_neighbours", "5 nearest neighbours (no tree or linear explainer fits it)",
                lambda seed: KNeighborsClassifier(), scale=True)


@cache
def fitted(task: str, name: str):
    """A fitted Steward pipeline, and the inputs it was fitted on."""
    if task == "regression":
        x, y, features = problem("house_prices.csv", "price_eur", task)
    elif task == "multiclass":
        x, y, features = problem("labour_force.csv", "education", task,
                                 keep=("lower_secondary", "upper_secondary", "tertiary"))
    elif task == "text":
        x, y, features = problem("job_descriptions.csv", "code", task)
    else:
        x, y, features = problem("labour_force.csv", "employed", task)
    chosen = KNN if name == KNN.name else candidate(task, name)
    return build_pipeline(chosen, features, SEED).fit(x, y), x


@cache
def fitted_average(task: str, scale: str, names: tuple[str, ...]):
    """An averaging ensemble of Steward candidates, fitted on the first 600 of the inputs ``fitted`` uses."""
    _single, x = fitted(task, names[0])
    y = {"regression": lambda: problem("house_prices.csv", "price_eur", task)[1],
         "multiclass": lambda: problem("labour_force.csv", "education", task,
                                       keep=("lower_secondary", "upper_secondary", "tertiary"))[1],
         "text": lambda: problem("job_descriptions.csv", "code", task)[1],
         "binary": lambda: problem("labour_force.csv", "employed", task)[1]}[task]()
    features = dict(_single.named_steps["prepare"].types)
    members = [candidate(task, name) for name in names]
    x, y = x.head(600), y.loc[x.index[:600]]
    return build_ensemble(members, features, SEED, task=task, scale=scale).fit(x, y), x


def classes_of(pipeline) -> list[str] | None:
    model = pipeline.named_steps["model"]
    return [str(c) for c in model.classes_] if hasattr(model, "classes_") else None


def global_view(task: str, name: str, rows: int = 300, seed: int = SEED) -> dict:
    pipeline, x = fitted(task, name)
    return explain.explain_global(pipeline, x, task=task, classes=classes_of(pipeline), seed=seed, rows=rows)


def record_view(task: str, name: str, position: int = 0) -> dict:
    pipeline, x = fitted(task, name)
    return explain.explain_record(pipeline, x.iloc[[position]], x, task=task, classes=classes_of(pipeline), seed=SEED)


# ── grouping back to the input columns ──────────────────────────────────────────────────────────────


def test_every_transformed_column_belongs_to_the_input_column_it_came_from():
    pipeline, x = fitted("binary", "logistic_regression")
    names = list(pipeline.named_steps["preprocess"].get_feature_names_out())
    groups = dict(zip(names, explain.feature_groups(pipeline), strict=True))

    assert set(groups.values()) == set(x.columns)  # every input column is covered, nothing else appears
    assert groups["categorical__region_North"] == "region"  # one-hot
    assert groups["categorical__education_(missing)"] == "education"  # one-hot of the imputed "missing" level
    assert groups["numeric__missingindicator_months_since_last_job"] == "months_since_last_job"
    assert groups["numeric__hours_usual"] == "hours_usual"


def test_grouped_values_are_the_exact_sums_of_the_transformed_columns_values():
    pipeline, x = fitted("binary", "gradient_boosting")
    groups = explain.feature_groups(pipeline)
    values, _base = explain.make_explainer(pipeline, x.head(50), SEED).explain(
        explain._transformer(pipeline)(x))  # (rows, transformed columns, 1 log-odds output)
    by_hand = {column: np.abs(values[:, groups == column, 0].sum(axis=1)).mean() for column in x.columns}

    importance = global_view("binary", "gradient_boosting", rows=len(x))["importance"]["true"]

    assert set(importance) == set(x.columns)
    for column, value in importance.items():
        assert value == pytest.approx(by_hand[column], abs=1e-12)


def test_one_records_step_per_column_is_the_sum_over_its_transformed_columns():
    pipeline, x = fitted("regression", "ridge")
    background = x.sample(explain.BACKGROUND_ROWS, random_state=SEED)
    values, _base = explain.make_explainer(pipeline, background, SEED).explain(
        explain._transformer(pipeline)(x.iloc[[0]]))
    groups = explain.feature_groups(pipeline)

    steps = {s["feature"]: s["contribution"] for s in record_view("regression", "ridge")["steps"]}

    assert (groups == "region").sum() > 1  # a one-hot column really is several transformed columns
    for column, contribution in steps.items():
        assert contribution == pytest.approx(values[0, groups == column, 0].sum(), rel=1e-9, abs=1e-9)


# ── additivity and the explainer each model gets ────────────────────────────────────────────────────


@pytest.mark.parametrize(("task", "name", "method", "scale"), [
    ("binary", "gradient_boosting", "TreeExplainer", "log-odds"),
    ("binary", "logistic_regression", "LinearExplainer", "log-odds"),
    ("regression", "ridge", "LinearExplainer", "value"),
    ("binary", "random_forest", "TreeExplainer", "probability"),
])
def test_base_value_plus_contributions_is_the_models_output(task, name, method, scale):
    pipeline, x = fitted(task, name)
    model, rows = pipeline.named_steps["model"], explain._transformer(pipeline)(x.head(60))
    explainer = explain.make_explainer(pipeline, x.sample(explain.BACKGROUND_ROWS, random_state=SEED), SEED)
    values, base = explainer.explain(rows)  # (rows, transformed columns, outputs), (rows, outputs)
    output = {"log-odds": lambda: model.decision_function(rows), "probability": lambda: model.predict_proba(rows)[:, 1],
              "value": lambda: model.predict(rows)}[scale]()

    assert (explainer.method, explainer.scale) == (method, scale)
    assert np.abs(base[:, -1] + values[:, :, -1].sum(axis=1) - output).max() < 1e-6 * max(1, np.abs(output).max())
    assert np.ptp(output) > 0.1 * max(1, np.abs(output).max())  # the model does vary: not trivially additive
    found = global_view(task, name, rows=60)
    assert (found["method"], found["scale"], found["additive"]) == (method, scale, True)
    assert found["additivity_max_error"] < 1e-6 * max(1, np.abs(output).max())


def test_a_model_without_a_dedicated_explainer_gets_the_permutation_explainer_and_still_adds_up():
    found = global_view("binary", KNN.name, rows=8)
    local = record_view("binary", KNN.name)

    assert (found["method"], found["scale"]) == ("PermutationExplainer", "probability")
    assert found["rows_explained"] == 8 and found["additive"] is True
    assert found["additivity_max_error"] < 1e-3
    assert local["method"] == "PermutationExplainer"
    assert local["base"] + sum(s["contribution"] for s in local["steps"]) == pytest.approx(local["output"], abs=1e-3)


def test_the_same_seed_gives_the_same_numbers_and_the_seed_is_recorded():
    first, again = global_view("binary", KNN.name, rows=8), global_view("binary", KNN.name, rows=8)
    linear = global_view("binary", "logistic_regression", seed=3)

    assert first == again  # the permutations are seeded too
    assert first["seed"] == SEED and linear["seed"] == 3
    assert linear == global_view("binary", "logistic_regression", seed=3)
    assert global_view("binary", "logistic_regression", seed=4)["overall"] != linear["overall"]  # another sample


def test_regression_beeswarm_keeps_the_direction_of_each_effect():
    found = global_view("regression", "ridge")
    area = [p for p in found["beeswarm"] if p["feature"] == "floor_area_m2" and p["value"] is not None]

    assert min(p["shap"] for p in area) < 0 < max(p["shap"] for p in area)
    larger, smaller = max(area, key=lambda p: p["value"]), min(area, key=lambda p: p["value"])
    assert larger["shap"] > smaller["shap"]  # a bigger dwelling raises the predicted price


# ── one record ──────────────────────────────────────────────────────────────────────────────────────


def test_the_sentence_names_the_prediction_then_the_main_reasons():
    steps = [{"feature": "hours_usual", "value": 40.0, "contribution": 0.21},
             {"feature": "region", "value": "North", "contribution": 0.05},
             {"feature": "age", "value": 23.5, "contribution": -0.08},
             {"feature": "urban", "value": None, "contribution": 0.0}]

    assert explain.sentence("binary", "yes", 0.8249, steps) == (
        "Predicted 'yes' with probability 0.82. The main reasons: hours usual 40 (raises it by 0.21), "
        "region North (raises it by 0.05); age 23.50 lowers it by 0.08.")
    assert explain.sentence("binary", "no", 0.61, steps[2:3]) == (
        "Predicted 'no' with probability 0.61. The main reasons: age 23.50 lowers it by 0.08.")
    assert explain.sentence("regression", None, 251234.5, [{"feature": "floor_area_m2", "value": 120.0,
                                                            "contribution": 23752.4}]) == (
        "Predicted 251,234.50. The main reasons: floor area m2 120 (raises it by 23,752).")


@pytest.mark.parametrize("name", ["gradient_boosting", "logistic_regression", "random_forest"])
def test_a_classifiers_waterfall_adds_up_from_the_base_probability_to_the_predicted_one(name):
    pipeline, x = fitted("binary", name)
    local = record_view("binary", name, position=3)
    probability = pipeline.predict_proba(x.iloc[[3]])[0]
    chart_rows = charts.waterfall_chart(local).to_dict()["data"]["values"]

    assert local["probability"] == pytest.approx(probability.max())
    assert local["predicted"] == str(pipeline.classes_[probability.argmax()])
    assert 0 < local["base"] < 1 and local["output"] == pytest.approx(probability.max())
    assert local["base"] + sum(s["contribution"] for s in local["steps"]) == pytest.approx(local["output"], abs=1e-9)
    assert [s["feature"] for s in local["steps"]] and set(s["feature"] for s in local["steps"]) == set(x.columns)
    assert re.fullmatch(rf"Predicted '{local['predicted']}' with probability 0\.\d\d\. The main reasons: .+\.",
                        local["sentence"])
    last = chart_rows[-1]  # the chart ends where the record's prediction is
    assert last["label"] == "this prediction" and last["end"] == pytest.approx(local["output"], abs=1e-9)


def test_multiclass_models_get_importances_per_class():
    found = global_view("multiclass", "gradient_boosting")
    classes = ["lower_secondary", "tertiary", "upper_secondary"]

    assert found["outputs"] == classes and list(found["importance"]) == classes
    assert all(set(found["importance"][label]) == set(found["overall"]) for label in classes)
    assert found["additive"] is True
    # Not the same ranking for every class: each class has its own picture.
    assert len({tuple(list(found["importance"][label])[:3]) for label in classes}) > 1


@pytest.mark.parametrize(("name", "records"), [("gradient_boosting", 15), ("logistic_regression", 30)])
def test_multiclass_contributions_add_up_and_never_contradict_the_classes_log_odds(name, records):
    pipeline, x = fitted("multiclass", name)
    groups, columns = explain.feature_groups(pipeline), list(x.columns)
    background = x.sample(explain.BACKGROUND_ROWS, random_state=SEED)
    for position in range(records):
        local = record_view("multiclass", name, position)
        values, _ = explain.make_explainer(pipeline, background, SEED).explain(
            explain._transformer(pipeline)(x.iloc[[position]]))
        margins = np.stack([values[0, groups == c, :].sum(axis=0) for c in columns])  # (columns, classes)
        k = list(pipeline.classes_).index(local["predicted"])
        assert local["base"] + sum(s["contribution"] for s in local["steps"]) == pytest.approx(local["output"])
        for step in local["steps"]:
            # A column that raises the predicted class's margin above every other class's margin raises its
            # probability: the rescaling to probabilities must not turn it into "lowers it".
            if np.all(margins[columns.index(step["feature"]), k] >= margins[columns.index(step["feature"])]):
                assert step["contribution"] >= -1e-12, (position, step)


@pytest.mark.parametrize(("task", "scale", "names"), [
    ("binary", "log-odds", ("gradient_boosting", "logistic_regression")),
    ("binary", "probability", ("random_forest", "extra_trees")),
    ("regression", "value", ("gradient_boosting", "ridge", "random_forest")),
    ("multiclass", "log-odds", ("gradient_boosting", "logistic_regression")),
])
def test_an_averages_values_are_its_members_mean_and_add_up_to_its_output(task, scale, names):
    pipeline, x = fitted_average(task, scale, names)
    rows, columns = x.head(40), list(x.columns)
    background = x.sample(explain.BACKGROUND_ROWS, random_state=SEED)
    values, base = explain.make_explainer(pipeline, background, SEED).explain(explain._transformer(pipeline)(rows))
    own = []
    for member in explain.members(pipeline):
        member_values, member_base = explain.make_explainer(member, background, SEED).explain(
            explain._transformer(member)(rows))
        own.append((explain._grouped(member_values, explain.feature_groups(member), columns), member_base))

    assert values.shape[:2] == (40, len(columns))  # one value per input column
    assert np.allclose(values, np.mean([v for v, _ in own], axis=0), rtol=1e-12, atol=1e-12)
    assert np.allclose(base, np.mean([b for _, b in own], axis=0), rtol=1e-12)
    assert len({tuple(np.round(v[:, :, -1].sum(axis=1), 6)) for v, _ in own}) == len(names)  # members do differ

    classes = classes_of(pipeline)
    found = explain.explain_global(pipeline, x, task=task, classes=classes, seed=SEED, rows=40)
    assert (found["method"], found["scale"], found["additive"]) == (
        f"Average of {len(names)} models' SHAP values", scale, True)
    assert len(found["member_methods"]) == len(names) and set(found["overall"]) == set(columns)
    local = explain.explain_record(pipeline, x.iloc[[5]], x, task=task, classes=classes, seed=SEED)
    output = pipeline.predict(x.iloc[[5]])[0] if task == "regression" else pipeline.predict_proba(x.iloc[[5]]).max()
    assert local["output"] == pytest.approx(output)
    assert local["base"] + sum(s["contribution"] for s in local["steps"]) == pytest.approx(output, abs=1e-9)


def test_a_text_average_names_the_words_its_members_weigh_and_those_in_the_record():
    names = ("logistic_regression", "text_words_weak_regularisation")
    pipeline, x = fitted_average("text", "log-odds", names)
    classes = classes_of(pipeline)
    terms = explain.text_terms(pipeline, classes)
    own = [explain.text_terms(member, classes, top=100) for member in explain.members(pipeline)]
    record = x.iloc[[0]]
    local = explain.explain_record(pipeline, record, x, task="text", classes=classes, seed=SEED)
    words = set(re.findall(r"\b\w\w+\b", record["description"].iloc[0].lower()))

    assert list(terms) == classes and all(terms[label]["up"] for label in classes)
    top = terms["2211"]["up"][0]
    weights = [{t["term"]: t["weight"] for t in member["2211"]["up"]}.get(top["term"], 0.0) for member in own]
    assert top["weight"] == pytest.approx(np.mean(weights)) and all(w > 0 for w in weights)
    assert {"doctor", "physician"} & {t["term"] for t in terms["2211"]["up"]}
    assert local["terms"]["class"] == local["predicted"]
    assert local["terms"]["terms"] and all(set(t["term"].split()) <= words for t in local["terms"]["terms"])


# ── text models ─────────────────────────────────────────────────────────────────────────────────────


def test_a_text_model_names_the_words_for_each_class_and_in_the_record():
    pipeline, x = fitted("text", "logistic_regression")
    classes = classes_of(pipeline)
    terms = explain.text_terms(pipeline, classes)
    record = x.iloc[[0]]
    local = explain.explain_record(pipeline, record, x, task="text", classes=classes, seed=SEED)
    words = set(re.findall(r"\b\w\w+\b", record["description"].iloc[0].lower()))  # the vectoriser's tokens

    assert list(terms) == classes
    assert all(terms[label]["up"] and terms[label]["down"] for label in classes)
    assert all(t["weight"] > 0 for t in terms["2211"]["up"]) and all(t["weight"] < 0 for t in terms["2211"]["down"])
    assert {"doctor", "physician"} & {t["term"] for t in terms["2211"]["up"]}
    assert local["terms"]["class"] == local["predicted"]
    assert local["terms"]["terms"] and all(set(t["term"].split()) <= words for t in local["terms"]["terms"])
    assert explain.record_terms(pipeline, record, local["predicted"]) == local["terms"]


def test_a_text_models_global_view_has_no_beeswarm_for_free_text():
    found = global_view("text", "logistic_regression")

    assert list(found["overall"]) == ["description"] and found["beeswarm"] == []
    assert found["method"] == "LinearExplainer" and found["additive"] is True


# ── stability ───────────────────────────────────────────────────────────────────────────────────────


def test_top_overlap_is_the_mean_pairwise_share_of_shared_top_features():
    rankings = [["a", "b", "c", "d"], ["a", "b", "d", "c"], ["a", "c", "b", "d"]]

    two = explain.top_overlap(rankings, top=2)
    assert two["folds"] == 3 and two["top"] == 2
    assert two["mean_overlap"] == pytest.approx((1 + 1 / 3 + 1 / 3) / 3)  # {a,b}{a,b}{a,c}: shared / all named
    assert two["rankings"] == [["a", "b"], ["a", "b"], ["a", "c"]]
    assert explain.top_overlap(rankings, top=4)["mean_overlap"] == 1.0
    assert explain.top_overlap([["a", "b"]])["mean_overlap"] is None  # one fold: nothing to compare


# ── stored with the run, and the command line ───────────────────────────────────────────────────────


def test_a_finished_run_keeps_its_explanation_and_the_command_prints_only_aggregates(session, settings, tmp_path):
    lines = (SAMPLES / "labour_force.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path / "labour_force.csv"
    path.write_text("".join(lines[:601]), encoding="utf-8")
    builder = make_user(session, "bea")
    version = make_dataset_version(session, settings, builder, make_project(session, builder), path)
    run = make_trained_run(session, settings, builder, version)

    stored = session.exec(select(Explanation).where(Explanation.run_id == run.id)).one()
    assert (stored.method, stored.seed, stored.additive) == ("LinearExplainer", run.seed, True)
    assert stored.rows_explained == 120  # the whole test set (20 % of 600 rows)
    assert stored.stability["folds"] == 3 and len(stored.stability["rankings"]) == 3

    result = CliRunner().invoke(cli, ["--json", "explain", str(run.id)], catch_exceptions=False)
    assert result.exit_code == 0
    printed = json.loads(result.stdout)
    assert printed["method"] == "LinearExplainer" and printed["additive"] is True
    assert set(printed["importance"]["true"]) == set(run.feature_types)
    assert printed["stability"]["folds"] == 3
    # Disclosure control: aggregates only. No record's values, not even in the beeswarm data.
    test_set = runs.load_test_set(settings=settings, run=run)
    record_texts = {str(v) for c in ("sex", "region", "education") for v in test_set[c].dropna().unique()}
    record_numbers = {float(v) for v in test_set["hours_usual"].dropna() if not float(v).is_integer()}
    leaves = []

    def walk(node):
        if isinstance(node, dict):
            leaves.extend(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        else:
            leaves.append(node)

    walk(printed)
    assert "beeswarm" not in leaves and "rankings" not in leaves
    assert not record_texts & {leaf for leaf in leaves if isinstance(leaf, str)}
    assert not record_numbers & {leaf for leaf in leaves if isinstance(leaf, float)}
