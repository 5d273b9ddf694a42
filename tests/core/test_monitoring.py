"""Monitoring: drift of each batch against the training data, small batches not judged, labels, dashboards."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sqlmodel import select

from core import checklist, monitoring, serving
from core.cli import cli
from core.data.schema import apply_types, infer_types
from core.errors import InvalidInput, NotAllowed
from core.models import Job, MonitoringReport, PredictionBatch
from tests.factories import PASSWORD, make_production_version, make_project, make_user

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
SIMILAR, DRIFTED = "labour_force_batch_similar.csv", "labour_force_batch_drifted.csv"
DRIFTING = {"age", "hours_usual", "region", "education"}  # what the sample generator shifts in the drifted batch

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _canonical(name: str, rows: int | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
    raw = pd.read_csv(SAMPLES / name, dtype=str, nrows=rows)
    types = {k: str(v) for k, v in infer_types(pd.read_csv(SAMPLES / "labour_force.csv", dtype=str)).items()}
    return apply_types(raw, types), types


def _features(types: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in types.items() if k not in ("person_id", "employed")}


@pytest.fixture(scope="module")
def reference():
    frame, types = _canonical("labour_force.csv")
    features = _features(types)
    return frame, features, monitoring.build_reference_profile(frame, features)


def _head(tmp_path: Path, name: str, rows: int) -> Path:
    lines = (SAMPLES / name).read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path / f"{Path(name).stem}_{rows}.csv"
    path.write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return path


# ── drift extraction (no store) ─────────────────────────────────────────────────────────────────────


def test_the_drifted_sample_batch_is_flagged_and_the_similar_one_is_not(reference):
    _frame, _features_, profile = reference
    similar = monitoring.compare(profile, _canonical(SIMILAR)[0], min_rows=100)
    drifted = monitoring.compare(profile, _canonical(DRIFTED)[0], min_rows=100)

    assert similar.judged and drifted.judged
    assert similar.drift_share == 0 and similar.drifted_columns == 0
    assert {c["column"] for c in drifted.columns if c["drifted"]} == DRIFTING
    assert drifted.drift_share == pytest.approx(4 / 8)
    # A 5,000-row reference is judged by distances, as evidently does for more than 1,000 values.
    methods = {c["column"]: c["method_name"] for c in drifted.columns}
    assert methods["age"] == "Wasserstein distance (normed)" and methods["region"] == "Jensen-Shannon distance"
    age = next(c for c in drifted.columns if c["column"] == "age")
    assert age["threshold"] == 0.1 and age["score"] > 0.5 and age["verdict"] == "drift"
    assert "evidently defaults for a 5,000-row reference" in drifted.method


def test_a_batch_below_the_minimum_size_is_reported_but_not_judged(reference):
    _frame, _features_, profile = reference
    small = monitoring.compare(profile, _canonical(SIMILAR, rows=60)[0], min_rows=100)

    assert not small.judged and small.rows == 60
    assert small.drift_share is None and small.drifted_columns is None
    assert {c["verdict"] for c in small.columns} == {"not judged"}
    # The scores are kept for information (evidently would call several of them drift on 60 rows).
    assert sum(c["score"] >= c["threshold"] for c in small.columns) >= 3
    assert small.method.startswith("Not judged: 60 rows, fewer than 100.")
    assert "Wasserstein distance (normed)" in small.method


def test_verdicts_agree_with_evidently_on_small_data(reference):
    frame, features, _profile = reference
    current = _canonical(DRIFTED, rows=300)[0]
    for rows in (800, 2000):  # p-value tests up to 1,000 reference values, distances above
        ref = frame.head(rows)
        ours = monitoring.compare(monitoring.build_reference_profile(ref, features), current, min_rows=100)
        theirs = monitoring.evidently_columns(monitoring.run_evidently(ref, current, features))
        for column in ours.columns:
            expected = theirs[column["column"]]
            assert column["method_name"] == expected["method"], column["column"]
            assert column["drifted"] == expected["drifted"], column["column"]
            assert column["score"] == pytest.approx(expected["score"], rel=5e-3, abs=1e-6), column["column"]
    assert {c["method"] for c in ours.columns} == {"wasserstein", "jensenshannon"}


def test_the_wasserstein_distance_from_the_profile_matches_the_exact_one():
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(3)
    reference = pd.Series(rng.lognormal(0, 1, 50_000))
    current = pd.Series(rng.lognormal(0.08, 1.05, 20_000))
    entry = monitoring.build_reference_profile(pd.DataFrame({"x": reference}), {"x": "numeric"})["columns"]["x"]
    found = monitoring.column_drift(entry, current)
    exact = wasserstein_distance(reference, current) / np.std(reference)
    assert found["method"] == "wasserstein"
    assert found["score"] == pytest.approx(exact, rel=1e-3)


def test_quality_shows_missing_values_unseen_categories_and_numbers_outside_the_training_range(reference):
    _frame, _features_, profile = reference
    batch = _canonical(SIMILAR, rows=200)[0]
    batch.loc[:79, "hours_usual"] = np.nan
    batch.loc[:9, "region"] = "Atlantis"
    batch.loc[:4, "age"] = 140
    found = monitoring.compare(profile, batch, min_rows=100).quality

    hours, region, age = (found["columns"][name] for name in ("hours_usual", "region", "age"))
    assert hours["missing_share"] >= 0.4 and hours["missing_change"] > 0.3 and hours["reference_missing_share"] < 0.1
    assert region["unseen"] == 10 and region["unseen_examples"] == ["Atlantis"]
    assert age["above_range"] == 5
    assert any(f.startswith(f"hours_usual is empty in {hours['missing_share']:.0%} of rows") for f in found["findings"])
    assert any("region has 10 value(s) in categories never seen in training ('Atlantis')" in f
               for f in found["findings"])


# ── labels (no store) ───────────────────────────────────────────────────────────────────────────────


def test_labels_are_matched_by_key_even_for_a_subset_in_another_order():
    file = pd.DataFrame({"id": ["c", "a", "zz"], "y": ["yes", "no", "yes"]})
    labels, how = monitoring.match_labels(file, batch_rows=3, label_column="y", key="id",
                                          batch_keys=pd.Series(["a", "b", "c"]))
    assert labels.tolist()[0] == "no" and pd.isna(labels[1]) and labels[2] == "yes"
    assert how == {"matched_by": "key id", "unmatched_keys": 1, "matched_rows": 2}


def test_keys_written_as_numbers_or_text_match():
    file = pd.DataFrame({"id": ["17", "18.0"], "y": ["a", "b"]})
    labels, _how = monitoring.match_labels(file, batch_rows=2, label_column="y", key="id",
                                           batch_keys=pd.Series([18, 17]))
    assert labels.tolist() == ["b", "a"]


def test_labels_are_matched_by_row_order_only_when_the_lengths_agree():
    file = pd.DataFrame({"y": ["a", "b", "c"]})
    labels, how = monitoring.match_labels(file, batch_rows=3, label_column="y")
    assert labels.tolist() == ["a", "b", "c"] and how["matched_by"] == "row order"
    with pytest.raises(InvalidInput, match="The file has 3 rows but the batch has 4"):
        monitoring.match_labels(file, batch_rows=4, label_column="y")


@pytest.mark.parametrize(("file", "batch_keys", "message"), [
    (pd.DataFrame({"y": ["a"]}), pd.Series(["1"]), "The file has no column 'id' to match on"),
    (pd.DataFrame({"id": ["1", "1"], "y": ["a", "b"]}), pd.Series(["1", "2"]), "'id' value\\(s\\) more than once"),
    (pd.DataFrame({"id": ["8", "9"], "y": ["a", "b"]}), pd.Series(["1", "2"]), "None of the file's 2 'id' values"),
    (pd.DataFrame({"id": ["1"], "y": ["a"]}), None, "The batch has no column 'id' to match on"),
    (pd.DataFrame({"id": ["1", "2"], "y": ["a", "b"]}), pd.Series(["1", "1"]), "more than one row"),
])
def test_labels_that_cannot_be_matched_by_key_are_refused(file, batch_keys, message):
    with pytest.raises(InvalidInput, match=message):
        monitoring.match_labels(file, batch_rows=2, label_column="y", key="id", batch_keys=batch_keys)


def test_coding_figures_give_the_automation_rate_and_the_accuracy_of_automatic_codes():
    labels = pd.Series(["11", "12", "13", None, "11", "12"], dtype=object)
    predicted = pd.Series(["11", "12", "99", "11", "12", "12"])
    coding = pd.Series(["automatic", "automatic", "automatic", "automatic", "manual", "manual"])
    found = monitoring.coding_figures(labels, predicted, coding)

    assert found["automation_rate"] == pytest.approx(4 / 6) and found["automatic_rows"] == 4
    # Of the automatic codes, three have a known true code and two of those are right.
    assert found["automatic"]["labelled"] == 3 and found["automatic"]["accuracy"] == pytest.approx(2 / 3)
    assert 0 <= found["automatic"]["low"] <= 2 / 3 <= found["automatic"]["high"] <= 1
    assert found["manual"]["labelled"] == 2 and found["manual"]["accuracy"] == pytest.approx(0.5)


# ── reports in the store ────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def builder(session):
    return make_user(session, "bea")


@pytest.fixture
def project(session, builder):
    return make_project(session, builder)


@pytest.fixture
def production(session, settings, builder, project, tmp_path):
    """``employment`` v1 in production, trained on 2,000 survey rows (so drift is judged by distances)."""
    return make_production_version(session, settings, builder, project, _head(tmp_path, "labour_force.csv", 2000))


def _score(session, settings, actor, project, name: str, rows: int | None = None, **kwargs):
    data = (SAMPLES / name).read_bytes()
    if rows is not None:
        data = b"".join(data.splitlines(keepends=True)[: rows + 1])
    return serving.score_file(session=session, settings=settings, actor=actor, project_id=project.id,
                              model_name="employment", filename=name, data=data, **kwargs).batch


def test_every_scored_batch_gets_a_report_computed_as_a_job(session, settings, builder, project, production):
    similar = _score(session, settings, builder, project, SIMILAR)
    drifted = _score(session, settings, builder, project, DRIFTED)

    quiet = monitoring.get_report(session=session, batch_id=similar.id)
    loud = monitoring.get_report(session=session, batch_id=drifted.id)
    assert (quiet.status, quiet.judged, quiet.drift_share, quiet.dataset_drift) == ("finished", True, 0.0, False)
    assert (loud.status, loud.judged, loud.dataset_drift) == ("finished", True, True)
    assert {c["column"] for c in loud.columns if c["drifted"]} == DRIFTING
    job = session.get(Job, loud.job_id)
    assert (job.kind, job.status) == ("monitoring.report", "succeeded")
    # The training data is profiled once per version: both reports use the same stored profile.
    assert quiet.quality["reference"]["profile_sha256"] == loud.quality["reference"]["profile_sha256"]
    assert quiet.quality["reference"]["rows"] == 2000
    assert loud.quality["volume"] == {"rows": 1000, "previous_batches": 1, "previous_median": 1000.0, "ratio": 1.0}
    assert loud.prediction_drift["columns"][0]["column"] == "predicted class"

    health = monitoring.model_health(session=session, model_id=loud.model_id)
    assert health.health == "warning" and health.production == 1 and health.batches == 2
    assert health.reasons[0].startswith(f"Batch {drifted.id}: 4 of 8 input columns drifted (50%")
    evidence = checklist.evidence_for(session=session, settings=settings, version_id=production.id)["SM-03"]
    assert evidence.status == "warn" and evidence.facts["Drifted columns"] == "4 of 8 (50%)"

    line = monitoring.timeline(session=session, model_id=loud.model_id)
    assert [p["batch_id"] for p in line["points"]] == [similar.id, drifted.id]
    assert [p["drift_share"] for p in line["points"]] == [0.0, 0.5]
    assert {c["column"] for c in line["cells"]} >= DRIFTING
    assert [e["kind"] for e in line["events"]] == ["promotion"]


def test_a_small_batch_raises_no_false_alarm(session, settings, builder, project, production):
    batch = _score(session, settings, builder, project, DRIFTED, rows=40)

    report = monitoring.get_report(session=session, batch_id=batch.id)
    assert report.finished and not report.judged and report.dataset_drift is None
    assert report.method.startswith("Not judged: 40 rows, fewer than 100.")
    assert {c["verdict"] for c in report.columns} == {"not judged"}
    assert monitoring.model_health(session=session, model_id=report.model_id).health == "ok"
    assert checklist.evidence_for(session=session, settings=settings, version_id=production.id)["SM-03"].status == \
        "info"


def test_labels_matched_by_key_add_the_performance_to_the_report(session, settings, builder, project, production):
    batch = _score(session, settings, builder, project, SIMILAR, keep_export=True)
    # The batch file itself holds the true values (employed) and the key (person_id); send them shuffled.
    labels = pd.read_csv(SAMPLES / SIMILAR)[["person_id", "employed"]].sample(frac=1, random_state=1)
    report = monitoring.attach_labels(session=session, settings=settings, actor=builder, batch_id=batch.id,
                                      filename="truth.csv", data=labels.to_csv(index=False).encode(), key="person_id")

    performance = report.performance
    assert performance["matched_by"] == "key person_id" and performance["labelled_rows"] == 1000
    auc = performance["metrics"]["roc_auc"]
    assert 0.6 < auc["value"] < 1 and auc["low"] < auc["value"] < auc["high"]
    assert performance["training"]["roc_auc"]["value"] > 0.5
    assert report.primary_performance()["metric"] == "roc_auc"
    stored = session.exec(select(PredictionBatch).where(PredictionBatch.id == batch.id)).one()
    assert stored.labels_sha256 == performance["labels_sha256"]
    point = monitoring.timeline(session=session, model_id=report.model_id)["points"][0]
    assert point["value"] == auc["value"] and point["low"] == auc["low"]


def test_labels_matched_by_row_order_give_the_same_figures(session, settings, builder, project, production):
    batch = _score(session, settings, builder, project, SIMILAR, rows=300)
    truth = pd.read_csv(SAMPLES / SIMILAR, nrows=300)[["employed"]]
    report = monitoring.attach_labels(session=session, settings=settings, actor=builder, batch_id=batch.id,
                                      filename="truth.csv", data=truth.to_csv(index=False).encode())
    assert report.performance["matched_by"] == "row order" and report.performance["labelled_rows"] == 300
    expected = pd.read_csv(SAMPLES / SIMILAR, nrows=300)["employed"].map({"yes": "true", "no": "false"})
    rows = serving.load_rows(settings=settings, batch=serving.get_batch(session=session, batch_id=batch.id))
    assert report.performance["metrics"]["accuracy"]["value"] == pytest.approx(
        (rows["__predicted__"] == expected).mean())


def test_label_files_that_do_not_fit_are_refused(session, settings, builder, project, production):
    batch = _score(session, settings, builder, project, SIMILAR, rows=120, keep_export=True)
    truth = pd.read_csv(SAMPLES / SIMILAR, nrows=120)[["person_id", "employed"]]

    def attach(frame: pd.DataFrame, **kwargs):
        return monitoring.attach_labels(session=session, settings=settings, actor=kwargs.pop("actor", builder),
                                        batch_id=batch.id, filename="truth.csv",
                                        data=frame.to_csv(index=False).encode(), **kwargs)

    unknown = truth.assign(employed=["maybe"] * 3 + truth["employed"].tolist()[3:])
    with pytest.raises(InvalidInput, match="3 true value\\(s\\) are not classes the model knows \\(e.g. 'maybe'\\)"):
        attach(unknown, key="person_id")
    with pytest.raises(InvalidInput, match="The file has no column 'respondent' to match on"):
        attach(truth, key="respondent")
    with pytest.raises(InvalidInput, match="The file has 119 rows but the batch has 120"):
        attach(truth[["employed"]].head(119))
    with pytest.raises(InvalidInput, match="The file has no column 'employed' with the true values"):
        attach(truth.rename(columns={"employed": "status"}).assign(extra=1), key="person_id")
    rita = make_user(session, "rita", roles=("reviewer",))
    with pytest.raises(NotAllowed):
        attach(truth, key="person_id", actor=rita)
    report = monitoring.get_report(session=session, batch_id=batch.id)
    assert report.performance is None and report.labels_sha256 is None


def test_the_alert_rules_are_checked_when_a_report_is_finished(session, settings, builder, project, production,
                                                                monkeypatch):
    calls = []
    fake = type(sys)("core.alerts")
    fake.evaluate_report = lambda **kwargs: calls.append(kwargs["report_id"])
    monkeypatch.setitem(sys.modules, "core.alerts", fake)
    batch = _score(session, settings, builder, project, DRIFTED)
    report = monitoring.get_report(session=session, batch_id=batch.id)
    assert calls == [report.id]

    # Before the alerts module exists (or when it cannot be imported) monitoring still works.
    monkeypatch.setitem(sys.modules, "core.alerts", None)
    assert monitoring.evaluate_alerts(session=session, settings=settings, report_id=report.id) is False
    second = _score(session, settings, builder, project, SIMILAR)
    assert monitoring.get_report(session=session, batch_id=second.id).finished


def test_a_failing_report_never_stops_scoring_and_says_why(session, settings, builder, project, production,
                                                            monkeypatch):
    def broken(**_kwargs):
        raise InvalidInput("The training data of this model is gone.")

    monkeypatch.setattr(monitoring, "reference_profile", broken)
    batch = _score(session, settings, builder, project, SIMILAR, rows=150)
    report = monitoring.get_report(session=session, batch_id=batch.id)
    assert report.status == "failed" and report.error == "The training data of this model is gone."
    assert session.get(Job, report.job_id).status == "failed"
    assert monitoring.model_health(session=session, model_id=report.model_id).health == "warning"


@sqlite_only
def test_recompute_makes_the_full_evidently_report(session, settings, builder, project, production):
    batch = _score(session, settings, builder, project, DRIFTED, rows=300)
    assert monitoring.get_report(session=session, batch_id=batch.id).html_sha256 is None
    job_id = monitoring.recompute(session=session, settings=settings, runner=None, actor=builder, batch_id=batch.id)

    report = monitoring.get_report(session=session, batch_id=batch.id)
    assert report.job_id == job_id and report.finished and report.html_sha256
    html = monitoring.load_html(settings=settings, report=report).decode()
    assert "<html" in html.lower() and "hours_usual" in html
    assert report.quality["html"] == {"reference_rows": 2000, "current_rows": 300, "sampled": False}
    assert session.exec(select(MonitoringReport)).one().html_sha256 == report.html_sha256


@sqlite_only
def test_a_coding_model_reports_automation_and_the_accuracy_of_automatic_codes(session, settings, builder, project,
                                                                               tmp_path):
    from core.training import runs

    version = make_production_version(session, settings, builder, project, _head(tmp_path, "job_descriptions.csv",
                                                                                 1500),
                                      model_name="coding", target="code")
    run = runs.get_run(session=session, run_id=version.run_id)
    assert run.task == "text"
    runs.set_thresholds(session=session, actor=builder, run_id=run.id, coding_threshold=0.3)
    lines = (SAMPLES / "job_descriptions.csv").read_bytes().splitlines(keepends=True)
    data = lines[0] + b"".join(lines[2001:2301])
    batch = serving.score_file(session=session, settings=settings, actor=builder, project_id=project.id,
                               model_name="coding", filename="new.csv", data=data, keep_export=True).batch
    truth = pd.read_csv(io_bytes(data), dtype=str)[["record_id", "code"]]
    report = monitoring.attach_labels(session=session, settings=settings, actor=builder, batch_id=batch.id,
                                      filename="codes.csv", data=truth.to_csv(index=False).encode(), key="record_id")

    coding = report.performance["coding"]
    rows = serving.load_rows(settings=settings, batch=serving.get_batch(session=session, batch_id=batch.id))
    automatic = rows["__coding__"] == "automatic"
    assert coding["automation_rate"] == pytest.approx(automatic.mean()) and 0 < coding["automation_rate"] < 1
    right = (rows["__predicted__"][automatic] == truth["code"][automatic.to_numpy()].to_numpy()).mean()
    assert coding["automatic"]["accuracy"] == pytest.approx(right)
    assert coding["coding_threshold"] == 0.3
    assert report.prediction_drift["automation_rate"] == pytest.approx(automatic.mean())
    [text] = [c for c in report.columns if c["column"] == "description"]
    assert text["method_name"] == "Absolute text content drift" and text["verdict"] in ("drift", "no drift")
    point = monitoring.timeline(session=session, model_id=report.model_id)["points"][0]
    assert point["automation_rate"] == coding["automation_rate"]


def io_bytes(data: bytes):
    import io

    return io.BytesIO(data)


# ── the command line ────────────────────────────────────────────────────────────────────────────────


def test_steward_monitor_and_labels(session, settings, builder, project, production, monkeypatch, tmp_path):
    monkeypatch.setenv("STEWARD_PASSWORD", PASSWORD)
    batch = _score(session, settings, builder, project, DRIFTED, rows=200)
    runner = CliRunner()

    overview = runner.invoke(cli, ["monitor", "employment", "--json"], catch_exceptions=False)
    assert overview.exit_code == 0, overview.stderr
    found = json.loads(overview.stdout)
    assert found["health"] == "warning" and [b["batch_id"] for b in found["batches"]] == [batch.id]

    one = runner.invoke(cli, ["monitor", "employment", "--batch", str(batch.id)], catch_exceptions=False)
    assert one.exit_code == 0
    assert "Drifted input columns: 4 of 8 (50%" in one.stdout and "DRIFT" in one.stdout
    assert "age" in one.stdout and "Wasserstein distance (normed)" in one.stdout

    truth = tmp_path / "truth.csv"
    truth.write_text(pd.read_csv(SAMPLES / DRIFTED, nrows=200)[["employed"]].to_csv(index=False))
    labelled = runner.invoke(cli, ["labels", "employment", str(batch.id), str(truth), "--user", "bea"],
                             catch_exceptions=False)
    assert labelled.exit_code == 0, labelled.stderr
    assert labelled.stdout.startswith(f"Batch {batch.id}: 200 of 200 rows labelled from truth.csv (matched by row "
                                      "order).")
    refused = runner.invoke(cli, ["labels", "employment", str(batch.id), str(truth), "--user", "bea", "--key", "id"])
    assert refused.exit_code == 2 and refused.stderr.startswith("steward: The file has no column 'id' to match on.")
    missing = runner.invoke(cli, ["monitor", "employment", "--batch", "999"])
    assert missing.exit_code == 2 and "There is no prediction batch 999." in missing.stderr
