"""The model registry: versions, the promotion gates, overrides, the four-eyes rule, rollback, lineage, maturity."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from core import audit, auth, checklist, datasets, model_card, registry, review
from core.errors import Conflict, GateFailed, InvalidInput, NotAllowed
from core.models import (
    AlertRule,
    Assessment,
    AuditEvent,
    GateOverride,
    ModelVersion,
    PipelineConfig,
    VersionStatus,
)
from core.training import runs
from tests.app.conftest import sample_head
from tests.factories import approve_version, make_dataset_version, make_project, make_trained_run, make_user

# Without these columns the labour-force model is no better than chance (ROC AUC about 0.48 on 300 rows).
WEAK = ["age", "hours_usual", "months_since_last_job", "education", "household_size", "region"]


@pytest.fixture
def team(session):
    """bea builds, rita reviews, mo manages; ``admin`` is the first administrator."""
    bea = make_user(session, "bea")
    return SimpleNamespace(bea=bea, rita=make_user(session, "rita", roles=("reviewer",)),
                           mo=make_user(session, "mo", roles=("manager",)),
                           admin=auth.get_user_by_name(session=session, username="admin"),
                           project=make_project(session, bea))


@pytest.fixture
def data(session, settings, team, tmp_path):
    """300 labour-force rows, with sex marked sensitive."""
    return make_dataset_version(session, settings, team.bea, team.project,
                                sample_head(tmp_path, "labour_force.csv", 300),
                                metadata=datasets.VersionMetadata(sensitive_columns=["sex"]))


@pytest.fixture
def good(session, settings, team, data):
    """A run that clearly beats the baseline, registered as employment v1."""
    run = make_trained_run(session, settings, team.bea, data)
    return registry.register_run(session=session, actor=team.bea, run_id=run.id, model_name="employment")


def register(session, settings, team, data, **request):
    run = make_trained_run(session, settings, team.bea, data, **request)
    return registry.register_run(session=session, actor=team.bea, run_id=run.id, model_name="employment")


def complete_card(session, author, run_id: int) -> None:
    content = {field.key: f"{field.label}: written for the test." for field in model_card.FIELDS if field.required}
    content["risks"] = [{"name": "Misclassified unemployed people", "mitigation": "Manual check below 0.6"}]
    model_card.save_card(session=session, actor=author, run_id=run_id, content=content, based_on=0)


def certify(session, settings, run_id: int) -> None:
    certificate = runs.start_reproduction(session=session, runner=None, actor=auth.OPERATOR, run_id=run_id)
    runs.reproduce(session=session, settings=settings, certificate_id=certificate.id, actor=auth.OPERATOR)


def reviewed(session, settings, builder, reviewer, version_id: int, decision: str = "approve",
             conditions: str = "") -> None:
    """The real review flow: the builder answers every item and submits, the reviewer agrees and decides."""
    view = checklist.get_assessment(session=session, version_id=version_id) or checklist.start_assessment(
        session=session, actor=builder, version_id=version_id)
    for item in checklist.load_template().items:
        if item.required:
            checklist.save_answer(session=session, actor=builder, assessment_id=view.id, code=item.code, answer="yes",
                                  justification="Checked against the evidence.",
                                  expected_revision=view.items[item.code].revision)
    approve_version(session, settings, builder, reviewer, version_id, decision=decision, conditions=conditions)


def ready(session, settings, team, version) -> None:
    """Card written, run reproduced and review approved: every gate that people control passes."""
    complete_card(session, team.bea, version.run_id)
    certify(session, settings, version.run_id)
    reviewed(session, settings, team.bea, team.rita, version.id)


def gates(session, settings, version_id: int) -> dict[str, registry.GateResult]:
    report = registry.evaluate_gates(session=session, settings=settings, version_id=version_id)
    return {gate.gate: gate for gate in report.gates}


def waive(session, settings, team, version_id: int, *names: str) -> None:
    for name in names:
        registry.override_gate(session=session, settings=settings, actor=team.admin, version_id=version_id,
                               gate=name, reason="Pilot model, accepted by the board on 3 March.")


def status_of(session, version_id: int) -> tuple[str, bool]:
    row = session.get(ModelVersion, version_id, populate_existing=True)
    return row.status, row.is_fallback


# ── registering ─────────────────────────────────────────────────────────────────────────────────────


def test_registering_creates_the_model_once_and_numbers_its_versions(session, settings, team, data, good):
    second = register(session, settings, team, data, excluded=WEAK)

    assert (good.label, good.status, good.parent_id) == ("employment v1", "candidate", None)
    assert (second.label, second.parent_id) == ("employment v2", good.id)
    [model] = registry.list_models(session=session, project_id=team.project.id)
    assert [v.number for v in model.versions] == [2, 1] and model.production is None
    assert [(t.from_status, t.to_status, t.actor_name) for t in registry.transitions(
        session=session, version_id=second.id)] == [(None, "candidate", "bea")]
    with pytest.raises(Conflict, match="already registered as employment v1"):
        registry.register_run(session=session, actor=team.bea, run_id=good.run_id, model_name="other")
    with pytest.raises(NotAllowed):
        registry.register_run(session=session, actor=team.rita, run_id=good.run_id, model_name="other")
    assert registry.registrable_runs(session=session, project_id=team.project.id) == []
    other = make_trained_run(session, settings, team.bea, data, target="region")
    with pytest.raises(InvalidInput, match="employment predicts 'employed' \\(binary\\); run 3 predicts 'region'"):
        registry.register_run(session=session, actor=team.bea, run_id=other.id, model_name="employment")


# ── gates ───────────────────────────────────────────────────────────────────────────────────────────


def test_a_fresh_candidate_fails_the_gates_people_control_and_says_what_to_do(session, settings, team, good):
    found = gates(session, settings, good.id)

    assert list(found) == list(registry.GATES)
    assert {name for name, gate in found.items() if not gate.passed} == {"review", "model_card", "reproducibility"}
    assert found["review"].reason.startswith("No review decision yet")
    assert "0% complete" in found["model_card"].reason and "Overview" in found["model_card"].reason
    assert "has not been reproduced yet" in found["reproducibility"].reason
    assert found["baseline"].reason.startswith("ROC AUC 0.779 against 0.500") and "margin 0.010" in \
        found["baseline"].reason
    assert "nothing to compare with" in found["production"].reason


def test_each_gate_passes_once_its_evidence_exists_and_conditions_are_shown(session, settings, team, good):
    complete_card(session, team.bea, good.run_id)
    certify(session, settings, good.run_id)
    reviewed(session, settings, team.bea, team.rita, good.id, decision="approve_with_conditions",
             conditions="Re-check the female group after three months.")

    report = registry.evaluate_gates(session=session, settings=settings, version_id=good.id)

    assert report.ok and [gate.verdict for gate in report.gates] == ["passed"] * 6
    found = {gate.gate: gate for gate in report.gates}
    assert found["review"].conditions == "Re-check the female group after three months."
    assert "Approved with conditions by rita" in found["review"].reason
    assert found["reproducibility"].reason.startswith("Certificate 1: re-running run")


def test_a_reopened_or_expired_approval_no_longer_passes_the_review_gate(session, settings, team, good):
    reviewed(session, settings, team.bea, team.rita, good.id)
    assert gates(session, settings, good.id)["review"].passed

    assessment = session.exec(select(Assessment)).one()
    assessment.reassess_by = date.today() - timedelta(days=1)
    session.add(assessment)
    session.commit()
    assert "expired on" in gates(session, settings, good.id)["review"].reason

    review.reopen(session=session, actor=team.bea, version_id=good.id, reason="Drift alert on the region column")
    gate = gates(session, settings, good.id)["review"]
    assert not gate.passed and "re-opened: Drift alert on the region column" in gate.reason


def test_a_model_no_better_than_the_baseline_fails_that_gate(session, settings, team, data):
    weak = register(session, settings, team, data, excluded=WEAK)

    gate = gates(session, settings, weak.id)["baseline"]

    assert not gate.passed
    assert gate.reason.startswith("ROC AUC 0.479 against 0.500") and "worse by 0.021" in gate.reason


def _run(metric: str, value: float, baseline: float, task: str = "binary", subgroups=()):
    return SimpleNamespace(primary_metric=metric, task=task, evaluation={"metrics": {metric: {"value": value}},
                                                                         "subgroups": list(subgroups)},
                           baseline={metric: baseline})


@pytest.mark.parametrize(("metric", "value", "baseline", "passes", "words"), [
    ("roc_auc", 0.515, 0.5, True, "better by 0.015 (margin 0.010)"),
    ("roc_auc", 0.505, 0.5, False, "better by only 0.005, short of the margin 0.010"),
    ("rmse", 9.0, 10.0, True, "better by 10.0% (margin 1.0%)"),  # lower is better, judged as a share
    ("rmse", 9.95, 10.0, False, "better by only 0.5%"),
    ("rmse", 11.0, 10.0, False, "worse by 10.0%"),
    ("log_loss", 0.70, 0.69, False, "worse by 1.4%"),
])
def test_the_baseline_margin_respects_the_metric_direction(metric, value, baseline, passes, words):
    gate = registry._baseline_gate(_run(metric, value, baseline, task="regression" if metric == "rmse" else "binary"),
                                   margin=0.01)
    assert gate.passed is passes and words in gate.reason


def _group(group, value, overall, metric="roc_auc", small=False):
    better = metric not in ("rmse", "mae")
    return {"column": "sex", "group": group, "count": 10 if small else 100, "metric": metric, "value": value,
            "overall": overall, "gap": (overall - value) if better else (value - overall), "small": small}


def test_a_sensitive_group_far_below_overall_fails_and_small_groups_are_not_judged():
    failing = registry._subgroup_gate(_run("roc_auc", 0.8, 0.5, subgroups=[
        _group("male", 0.84, 0.8), _group("female", 0.71, 0.8), _group("other", 0.3, 0.8, small=True)]), 0.05)
    passing = registry._subgroup_gate(_run("roc_auc", 0.8, 0.5, subgroups=[
        _group("male", 0.82, 0.8), _group("female", 0.77, 0.8)]), 0.05)
    regression = registry._subgroup_gate(_run("rmse", 10.0, 20.0, subgroups=[
        _group("female", 10.4, 10.0, metric="rmse"), _group("male", 9.6, 10.0, metric="rmse")]), 0.05)

    assert not failing.passed
    assert failing.reason == ("sex = female: ROC AUC 0.710 against 0.800 overall, 0.090 worse (tolerance 0.050) "
                              "(1 group with too few test rows not judged).")
    assert passing.passed and "Largest gap sex = female" in passing.reason
    assert regression.passed and "4.0% worse (tolerance 5.0%)" in regression.reason  # errors compared as shares


def test_a_candidate_worse_than_production_on_the_same_rows_fails(session, settings, team, data, good):
    waive(session, settings, team, good.id, "review", "model_card", "reproducibility")
    registry.promote_version(session=session, settings=settings, actor=team.mo, version_id=good.id)
    weak = register(session, settings, team, data, excluded=WEAK)

    gate = gates(session, settings, weak.id)["production"]

    # v2's test set keeps only its own columns: v1 gets the others from the same rows of the dataset.
    assert not gate.passed
    assert gate.reason.startswith("On this version's 60 held-out test rows (age, education, hours_usual, "
                                  "household_size, months_since_last_job and 1 more taken from the same rows of "
                                  "labour_force v1, which the test set does not keep): ")
    assert gate.reason.endswith("ROC AUC 0.479 against 0.779 for v1, worse by 0.300 (tolerance 0.010).")


def test_without_common_test_rows_the_recorded_results_are_compared_and_said_so(session, settings, team, data,
                                                                               good):
    waive(session, settings, team, good.id, "review", "model_card", "reproducibility")
    registry.promote_version(session=session, settings=settings, actor=team.mo, version_id=good.id)
    weak = register(session, settings, team, data, excluded=WEAK, seed=7)

    def apart(model_run, test_run):
        return {"comparable": False, "why": "the test data lacks column(s) it needs: age"}

    gate = registry.evaluate_gates(session=session, settings=settings, version_id=weak.id, scorer=apart).gates[4]

    assert not gate.passed
    assert gate.reason.startswith("Not scored on the same data (v1 cannot be: the test data lacks column(s) it "
                                  "needs: age); compared the recorded test results instead: ROC AUC ")
    assert "against 0.779 for v1, worse by" in gate.reason
    assert gate.reason.endswith("They come from different test rows, so small differences mean little.")


def test_the_production_model_is_scored_on_the_candidates_test_rows_when_it_can_be(session, settings, team, data,
                                                                                   good):
    first = runs.get_run(session=session, run_id=good.run_id)
    assert registry.cross_score(settings=settings, model_run=first, test_run=first)["metrics"]["roc_auc"] == \
        first.evaluation["metrics"]["roc_auc"]["value"]  # scoring again gives the recorded figure

    waive(session, settings, team, good.id, "review", "model_card", "reproducibility")
    registry.promote_version(session=session, settings=settings, actor=team.mo, version_id=good.id)
    second = register(session, settings, team, data, seed=7)
    calls = []

    def better_production(model_run, test_run):
        calls.append((model_run.id, test_run.id))
        return {"comparable": True, "rows": 60, "metrics": {"roc_auc": 0.95}}

    gate = registry.evaluate_gates(session=session, settings=settings, version_id=second.id,
                                   scorer=better_production).gates[4]
    real = gates(session, settings, second.id)["production"]

    assert calls == [(good.run_id, second.run_id)]
    assert not gate.passed and gate.reason.startswith("On this version's 60 held-out test rows: ROC AUC")
    assert "against 0.950 for v1, worse by" in gate.reason
    assert real.reason.startswith("On this version's 60 held-out test rows")
    assert "seed 42" in real.reason  # another seed held out other rows: said, not hidden


# ── overrides and promotion ─────────────────────────────────────────────────────────────────────────


def test_only_an_administrator_overrides_a_failed_gate_and_only_with_a_reason(session, settings, team, good):
    with pytest.raises(NotAllowed):
        registry.override_gate(session=session, settings=settings, actor=team.mo, version_id=good.id,
                               gate="model_card", reason="The card is written elsewhere, in the wiki.")
    with pytest.raises(InvalidInput, match="at least 10 characters"):
        registry.override_gate(session=session, settings=settings, actor=team.admin, version_id=good.id,
                               gate="model_card", reason="ok")
    with pytest.raises(Conflict, match="nothing to override"):
        registry.override_gate(session=session, settings=settings, actor=team.admin, version_id=good.id,
                               gate="baseline", reason="Not needed, but tried anyway.")

    registry.override_gate(session=session, settings=settings, actor=team.admin, version_id=good.id,
                           gate="model_card", reason="The card is written elsewhere, in the wiki.")

    gate = gates(session, settings, good.id)["model_card"]
    assert (gate.passed, gate.verdict, gate.override.actor_name) == (False, "overridden", "admin")
    assert gate.override.reason == "The card is written elsewhere, in the wiki."
    row = session.exec(select(GateOverride)).one()
    assert (row.version_id, row.gate) == (good.id, "model_card")
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "model.gate.override")).one()
    assert event.details["reason"] == row.reason and "0% complete" in event.details["failed_because"]


def test_promotion_is_refused_while_a_gate_fails_and_names_the_gates(session, settings, team, good):
    with pytest.raises(GateFailed) as refused:
        registry.promote_version(session=session, settings=settings, actor=team.mo, version_id=good.id)

    message = str(refused.value)
    assert message.startswith("employment v1 cannot be promoted: 3 gates fail.")
    assert "“Model card complete” fails" in message and "override a failed gate" in message
    assert status_of(session, good.id) == ("candidate", False)


def test_a_manager_promotes_once_every_gate_passes_and_it_is_recorded(session, settings, team, good):
    ready(session, settings, team, good)

    promoted = registry.promote_version(session=session, settings=settings, actor=team.mo, version_id=good.id,
                                        reason="Approved for the Q3 release.")

    assert promoted.status == "production"
    [last] = registry.transitions(session=session, version_id=good.id)[-1:]
    assert (last.from_status, last.to_status, last.reason, last.actor_name) == (
        "approved", "production", "Approved for the Q3 release.", "mo")
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "model.promote")).one()
    assert event.details["gates"] == dict.fromkeys(registry.GATES, "passed")
    assert audit.verify_chain(session=session).ok


@pytest.mark.parametrize("who", ["bea", "rita"])
def test_builders_and_reviewers_cannot_promote(session, settings, team, good, who):
    ready(session, settings, team, good)
    with pytest.raises(NotAllowed, match="manager or admin"):
        registry.promote_version(session=session, settings=settings, actor=getattr(team, who), version_id=good.id)


def test_a_manager_who_built_the_model_cannot_promote_it(session, settings, team, data):
    boss = make_user(session, "bo", roles=("builder", "manager"))
    run = make_trained_run(session, settings, boss, data)
    version = registry.register_run(session=session, actor=boss, run_id=run.id, model_name="employment")
    ready(session, settings, team, version)

    with pytest.raises(NotAllowed, match="four-eyes"):
        registry.promote_version(session=session, settings=settings, actor=boss, version_id=version.id)
    assert status_of(session, version.id) == ("approved", False)


def test_an_administrator_who_edited_the_card_cannot_override_its_gates(session, settings, team, good):
    complete_card(session, team.admin, good.run_id)
    with pytest.raises(NotAllowed, match="four-eyes"):
        waive(session, settings, team, good.id, "review")


# ── production, fallback and rollback ───────────────────────────────────────────────────────────────


def test_one_production_version_the_previous_is_the_fallback_and_rollback_restores_it(session, settings, team,
                                                                                     data, good):
    waive(session, settings, team, good.id, "review", "model_card", "reproducibility")
    registry.promote_version(session=session, settings=settings, actor=team.mo, version_id=good.id)
    second = register(session, settings, team, data, seed=7)
    waive(session, settings, team, second.id, "review", "model_card", "reproducibility", "production")
    registry.promote_version(session=session, settings=settings, actor=team.admin, version_id=second.id)

    model = registry.get_model(session=session, model_id=good.model_id)
    assert (model.production.number, model.fallback.number) == (2, 1)
    assert status_of(session, good.id) == ("retired", True)
    assert registry.status_label(model.fallback) == "retired (fallback)"

    restored = registry.rollback(session=session, actor=team.mo, model_id=good.model_id, reason="Complaints")

    assert restored.number == 1
    assert status_of(session, good.id) == ("production", False)
    assert status_of(session, second.id) == ("retired", False)  # a rolled-back version is not the next fallback
    [last] = registry.transitions(session=session, version_id=second.id)[-1:]
    assert (last.to_status, last.reason, last.actor_name) == ("retired", "Rolled back to v1: Complaints", "mo")
    with pytest.raises(Conflict, match="no earlier production version"):
        registry.rollback(session=session, actor=team.mo, model_id=good.model_id)
    with pytest.raises(NotAllowed):
        registry.rollback(session=session, actor=team.bea, model_id=good.model_id)
    # The waivers counted for v2's stay in production: promoting it again needs fresh ones.
    assert [o.current for o in registry.list_overrides(session=session, version_id=second.id)] == [False] * 4
    with pytest.raises(GateFailed, match="4 gates fail"):
        registry.promote_version(session=session, settings=settings, actor=team.admin, version_id=second.id)


def test_the_store_refuses_a_second_production_version(session, settings, team, data, good):
    second = register(session, settings, team, data, seed=7)
    for version in (good, second):
        row = session.get(ModelVersion, version.id)
        row.status = VersionStatus.production
        session.add(row)
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()


# ── comparing, lineage and maturity ─────────────────────────────────────────────────────────────────


def test_versions_compare_on_each_others_test_data_parameters_and_cards(session, settings, team, data, good):
    weak = register(session, settings, team, data, excluded=WEAK)
    complete_card(session, team.bea, good.run_id)

    found = registry.compare_versions(session=session, settings=settings, version_ids=[good.id, weak.id])

    assert found.labels == ["v1", "v2"]
    on_first = {row["Metric"]: row for row in found.metrics if row["Test data"].startswith("v1's")}
    auc = on_first["ROC AUC (higher is better)"]
    assert auc["v1"] == pytest.approx(0.779, abs=1e-3) and auc["v2"] == pytest.approx(0.479, abs=1e-3)
    assert found.notes == ["v1 on v2's test data: age, education, hours_usual, household_size, "
                           "months_since_last_job and 1 more taken from the same rows of labour_force v1, which the "
                           "test set does not keep."]
    on_second = {row["Metric"]: row for row in found.metrics if row["Test data"].startswith("v2's")}
    assert on_second["ROC AUC (higher is better)"]["v1"] == pytest.approx(auc["v1"])  # the same split
    columns = next(row for row in found.parameters if row[""] == "Input columns")
    assert columns["Differs"] == "yes" and "age" in columns["v1"] and "age" not in columns["v2"]
    assert next(row for row in found.data if row[""] == "Dataset")["Differs"] == ""
    overview = next(row for row in found.card if row[""] == "Overview")
    assert (overview["v1"], overview["v2"]) == ("Overview: written for the test.", "—")
    with pytest.raises(InvalidInput):
        registry.compare_versions(session=session, settings=settings, version_ids=[good.id, good.id])


def test_lineage_reads_from_the_data_to_the_scoring_batches(session, settings, team, data, good):
    complete_card(session, team.bea, good.run_id)
    reviewed(session, settings, team.bea, team.rita, good.id, decision="approve_with_conditions",
             conditions="Watch the islands.")

    steps = registry.lineage(session=session, version_id=good.id)

    assert [step.kind for step in steps] == ["data", "run", "model", "card", "review", "scoring"]
    assert f"SHA-256 {data.sha256}" in steps[0].facts
    assert (steps[1].page, steps[1].query) == ("run.py", {"run": str(good.run_id)})
    assert "seed 42" in steps[1].facts[0] and steps[1].facts[3].startswith("Code version: steward")
    run = runs.get_run(session=session, run_id=good.run_id)
    assert f"Model file SHA-256 {run.model_sha256}" in steps[2].facts
    assert steps[3].title == "Model card revision 1" and "100% complete" in steps[3].facts
    assert "Decision: approve with conditions by rita" in steps[4].facts[1]
    assert "Conditions: Watch the islands." in steps[4].facts
    assert (steps[5].present, steps[5].facts) == (False, ["None yet."])


def test_maturity_states_each_principle_with_evidence_and_the_level(session, settings, team, good):
    before = registry.maturity(session=session, model_id=good.model_id)

    assert [p.key for p in before.principles] == list(registry.PRINCIPLES)
    assert {p.key for p in before.principles if p.met} == {"versioned"}
    evidence = {p.key: p.evidence for p in before.principles}
    assert evidence["monitoring"] == "Not met: no monitoring configured."
    assert evidence["pipeline"].startswith("Not met: no automated retraining pipeline is configured")
    assert evidence["deployment"] == "Not met: no version is in production."
    assert before.summary.startswith("Level 0: 1 of 6 principles met. Level 1 also needs automated pipeline")

    ready(session, settings, team, good)
    registry.promote_version(session=session, settings=settings, actor=team.mo, version_id=good.id)
    after = registry.maturity(session=session, model_id=good.model_id)

    assert {"versioned", "reproducible", "deployment", "governance"} <= {p.key for p in after.principles if p.met}
    evidence = {p.key: p.evidence for p in after.principles}
    assert evidence["governance"] == "v1 approved by rita."
    assert "in production since" in evidence["deployment"] and "0 scoring batches" in evidence["deployment"]
    assert after.level == 0  # nothing retrains it yet
    [overview] = registry.project_maturity(session=session, project_id=team.project.id)
    assert (overview.model_name, overview.level) == ("employment", 0)

    # Alert rules and the retraining pipeline are set up on their own pages; their rows are what counts here.
    if not session.exec(select(AlertRule)).first():
        session.add(AlertRule(model_id=good.model_id, metric="drift_share", threshold=0.3))
    session.add(PipelineConfig(model_id=good.model_id, schedule_days=30, on_new_data=True))
    session.commit()
    automated = registry.maturity(session=session, model_id=good.model_id)

    assert automated.level == 1 and automated.summary == "Level 1: all 6 principles are met."
    evidence = {p.key: p.evidence for p in automated.principles}
    assert "drift_share above 0.3" in evidence["monitoring"]
    assert evidence["monitoring"].endswith("; 0 monitoring reports so far.")
    assert evidence["pipeline"] == ("The pipeline retrains the model every 30 days and when new data arrives; it "
                                    "has not run yet.")
