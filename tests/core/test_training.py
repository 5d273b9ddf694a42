"""Training runs through the services: planned, refused in plain words, searched, stored, reproduced, evaluated."""

import hashlib
import io
import os
import platform
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sqlmodel import select

from core import audit, datasets, jobs
from core.artifacts import ArtifactStore
from core.data.reading import ReadOptions
from core.errors import IntegrityFailed, InvalidInput, NotAllowed
from core.models import TrainingRun
from core.training import evaluation, persistence, runs
from core.training.candidates import build_ensemble, build_pipeline, candidates_for
from core.training.ensemble import AveragingRegressor
from tests.factories import make_dataset_version, make_project, make_trained_run, make_user

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
SENSITIVE = datasets.VersionMetadata(sensitive_columns=["sex", "region"])
TINY_BUDGET = 0.001  # the first candidate always finishes; no second one starts

# Tests of the computation rather than the store, and the slow worker-process tests, run once, on SQLite.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def double_values(values):
    """A function of this test module: not a type Steward trusts inside a model file."""
    return values * 2


def crash_during_training(ctx):
    """Stands in for the ``training.run`` job: the worker process dies mid-run, once the data is loaded."""
    from core.config import get_settings

    def progress(fraction, message):
        ctx.progress(fraction, message)
        if fraction >= 0.04:
            os._exit(13)

    with ctx.session() as session:
        runs.run_training(session=session, settings=get_settings(), run_id=ctx.params["run_id"], actor=ctx.actor,
                          progress=progress)


def _head(tmp_path: Path, name: str, rows: int) -> Path:
    """The header and the first ``rows`` lines of a sample file, byte for byte."""
    lines = (SAMPLES / name).read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path / f"{Path(name).stem}_{rows}.csv"
    path.write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return path


