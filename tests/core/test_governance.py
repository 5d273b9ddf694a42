"""Model card, responsible-ML checklist and peer review: auto-fill, evidence, the review's state machine, four eyes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select

from core import checklist, datasets, model_card, notifications, registry, review
from core.datasets import VersionMetadata
from core.errors import Conflict, InvalidInput, NotAllowed
from core.models import AuditEvent, StageTransition
from core.training import runs
from tests.conftest import MCT_SCHEMA
from tests.factories import (
    COMPLETE_CARD,
    approve_version,
    complete_card,
    make_assessed_version,
    make_dataset_version,
    make_project,
    make_trained_run,
    make_user,
)

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"


@pytest.fixture
def team(session):
    bea = make_user(session, "bea")
    rita = make_user(session, "rita", roles=("reviewer",))
    return bea, rita, make_project(session, bea)


@pytest.fixture
def run(session, settings, team, tmp_path):
    """A model of ``employed`` on 600 survey rows with sex tagged sensitive and a recorded legal basis."""
    bea, _rita, project = team
    lines = (SAMPLES / "labour_force.csv").read_text().splitlines(keepends=True)
    path = tmp_path / "labour.csv"
    path.write_text("".join(lines[:601]))
    version = make_dataset_version(session, settings, bea, project, path, metadata=VersionMetadata(
        sensitive_columns=["sex"], source="Labour force survey", legal_basis="Statistics Act s. 13"))
    return make_trained_run(session, settings, bea, version)


# ── model card ──────────────────────────────────────────────────────────────────────────────────────


def test_a_new_card_is_filled_from_the_store_and_lists_what_the_builder_must_write(session, run):
    document = model_card.card_document(session=session, run_id=run.id)

    details = document.auto["model_details"]
    assert details["model_sha256"] == run.model_sha256 and details["seed"] == run.seed
    assert details["trained_by"] == "bea" and details["algorithm"]
    assert details["parameters"], "the chosen estimator's settings are listed"
    assert document.auto["training_data"]["legal_basis"] == "Statistics Act s. 13"
    assert {r["key"] for r in document.auto["metrics"]["rows"]} >= {"roc_auc", "accuracy"}
    assert all(r["low"] <= r["value"] <= r["high"] for r in document.auto["metrics"]["rows"])
    assert {g["group"] for g in document.auto["quantitative_analyses"]["subgroups"]} == {"female", "male"}
    assert document.auto["explanation"]["top_features"]
    assert document.completeness.percent == 0
    assert "Primary uses" in document.completeness.missing
    assert "At least one risk with its mitigation" in document.completeness.missing


def test_every_save_is_a_revision_with_its_author_and_changes(session, run, team):
    bea, _rita, _project = team
    first = model_card.save_card(session=session, actor=bea, run_id=run.id, content={"overview": "Employment"},
                                 based_on=0)
    second = model_card.save_card(session=session, actor=bea, run_id=run.id,
                                  content={"overview": "Employment status", "limitations": "Young people"},
                                  based_on=first.number)

    assert (first.number, second.number) == (1, 2)
    assert {c["field"] for c in second.changes} == {"Overview", "Known limitations"}
    assert second.changes[0]["before"] == "Employment"
    assert [r.number for r in model_card.list_revisions(session=session, run_id=run.id)] == [2, 1]
    assert session.exec(select(AuditEvent).where(AuditEvent.action == "model_card.save")).all()
    assert model_card.completeness(session=session, run_id=run.id).percent == round(100 * 2 / 12)


def test_saving_over_a_colleagues_newer_revision_is_refused(session, run, team):
    bea, _rita, _project = team
    ines = make_user(session, "ines")
    model_card.save_card(session=session, actor=ines, run_id=run.id, content={"overview": "Ines's text"}, based_on=0)

    with pytest.raises(Conflict, match="changed by ines at .* Reload"):
        model_card.save_card(session=session, actor=bea, run_id=run.id, content={"overview": "Bea's"}, based_on=0)
    assert model_card.card_document(session=session, run_id=run.id).content["overview"] == "Ines's text"


def test_bad_card_input_is_refused_with_a_plain_message(session, run, team):
    bea, rita, _project = team
    with pytest.raises(InvalidInput, match="Nothing changed"):
        model_card.save_card(session=session, actor=bea, run_id=run.id, content={}, based_on=0)
    with pytest.raises(InvalidInput, match="longer than 5000"):
        model_card.save_card(session=session, actor=bea, run_id=run.id, content={"overview": "x" * 5001}, based_on=0)
    with pytest.raises(NotAllowed):
        model_card.save_card(session=session, actor=rita, run_id=run.id, content={"overview": "x"}, based_on=0)
    assert model_card.list_revisions(session=session, run_id=run.id) == []


def test_a_complete_card_exports_markdown_with_user_text_escaped(session, run, team):
    bea, _rita, _project = team
    content = dict(COMPLETE_CARD, overview="<script>alert(1)</script> employment")
    model_card.save_card(session=session, actor=bea, run_id=run.id, content=content, based_on=0)
    document = model_card.card_document(session=session, run_id=run.id)

    assert document.completeness.complete and document.completeness.percent == 100
    text = model_card.to_markdown(document)
    assert "&lt;script&gt;" in text and "<script>" not in text
    assert "Bias against small regions" in text and run.model_sha256 in text


@pytest.mark.skipif(not MCT_SCHEMA.is_file(), reason="the Model Card Toolkit schema file is not at hand")
def test_the_json_export_validates_against_the_model_card_toolkit_schema(session, settings, run, team):
    bea, _rita, _project = team
    complete_card(session, bea, run.id)
    document = model_card.card_document(session=session, run_id=run.id)

    data, errors = model_card.export_json(settings=settings, document=document)
    card = json.loads(data)
    assert errors == []
    assert card["schema_version"] == "0.0.2"
    assert all(isinstance(m["value"], str) for m in card["quantitative_analysis"]["performance_metrics"])
    assert card["model_details"]["version"]["date"].count("-") == 2
    assert card["considerations"]["ethical_considerations"][0]["mitigation_strategy"]
    # A broken card is caught: the validator is really applied.
    card["model_details"]["version"]["date"] = 20261126
    assert model_card.validate_mct(card, settings.model_card_schema)


# ── checklist ───────────────────────────────────────────────────────────────────────────────────────


def test_the_template_loads_with_its_dimensions_and_items():
    template = checklist.load_template()

    assert set(template.dimensions) == {"RP", "RD", "SM", "SA", "GV"}
    assert len(template.items) == 39 and template.item("SA-03").dimension == "SA"
    assert not template.item("SA-07").required and template.item("RP-01").required
    assert set(checklist.RULES) == {item.code for item in template.items}, "every item has an evidence rule"


def test_evidence_follows_the_store_and_the_card(session, settings, run, team):
    bea, _rita, _project = team
    version = registry.register_run(session=session, actor=bea, run_id=run.id, model_name="employment")
    before = checklist.evidence_for(session=session, settings=settings, version_id=version.id)

    assert before["RP-01"].status == "pass"  # beats the dummy baseline
    assert before["RD-01"].status == "pass" and "Statistics Act" in before["RD-01"].facts["Legal basis"]
    assert before["RP-02"].status == "fail" and before["RP-04"].status == "fail" and before["SM-12"].status == "fail"
    assert before["RP-05"].status == "warn", "sex is tagged sensitive and used as a feature"
    assert before["SA-01"].status == "warn", "not reproduced yet"
    assert before["SM-05"].status == "pass" and before["SM-05"].facts["Test rows identical to a training row"] == "0"
    assert before["SM-11"].status == "pass"
    assert before["RP-06"].chart["kind"] == "subgroups"

    complete_card(session, bea, run.id)
    certificate = runs.reproduce(session=session, settings=settings, actor=bea,
                                 certificate_id=runs.start_reproduction(session=session, runner=None, actor=bea,
                                                                        run_id=run.id).id)
    after = checklist.evidence_for(session=session, settings=settings, version_id=version.id)
    assert certificate.status == "passed"
    assert after["RP-02"].status == after["RP-04"].status == after["SM-12"].status == "pass"
    assert after["SA-01"].status == "pass"


def test_duplicated_rows_across_the_split_fail_the_leakage_item(session, settings, team, tmp_path):
    bea, _rita, project = team
    lines = (SAMPLES / "labour_force.csv").read_text().splitlines(keepends=True)
    path = tmp_path / "doubled.csv"
    path.write_text(lines[0] + "".join(lines[1:301]) * 2)  # every row twice
    data = make_dataset_version(session, settings, bea, project, path, dataset_name="doubled")
    doubled = make_trained_run(session, settings, bea, data)
    version = registry.register_run(session=session, actor=bea, run_id=doubled.id, model_name="doubled")

    found = checklist.evidence_for(session=session, settings=settings, version_id=version.id)
    assert found["SM-05"].status == "fail" and int(found["SM-05"].facts["Test rows identical to a training row"]) > 0
    assert found["SM-01"].status == "warn" and found["SM-01"].facts["Duplicate rows"] == "300"


def test_answers_are_guarded_against_overwriting_a_colleagues_save(session, run, team):
    bea, _rita, _project = team
    ines = make_user(session, "ines")
    version = registry.register_run(session=session, actor=bea, run_id=run.id, model_name="employment")
    view = checklist.start_assessment(session=session, actor=bea, version_id=version.id)

    saved = checklist.save_answer(session=session, actor=ines, assessment_id=view.id, code="RP-01", answer="yes",
                                  justification="Beats the baseline.", expected_revision=0)
    with pytest.raises(Conflict, match="changed by ines"):
        checklist.save_answer(session=session, actor=bea, assessment_id=view.id, code="RP-01", answer="no",
                              justification="Mine.", expected_revision=0)
    assert checklist.get_assessment(session=session, version_id=version.id).items["RP-01"].answer == "yes"
    assert saved.revision == 1
    with pytest.raises(InvalidInput, match="justification"):
        checklist.save_answer(session=session, actor=bea, assessment_id=view.id, code="RP-02", answer="yes",
                              justification="  ", expected_revision=0)
    with pytest.raises(InvalidInput, match="Choose one of"):
        checklist.save_answer(session=session, actor=bea, assessment_id=view.id, code="RP-02", answer="maybe",
                              justification="x", expected_revision=0)


# ── review ──────────────────────────────────────────────────────────────────────────────────────────


def test_submission_is_refused_while_required_items_are_open_and_lists_them(session, settings, run, team):
    bea, _rita, _project = team
    version = registry.register_run(session=session, actor=bea, run_id=run.id, model_name="employment")
    view = checklist.start_assessment(session=session, actor=bea, version_id=version.id)
    checklist.save_answer(session=session, actor=bea, assessment_id=view.id, code="RP-01", answer="yes",
                          justification="ok", expected_revision=0)

    with pytest.raises(InvalidInput, match="Still open: RP-02, RP-03") as refusal:
        review.submit(session=session, settings=settings, actor=bea, version_id=version.id)
    assert "RP-01" not in str(refusal.value) and "SA-07" not in str(refusal.value), "monitoring items are optional"
    assert review.round_views(session=session, version_id=version.id) == []


def test_the_full_review_cycle_with_rounds_status_and_notifications(session, settings, run, team):
    bea, rita, _project = team
    version = make_assessed_version(session, bea, run.id)
    first = review.submit(session=session, settings=settings, actor=bea, version_id=version.id)

    assert registry.get_version(session=session, version_id=version.id).status == "in_review"
    assert first.snapshot["items"]["RP-01"]["evidence"]["status"] == "pass", "evidence frozen at submission"
    assert [n.page for n in notifications.list_notifications(session=session, actor=rita)] == ["review"]
    with pytest.raises(Conflict, match="submitted"):
        checklist.save_answer(session=session, actor=bea,
                              assessment_id=checklist.get_assessment(session=session, version_id=version.id).id,
                              code="RP-01", answer="no", justification="x", expected_revision=1)

    review.save_verdict(session=session, actor=rita, version_id=version.id, code="RP-04", verdict="needs_work",
                        comment="Name the harm to small regions.", expected_revision=0)
    with pytest.raises(InvalidInput, match="Give a verdict on every item"):
        review.decide(session=session, settings=settings, actor=rita, version_id=version.id, decision="approve")
    review.decide(session=session, settings=settings, actor=rita, version_id=version.id, decision="request_changes",
                  comment="See RP-04.")
    assert registry.get_version(session=session, version_id=version.id).status == "changes_requested"
    assert "asked for changes" in notifications.list_notifications(session=session, actor=bea)[0].message

    view = checklist.get_assessment(session=session, version_id=version.id)
    checklist.save_answer(session=session, actor=bea, assessment_id=view.id, code="RP-04", answer="yes",
                          justification="Risk and mitigation added to the card.",
                          expected_revision=view.items["RP-04"].revision)
    second = approve_version(session, settings, bea, rita, version.id, decision="approve_with_conditions",
                             conditions="Re-check subgroup gaps after the first quarter.")

    rounds = review.round_views(session=session, version_id=version.id)
    assert [(r.number, r.decision) for r in rounds] == [(1, "request_changes"), (2, "approve_with_conditions")]
    assert rounds[0].verdicts["RP-04"].verdict == "needs_work", "earlier rounds are kept"
    assert second.snapshot["items"]["RP-04"]["justification"] == "Risk and mitigation added to the card."
    assert registry.get_version(session=session, version_id=version.id).status == "approved"
    decision = review.latest_decision(session=session, version_id=version.id)
    assert decision["decision"] == "approve_with_conditions" and decision["conditions"].startswith("Re-check")
    assert checklist.get_assessment(session=session, version_id=version.id).reassess_by is not None
    transitions = session.exec(select(StageTransition.to_status).where(StageTransition.version_id == version.id)
                               .order_by(StageTransition.id)).all()
    assert transitions == ["candidate", "in_review", "changes_requested", "in_review", "approved"]
    board = review.dashboard(session=session, settings=settings, version_id=version.id)
    assert board.rounds == 2 and board.reviewers == ["rita"] and len(board.dimensions) == 5


def test_four_eyes_nobody_reviews_what_they_trained_documented_or_answered(session, settings, run, team):
    bea, rita, _project = team
    boss = make_user(session, "boss", roles=("builder", "reviewer", "admin"))
    version = make_assessed_version(session, bea, run.id)
    # A reviewer who also edited the card becomes an author.
    cara = make_user(session, "cara", roles=("builder", "reviewer"))
    model_card.save_card(session=session, actor=cara, run_id=run.id,
                         content=dict(COMPLETE_CARD, tradeoffs="Fewer manual checks."), based_on=1)
    review.submit(session=session, settings=settings, actor=boss, version_id=version.id)

    for author in (bea, cara, boss):  # trained it; edited the card; submitted it — whatever their roles
        assert review.review_refusal(session=session, actor=author, version_id=version.id)
        with pytest.raises(NotAllowed):
            review.save_verdict(session=session, actor=author, version_id=version.id, code="RP-01",
                                verdict="agree", comment="", expected_revision=0)
        with pytest.raises(NotAllowed):
            review.decide(session=session, settings=settings, actor=author, version_id=version.id,
                          decision="reject", comment="no")
    assert review.review_refusal(session=session, actor=rita, version_id=version.id) is None
    assert review.authors_of(session=session, version_id=version.id) >= {bea.id, cara.id, boss.id}


def test_verdicts_are_guarded_against_a_second_reviewer_overwriting(session, settings, run, team):
    bea, rita, _project = team
    rui = make_user(session, "rui", roles=("reviewer",))
    version = make_assessed_version(session, bea, run.id)
    review.submit(session=session, settings=settings, actor=bea, version_id=version.id)
    review.save_verdict(session=session, actor=rui, version_id=version.id, code="SM-06", verdict="agree",
                        comment="", expected_revision=0)

    with pytest.raises(Conflict, match="changed by rui"):
        review.save_verdict(session=session, actor=rita, version_id=version.id, code="SM-06", verdict="disagree",
                            comment="One candidate only.", expected_revision=0)
    with pytest.raises(InvalidInput, match="Say what is wrong"):
        review.save_verdict(session=session, actor=rita, version_id=version.id, code="SM-07", verdict="disagree",
                            comment="", expected_revision=0)


def test_a_decided_assessment_can_be_reopened_and_a_new_version_carries_answers_over(session, settings, run, team):
    bea, rita, _project = team
    version = make_assessed_version(session, bea, run.id)
    approve_version(session, settings, bea, rita, version.id)

    review.reopen(session=session, actor=rita, version_id=version.id, reason="Drift alert for three weeks.")
    view = checklist.get_assessment(session=session, version_id=version.id)
    assert view.status == "draft" and view.reopened_reason == "Drift alert for three weeks."
    assert registry.get_version(session=session, version_id=version.id).status == "approved", \
        "the version keeps its status until the new round is decided"

    data = datasets.get_version(session=session, version_id=run.dataset_version_id)
    retrained = make_trained_run(session, settings, bea, data, seed=7)
    newer = registry.register_run(session=session, actor=bea, run_id=retrained.id, model_name="employment")
    carried = checklist.start_assessment(session=session, actor=bea, version_id=newer.id)
    assert carried.items["RP-01"].justification == "Checked the evidence for RP-01."
    assert "carried over" in carried.reopened_reason