def _wait(session, job_id: int, timeout: float = 120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = jobs.get_job(session=session, job_id=job_id)
        if job.finished:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


@pytest.fixture
def builder(session):
    return make_user(session, "bea")


@pytest.fixture
def project(session, builder):
    return make_project(session, builder)


@pytest.fixture
def labour(session, settings, builder, project, tmp_path):
    """The first 800 rows of the labour force survey, with sex and region marked sensitive."""
    return make_dataset_version(session, settings, builder, project, _head(tmp_path, "labour_force.csv", 800),
                                metadata=SENSITIVE)


@pytest.fixture
def runner(settings):
    runner = jobs.JobRunner(database_url=settings.resolved_database_url, workers=1)
    yield runner
    runner.shutdown()


# ── planning and refusals ───────────────────────────────────────────────────────────────────────────


@sqlite_only
def test_the_task_is_detected_from_the_target(session, settings, builder, project, tmp_path):
    labour = pd.read_csv(_head(tmp_path, "labour_force.csv", 600), dtype=str, keep_default_na=False)
    three_levels = tmp_path / "education.csv"
    labour[labour["education"] != "primary"].to_csv(three_levels, index=False)
    cases = [
        (_head(tmp_path, "labour_force.csv", 600), "employed", "binary", "roc_auc"),
        (three_levels, "education", "multiclass", "f1_macro"),
        (_head(tmp_path, "house_prices.csv", 600), "price_eur", "regression", "rmse"),
        (_head(tmp_path, "job_descriptions.csv", 600), "code", "text", "f1_macro"),
    ]
    for position, (path, target, task, metric) in enumerate(cases):
        version = make_dataset_version(session, settings, builder, project, path, dataset_name=f"data_{position}")
        plan = runs.plan_training(session=session, settings=settings, version_id=version.id, target=target)
        assert (plan.task, plan.primary_metric) == (task, metric), target
        assert target not in plan.features and len(plan.excluded_identifiers) == 1
        assert not any("predicts the target almost perfectly" in warning for warning in plan.warnings), target
    assert session.exec(select(TrainingRun)).all() == []


@sqlite_only
def test_a_column_that_copies_the_target_is_flagged_as_leakage(session, settings, builder, project, tmp_path):
    frame = pd.read_csv(_head(tmp_path, "labour_force.csv", 600), dtype=str, keep_default_na=False)
    frame["employed_recorded"] = frame["employed"]
    frame["employed_note"] = "answer: " + frame["employed"]
    path = tmp_path / "leaky.csv"
    frame.to_csv(path, index=False)
    inferred = datasets.preview_upload(settings=settings, filename=path.name, data=path.read_bytes(),
                                       options=ReadOptions()).types
    version = make_dataset_version(session, settings, builder, project, path,
                                   types={**inferred, "employed_note": "text"})
    plan = runs.plan_training(session=session, settings=settings, version_id=version.id, target="employed")
    leaks = [warning for warning in plan.warnings if "predicts the target almost perfectly" in warning]
    assert len(leaks) == 2
    assert "'employed_recorded'" in leaks[0] and "'employed_note'" in leaks[1]
    assert not any("'age'" in warning for warning in plan.warnings)


def test_requests_that_cannot_be_trained_are_refused_and_nothing_is_stored(session, settings, builder, project,
                                                                            tmp_path, subtests):
    rows = 40
    frame = pd.DataFrame({
        "person_id": [f"P{n:03d}" for n in range(rows)],
        "age": [str(20 + (n * 7) % 45) for n in range(rows)],
        "region": [["North", "South", "East", "West"][n % 4] for n in range(rows)],
        "employed": ["yes" if n % 3 else "no" for n in range(rows)],
        "follow_up": [""] * rows,
        "country": ["NL"] * rows,
        "status": ["a"] * 20 + ["b"] * 19 + ["c"],
        "answered": ["x", "y"] * 3 + [""] * (rows - 6),
    })
    path = tmp_path / "awkward.csv"
    frame.to_csv(path, index=False)
    types = {"person_id": "identifier", "age": "numeric", "region": "categorical", "employed": "boolean",
             "follow_up": "categorical", "country": "categorical", "status": "categorical",
             "answered": "categorical"}
    version = make_dataset_version(session, settings, builder, project, path, types=types)
    cases = {
        "target empty in every row": ("follow_up", {}, "'follow_up' is empty in every row"),
        "a single class": ("country", {}, "Every row has the same value of 'country' ('NL')"),
        "an identifier as target": ("person_id", {}, "'person_id' is an identifier"),
        "fewer rows than folds x 2": ("answered", {}, "Only 6 rows have a value for 'answered'; training needs at "
                                                      "least 10"),
        "a class with one row": ("status", {}, "The class(es) 'c' of 'status' have only one row"),
        "every input excluded": ("employed", {"excluded": [n for n in types if n not in ("employed", "person_id")]},
                                 "No input columns are left"),
    }
    for case, (target, request, message) in cases.items():
        with subtests.test(case):
            with pytest.raises(InvalidInput) as refused:
                runs.create_run(session=session, settings=settings, actor=builder, version_id=version.id,
                                target=target, budget_seconds=TINY_BUDGET, **request)
            assert message in str(refused.value)
    assert session.exec(select(TrainingRun)).all() == []
    assert audit.list_events(session=session, action="training.run") == []


# ── a run and what it stores ────────────────────────────────────────────────────────────────────────


def test_a_binary_run_stores_its_leaderboard_evaluation_model_and_provenance(session, settings, builder, labour):
    run = make_trained_run(session, settings, builder, labour, budget_seconds=1)

    assert (run.status, run.task, run.primary_metric, run.error) == ("succeeded", "binary", "roc_auc", None)
    names = [row["candidate"] for row in run.leaderboard if not row.get("members")]
    assert names == run.finished_candidates == run.candidates[: len(names)]
    assert run.chosen_candidate == max(run.leaderboard, key=lambda row: row["mean"])["candidate"]
    assert all(row["folds"] == 5 and 0.5 < row["mean"] <= 1 for row in run.leaderboard)

    metrics = run.evaluation["metrics"]
    assert set(metrics) == set(evaluation.METRICS["binary"]) == set(run.baseline)
    for name, interval in metrics.items():
        assert interval["low"] <= interval["value"] <= interval["high"], name
    assert metrics["roc_auc"]["value"] > 0.6 and run.baseline["roc_auc"] == 0.5
    assert metrics["brier"]["value"] < run.baseline["brier"]
    subgroups = run.evaluation["subgroups"]
    assert {row["column"] for row in subgroups} == {"sex", "region"}
    assert {row["group"] for row in subgroups if row["column"] == "sex"} == {"female", "male"}
    assert sum(row["count"] for row in subgroups if row["column"] == "region") == run.evaluation["n_rows"] == 160

    test_set = runs.load_test_set(settings=settings, run=run)
    assert len(test_set) == 160 and set(test_set["__target__"]) == set(run.classes) == {"false", "true"}
    probabilities = test_set[[f"__proba__{name}" for name in run.classes]].to_numpy()
    assert runs.prediction_hash(probabilities) == run.prediction_hash

    model = runs.load_run_model(settings=settings, run=run)
    canonical = datasets.load_frame(settings=settings, version=labour)
    predicted = model.predict(canonical)
    assert len(predicted) == 800 and set(predicted) <= {"false", "true"}
    assert (predicted[test_set.index] == test_set["__predicted__"].to_numpy()).all()
    assert (model.predict(canonical[canonical.columns[::-1]]) == predicted).all()
    assert (model.predict(canonical.assign(interviewer_note="called twice")) == predicted).all()

    assert (run.dataset_sha256, run.seed, run.decision_threshold) == (labour.sha256, 42, 0.5)
    assert run.candidates == [candidate.name for candidate in candidates_for("binary")]
    assert run.environment["python"] == platform.python_version()
    assert run.environment["packages"]["scikit-learn"] == sklearn.__version__
    assert run.environment["packages"]["skops"] and run.code_version.startswith("steward ")
    assert len(run.prediction_hash) == 64 and run.finished_at is not None
    created, succeeded = (audit.list_events(session=session, action=f"training.run.{step}")[0]
                          for step in ("create", "succeeded"))
    assert created.details["dataset_sha256"] == labour.sha256
    assert succeeded.details == {"chosen": run.chosen_candidate, "model_sha256": run.model_sha256,
                                 "prediction_hash": run.prediction_hash}
    assert [listed.id for listed in runs.list_runs(session=session, project_id=run.project_id)] == [run.id]


@sqlite_only
def test_a_tiny_budget_still_finishes_the_first_candidate_and_records_only_it(session, settings, builder, labour):
    run = make_trained_run(session, settings, builder, labour, budget_seconds=TINY_BUDGET)
    assert run.finished_candidates == [run.candidates[0]] == ["logistic_regression"]
    assert len(run.candidates) > 1 and run.chosen_candidate == "logistic_regression"
    assert [row["candidate"] for row in run.leaderboard] == ["logistic_regression"]


@sqlite_only
def test_the_same_request_twice_gives_the_same_predictions(session, settings, builder, labour):
    first = make_trained_run(session, settings, builder, labour)
    second = make_trained_run(session, settings, builder, labour)
    assert first.id != second.id and first.finished_candidates == second.finished_candidates
    assert first.prediction_hash == second.prediction_hash
    assert first.leaderboard[0]["mean"] == second.leaderboard[0]["mean"]


def test_reproducing_a_run_gives_a_passed_certificate_and_an_audit_event(session, settings, builder, labour):
    run = make_trained_run(session, settings, builder, labour)
    started = runs.start_reproduction(session=session, runner=None, actor=builder, run_id=run.id)
    assert started.status == "running" and started.original_hash == run.prediction_hash
    certificate = runs.reproduce(session=session, settings=settings, certificate_id=started.id, actor=builder)
    assert (certificate.status, certificate.reproduced_hash) == ("passed", run.prediction_hash)
    assert certificate.differences == {} and certificate.finished_at is not None
    assert runs.latest_certificate(session=session, run_id=run.id).status == "passed"
    event = audit.list_events(session=session, action="training.reproduce.passed")[0]
    assert (event.entity_id, event.details["certificate"]) == (str(run.id), certificate.id)


@sqlite_only
def test_a_model_file_changed_on_disk_is_refused(session, settings, builder, labour):
    run = make_trained_run(session, settings, builder, labour)
    path = ArtifactStore(settings.artifacts_path).path_for(run.model_sha256)
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(IntegrityFailed, match="changed or damaged"):
        runs.load_run_model(settings=settings, run=run)
    with pytest.raises(IntegrityFailed, match="changed or damaged"):
        runs.evaluate_on_file(session=session, settings=settings, actor=builder, run_id=run.id,
                              filename="batch.csv", data=(SAMPLES / "labour_force_batch_similar.csv").read_bytes())
    assert runs.list_evaluations(session=session, run_id=run.id) == []


def test_only_model_files_made_of_trusted_types_are_loaded(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    x = pd.DataFrame({"age": [20.0, 35.0, 50.0, 65.0] * 5, "region": ["North", "South"] * 10})
    y = np.array(["no", "yes"] * 10)
    types = {"age": "numeric", "region": "categorical"}
    steward = build_pipeline(candidates_for("binary")[0], types, seed=1).fit(x, y)
    loaded = persistence.load_model(store, persistence.save_model(store, steward).sha256)
    assert (loaded.predict_proba(x) == steward.predict_proba(x)).all()

    average = build_ensemble(candidates_for("binary")[:3], types, seed=1, task="binary", scale="log-odds").fit(x, y)
    loaded = persistence.load_model(store, persistence.save_model(store, average).sha256)
    assert (loaded.predict_proba(x) == average.predict_proba(x)).all()

    foreign = Pipeline([("double", FunctionTransformer(double_values)), ("model", LogisticRegression())])
    stored = persistence.save_model(store, foreign.fit(x[["age"]], y))
    with pytest.raises(IntegrityFailed, match=r"contains code Steward does not trust \(\S*test_training\."
                                              r"double_values\)"):
        persistence.load_model(store, stored.sha256)


# ── failures ────────────────────────────────────────────────────────────────────────────────────────


def test_a_failure_during_training_marks_the_run_failed_with_the_reason(session, settings, builder, labour):
    run = runs.create_run(session=session, settings=settings, actor=builder, version_id=labour.id,
                          target="employed", budget_seconds=TINY_BUDGET)
    ArtifactStore(settings.artifacts_path).path_for(labour.parquet_sha256).write_bytes(b"damaged")
    with pytest.raises(IntegrityFailed):
        runs.run_training(session=session, settings=settings, run_id=run.id, actor=builder)
    failed = runs.get_run(session=session, run_id=run.id)
    assert failed.status == "failed" and "was changed or damaged on disk" in failed.error
    assert failed.model_sha256 is None and failed.prediction_hash is None and failed.finished_at is not None
    assert audit.list_events(session=session, action="training.run.failed")[0].details == {"error": failed.error}


@sqlite_only  # slow (a worker process); the runner and _settle are exercised on PostgreSQL by other tests
def test_a_worker_crash_during_training_fails_the_job_and_the_run(session, settings, builder, labour, runner,
                                                                  monkeypatch):
    monkeypatch.setitem(jobs.JOB_KINDS, "training.run", "tests.core.test_training:crash_during_training")
    run = runs.start_training(session=session, settings=settings, runner=runner, actor=builder,
                              version_id=labour.id, target="employed", budget_seconds=TINY_BUDGET)
    job = _wait(session, run.job_id)
    assert job.status == "failed" and "crashed" in job.error
    after = runs.get_run(session=session, run_id=run.id)
    assert after.status == "failed" and after.error == job.error and after.finished_at is not None
    assert [listed.status for listed in runs.list_runs(session=session, project_id=run.project_id)] == ["failed"]


def test_runs_and_certificates_whose_job_never_ran_fail_after_a_restart(session, settings, builder, labour):
    class StoppedServer:
        def start(self, job_id):
            """The server stops before the job starts."""

    trained = make_trained_run(session, settings, builder, labour)
    certificate = runs.start_reproduction(session=session, runner=StoppedServer(), actor=builder, run_id=trained.id)
    queued = runs.start_training(session=session, settings=settings, runner=StoppedServer(), actor=builder,
                                 version_id=labour.id, target="employed", budget_seconds=TINY_BUDGET)
    assert (certificate.status, queued.status) == ("running", "queued")
    assert jobs.recover_orphaned_jobs(session=session, stale_after=timedelta(minutes=5)) == 2
    after = runs.get_run(session=session, run_id=queued.id)
    assert after.status == "failed" and "before this job could start" in after.error
    assert audit.list_events(session=session, action="training.run.failed")[0].entity_id == str(queued.id)
    settled = runs.latest_certificate(session=session, run_id=trained.id)
    assert settled.status == "failed" and "before this job could start" in settled.differences["error"]
    assert runs.get_run(session=session, run_id=trained.id).status == "succeeded"


# ── the job path ────────────────────────────────────────────────────────────────────────────────────


@sqlite_only  # slow (a worker process that starts its own); test_jobs runs the runner on both databases
def test_training_started_as_a_job_succeeds_in_a_worker(session, settings, builder, labour, runner):
    run = runs.start_training(session=session, settings=settings, runner=runner, actor=builder,
                              version_id=labour.id, target="employed", budget_seconds=TINY_BUDGET)
    assert run.status == "queued" and run.job_id is not None
    job = _wait(session, run.job_id)
    assert (job.status, job.result) == ("succeeded", {"run_id": run.id, "chosen": "logistic_regression"})
    done = runs.get_run(session=session, run_id=run.id)
    assert done.status == "succeeded" and done.model_sha256 and done.prediction_hash
    assert runs.load_run_model(settings=settings, run=done).predict(
        datasets.load_frame(settings=settings, version=labour)).shape == (800,)


# ── after a run ─────────────────────────────────────────────────────────────────────────────────────


def test_a_run_evaluated_on_a_new_labelled_file_stores_the_result(session, settings, builder, labour):
    run = make_trained_run(session, settings, builder, labour)
    data = (SAMPLES / "labour_force_batch_similar.csv").read_bytes()
    result = runs.evaluate_on_file(session=session, settings=settings, actor=builder, run_id=run.id,
                                   filename="labour_force_batch_similar.csv", data=data)
    assert (result.rows, result.source) == (1000, "labour_force_batch_similar.csv")
    assert result.source_sha256 == hashlib.sha256(data).hexdigest()
    metrics = result.result["metrics"]
    assert metrics["roc_auc"]["value"] > 0.6 and metrics["roc_auc"]["low"] <= metrics["roc_auc"]["value"]
    assert {row["column"] for row in result.result["subgroups"]} == {"sex", "region"}
    assert [stored.id for stored in runs.list_evaluations(session=session, run_id=run.id)] == [result.id]
    assert audit.list_events(session=session, action="training.run.evaluate")[0].details["rows"] == 1000

    without = pd.read_csv(io.BytesIO(data)).drop(columns="hours_usual").to_csv(index=False).encode()
    with pytest.raises(InvalidInput, match="The file lacks column\\(s\\) the model needs: hours_usual"):
        runs.evaluate_on_file(session=session, settings=settings, actor=builder, run_id=run.id,
                              filename="batch.csv", data=without)
    assert len(runs.list_evaluations(session=session, run_id=run.id)) == 1


@sqlite_only
def test_a_run_evaluated_on_a_stored_version_names_it_as_the_source(session, settings, builder, project, labour,
                                                                    tmp_path):
    run = make_trained_run(session, settings, builder, labour)
    batch = make_dataset_version(session, settings, builder, project, SAMPLES / "labour_force_batch_similar.csv",
                                 dataset_name="labour_batch", metadata=SENSITIVE)
    result = runs.evaluate_on_version(session=session, settings=settings, actor=builder, run_id=run.id,
                                      version_id=batch.id)
    assert (result.source, result.source_sha256, result.rows) == ("labour_batch v1", batch.sha256, 1000)
    assert result.result["metrics"]["roc_auc"]["value"] > 0.6
    houses = make_dataset_version(session, settings, builder, project, _head(tmp_path, "house_prices.csv", 50),
                                  dataset_name="houses")
    with pytest.raises(InvalidInput, match="houses version 1 lacks column\\(s\\) the model needs: employed, age"):
        runs.evaluate_on_version(session=session, settings=settings, actor=builder, run_id=run.id,
                                 version_id=houses.id)
    assert len(runs.list_evaluations(session=session, run_id=run.id)) == 1


def test_thresholds_are_probabilities_and_each_change_is_audited(session, settings, builder, labour):
    run = make_trained_run(session, settings, builder, labour)
    for wrong in (-0.1, 1.5):
        with pytest.raises(InvalidInput, match="between 0 and 1"):
            runs.set_thresholds(session=session, actor=builder, run_id=run.id, decision_threshold=wrong)
    reviewer = make_user(session, "rui", roles=("reviewer",))
    with pytest.raises(NotAllowed):
        runs.set_thresholds(session=session, actor=reviewer, run_id=run.id, decision_threshold=0.3)
    changed = runs.set_thresholds(session=session, actor=builder, run_id=run.id, decision_threshold=0.3)
    assert changed.decision_threshold == runs.get_run(session=session, run_id=run.id).decision_threshold == 0.3
    events = audit.list_events(session=session, action="training.run.thresholds")
    assert [event.details for event in events] == [{"before": {"decision": 0.5, "coding": None},
                                                    "after": {"decision": 0.3, "coding": None}}]


# ── other tasks ─────────────────────────────────────────────────────────────────────────────────────


@sqlite_only
def test_coding_job_descriptions_reaches_a_useful_macro_f1_with_a_coding_threshold(session, settings, builder,
                                                                                    project, tmp_path):
    version = make_dataset_version(session, settings, builder, project, _head(tmp_path, "job_descriptions.csv", 1500),
                                   dataset_name="job_descriptions")
    run = make_trained_run(session, settings, builder, version, target="code")
    assert run.task == "text" and len(run.classes) == 20
    assert run.evaluation["metrics"]["f1_macro"]["value"] > 0.6
    tradeoff = run.evaluation["diagnostics"]["coding_tradeoff"]
    assert run.coding_threshold is not None
    chosen = next(row for row in tradeoff if row["threshold"] == run.coding_threshold)
    assert chosen["accuracy"] >= 0.95 and 0 < chosen["coverage"] < 1
    assert run.decision_threshold is None


@sqlite_only
def test_predicting_house_prices_beats_the_average_price(session, settings, builder, project, tmp_path):
    version = make_dataset_version(session, settings, builder, project, _head(tmp_path, "house_prices.csv", 800),
                                   dataset_name="house_prices")
    run = make_trained_run(session, settings, builder, version, target="price_eur")
    assert (run.task, run.primary_metric, run.classes) == ("regression", "rmse", None)
    assert run.evaluation["metrics"]["rmse"]["value"] < 0.8 * run.baseline["rmse"]
    assert run.evaluation["metrics"]["r2"]["value"] > 0.3


@sqlite_only
def test_an_average_that_beats_every_single_candidate_is_chosen_explained_and_reproduced(session, settings, builder,
                                                                                      project, tmp_path):
    version = make_dataset_version(session, settings, builder, project, _head(tmp_path, "house_prices.csv", 400),
                                   dataset_name="house_prices")
    run = make_trained_run(session, settings, builder, version, target="price_eur", budget_seconds=600)

    singles = [row for row in run.leaderboard if not row.get("members")]
    averages = [row for row in run.leaderboard if row.get("members")]
    assert [row["candidate"] for row in singles] == run.finished_candidates == run.candidates  # all finished
    assert run.chosen_candidate == "average_of_best" and len(averages) == 1
    chosen = averages[0]
    assert 2 <= len(chosen["members"]) <= 3 and set(chosen["members"]) <= set(run.finished_candidates)
    assert chosen["mean"] < min(row["mean"] for row in singles)  # RMSE: it beats every single candidate in CV
    assert chosen["description"].startswith(f"Average of {len(chosen['members'])} models: ")

    model = runs.load_run_model(settings=settings, run=run)
    average = model.named_steps["model"]
    assert isinstance(average, AveragingRegressor)
    assert [name for name, _member in average.members_] == chosen["members"]
    test_set = runs.load_test_set(settings=settings, run=run)
    features = test_set[list(run.feature_types)]
    members = np.mean([member.predict(model.named_steps["prepare"].transform(features))
                       for _name, member in average.members_], axis=0)
    assert np.allclose(test_set["__predicted__"], members) and np.allclose(model.predict(features), members)

    explanation = runs.get_explanation(session=session, run_id=run.id)
    assert explanation.method == f"Average of {len(chosen['members'])} models' SHAP values" and explanation.additive
    assert len(explanation.result["member_methods"]) == len(chosen["members"])

    started = runs.start_reproduction(session=session, runner=None, actor=builder, run_id=run.id)
    certificate = runs.reproduce(session=session, settings=settings, certificate_id=started.id, actor=builder)
    assert (certificate.status, certificate.differences) == ("passed", {})

    evaluated = runs.evaluate_on_file(session=session, settings=settings, actor=builder, run_id=run.id,
                                      filename="more_houses.csv",
                                      data=_head(tmp_path, "house_prices.csv", 700).read_bytes())
    assert evaluated.rows == 700 and evaluated.result["metrics"]["rmse"]["value"] < run.baseline["rmse"]

    # A run recorded before averages existed has no "ensemble_members" in its config: re-run, it stays single.
    row = session.get(TrainingRun, run.id)
    row.config = {key: value for key, value in row.config.items() if key != "ensemble_members"}
    session.add(row)
    session.commit()
    again = runs.execute_run(session=session, settings=settings, run_id=run.id, only=run.finished_candidates,
                             persist=False)
    assert again["chosen"] == min(singles, key=lambda row: row["mean"])["candidate"]
    assert not any(row.get("members") for row in again["leaderboard"])
