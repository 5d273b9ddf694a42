"""Model card, checklist and peer review pages: what builders and reviewers see and what their clicks store."""

import pytest
from sqlmodel import select

from app import navigation
from core import checklist, datasets, model_card, notifications, registry, review
from core.models import ModelCardRevision
from tests.app.conftest import button, open_page, page_links, plain, sample_head, texts
from tests.conftest import MCT_SCHEMA
from tests.factories import (
    COMPLETE_CARD,
    approve_version,
    make_assessed_version,
    make_dataset_version,
    make_project,
    make_trained_run,
    make_user,
)


@pytest.fixture
def team(db):
    with db() as session:
        bea = make_user(session, "bea")
        rita = make_user(session, "rita", roles=("reviewer",))
        return bea, rita, make_project(session, bea)


@pytest.fixture
def run(db, sqlite_settings, team, tmp_path):
    bea, _rita, project = team
    with db() as session:
        version = make_dataset_version(session, sqlite_settings, bea, project,
                                       sample_head(tmp_path, "labour_force.csv", 500),
                                       metadata=datasets.VersionMetadata(sensitive_columns=["sex"],
                                                                         legal_basis="Statistics Act"))
        return make_trained_run(session, sqlite_settings, bea, version)


def tab_labels(at) -> list[str]:
    return [tab.label for tab in at.tabs]


def expander_of(at, code: str):
    found = [e for e in at.expander if f"{code} · " in e.label]
    assert len(found) == 1, [e.label for e in at.expander]
    return found[0]


# ── model card ──────────────────────────────────────────────────────────────────────────────────────


def test_without_a_trained_model_the_card_page_points_to_training(app_test, team):
    bea, _rita, project = team
    at = open_page(app_test(), bea, "model_card.py", project)

    assert not at.exception
    assert texts(at.info) == ["No model has been trained in this project yet, so there is no card to write."]
    assert page_links(at) == [("Train a model", "train")]


def test_the_builder_writes_the_card_and_sees_completeness_grow(app_test, db, team, run):
    bea, _rita, project = team
    at = open_page(app_test(), bea, "model_card.py", project)
    assert tab_labels(at)[:4] == ["Edit", "Read", "History", "Export"]
    assert "Completeness: 0%" in at.get("progress")[0].proto.text

    for key in ("overview", "owner_contact", "primary_uses"):
        at.text_area(key=f"card_{run.id}_{key}").input(COMPLETE_CARD[key])
    at = button(at, "Save the card").click().run()

    assert not at.exception
    assert "Saved revision 1 of the card." in texts(at.success)
    assert "Completeness: 25%" in at.get("progress")[0].proto.text
    with db() as session:
        stored = session.exec(select(ModelCardRevision)).one()
    assert stored.content["primary_uses"] == COMPLETE_CARD["primary_uses"] and stored.created_by_id == bea.id


def test_a_colleagues_save_in_between_is_not_overwritten(app_test, db, team, run):
    bea, _rita, project = team
    at = open_page(app_test(), bea, "model_card.py", project)
    with db() as session:
        ines = make_user(session, "ines")
        model_card.save_card(session=session, actor=ines, run_id=run.id, content={"overview": "Ines"}, based_on=0)

    at.text_area(key=f"card_{run.id}_overview").input("Bea's overview")
    at = button(at, "Save the card").click().run()

    assert any("changed by ines" in message for message in plain(at.error))
    with db() as session:
        assert [r.content["overview"] for r in model_card.list_revisions(session=session, run_id=run.id)] == ["Ines"]


def test_reviewers_read_the_card_but_cannot_edit_it(app_test, db, team, run):
    bea, rita, project = team
    with db() as session:
        model_card.save_card(session=session, actor=bea, run_id=run.id, content=COMPLETE_CARD, based_on=0)
    at = open_page(app_test(), rita, "model_card.py", project)

    assert tab_labels(at)[:3] == ["Read", "History", "Export"]
    assert not [t for t in at.text_area]
    assert any("Decisions about individual persons" in m for m in plain(at.markdown))
    labels = [b.label for b in at.get("download_button")]
    assert "Download as Markdown" in labels
    if MCT_SCHEMA.is_file():
        assert "Download as Model Card Toolkit JSON" in labels


# ── checklist ───────────────────────────────────────────────────────────────────────────────────────


def test_the_builder_registers_the_run_answers_an_item_and_cannot_submit_early(app_test, db, team, run):
    bea, _rita, project = team
    at = open_page(app_test(), bea, "checklist.py", project)
    at.text_input[0].set_value("employment")
    at = button(at, "Register and start the self-assessment").click().run()

    assert not at.exception
    with db() as session:
        version = registry.version_for_run(session=session, run_id=run.id)
        assert checklist.get_assessment(session=session, version_id=version.id).status == "draft"
    assert [m.label.split(" ", 1)[1] for m in at.metric] == ["Respect for People", "Respect for Data", "Sound Methods",
                                                             "Sound Application", "Review & sign-off (process)"]

    item = expander_of(at, "RP-01")
    item.radio[0].set_value("yes")
    item.text_area[0].input("Beats the baseline clearly.")
    at = item.button[0].click().run()
    with db() as session:
        stored = checklist.get_assessment(session=session, version_id=version.id).items["RP-01"]
    assert (stored.answer, stored.justification, stored.revision) == ("yes", "Beats the baseline clearly.", 1)

    at = button(at, "Submit for review").click().run()
    assert any("Still open: RP-02" in m for m in plain(at.error))


def test_submitting_freezes_the_answers_and_notifies_the_reviewer(app_test, db, sqlite_settings, team, run):
    bea, rita, project = team
    with db() as session:
        version = make_assessed_version(session, bea, run.id)
    at = open_page(app_test(), bea, "checklist.py", project)
    at = button(at, "Submit for review").click().run()

    assert not at.exception
    assert "Submitted: answers and evidence are frozen until the reviewer decides." in texts(at.caption)
    assert not [b for b in at.button if b.label == "Save answer"], "answers are read-only in review"
    with db() as session:
        assert registry.get_version(session=session, version_id=version.id).status == "in_review"
    at = open_page(app_test(), rita, "review.py", project)
    assert [p.proto.popover.label for p in at.sidebar.get("popover")] == ["Notifications (1)"]


def test_the_builder_sees_the_reviewers_request_per_item(app_test, db, sqlite_settings, team, run):
    bea, rita, project = team
    with db() as session:
        version = make_assessed_version(session, bea, run.id)
        review.submit(session=session, settings=sqlite_settings, actor=bea, version_id=version.id)
        review.save_verdict(session=session, actor=rita, version_id=version.id, code="RP-04", verdict="needs_work",
                            comment="Name the <b>harm</b>.", expected_revision=0)
        review.decide(session=session, settings=sqlite_settings, actor=rita, version_id=version.id,
                      decision="request_changes", comment="See RP-04.")
    at = open_page(app_test(), bea, "checklist.py", project)

    assert any("Request changes by rita" in m for m in plain(at.warning))
    notes = plain(expander_of(at, "RP-04").warning)
    assert any("Needs work." in n and "Name the <b>harm</b>." in n for n in notes), notes
    assert [b.label for b in expander_of(at, "RP-04").button] == ["Save answer"], "editable again"


# ── review ──────────────────────────────────────────────────────────────────────────────────────────


def test_only_reviewers_and_admins_get_the_review_page(team):
    bea, rita, _project = team

    def paths(user):
        return [spec.url_path for spec in navigation.PAGES if user.has_role(*spec.roles)]

    assert "review" not in paths(bea)
    assert {"review", "model_card", "checklist"} <= set(paths(rita))


def test_an_empty_queue_says_so(app_test, team):
    _bea, rita, project = team
    at = open_page(app_test(), rita, "review.py", project)
    assert texts(at.info) == ["Nothing is waiting for review."]


def test_the_reviewer_gives_verdicts_and_approves(app_test, db, sqlite_settings, team, run):
    bea, rita, project = team
    with db() as session:
        version = make_assessed_version(session, bea, run.id)
        submitted = review.submit(session=session, settings=sqlite_settings, actor=bea, version_id=version.id)
        for code in list(submitted.snapshot["items"])[1:]:
            review.save_verdict(session=session, actor=rita, version_id=version.id, code=code, verdict="agree",
                                comment="", expected_revision=0)
    at = open_page(app_test(), rita, "review.py", project)
    assert not at.exception and not at.warning

    item = expander_of(at, "RP-01")
    item.radio[0].set_value("agree")
    at = item.button[0].click().run()
    decision = [r for r in at.radio if r.label == "Decision"][0]
    decision.set_value("approve_with_conditions")
    [t for t in at.text_area if t.label.startswith("Conditions")][0].input("Check subgroups in March.")
    at = button(at, "Record the decision").click().run()

    assert not at.exception
    with db() as session:
        assert review.latest_decision(session=session, version_id=version.id)["conditions"] == \
            "Check subgroups in March."
        assert registry.get_version(session=session, version_id=version.id).status == "approved"
        messages = [n.message for n in notifications.list_notifications(session=session, actor=bea)]
    assert messages == ["rita approved with conditions employment v1 (review round 1)."]


def test_an_author_with_the_reviewer_role_is_told_why_and_gets_no_decision_form(app_test, db, sqlite_settings, team,
                                                                               run):
    bea, _rita, project = team
    with db() as session:
        boss = make_user(session, "boss", roles=("builder", "reviewer"))
        version = make_assessed_version(session, boss, run.id)
        review.submit(session=session, settings=sqlite_settings, actor=boss, version_id=version.id)
    at = open_page(app_test(), boss, "review.py", project)

    assert any("four-eyes rule" in m for m in plain(at.warning))
    assert not [b for b in at.button if b.label in ("Record the decision", "Save verdict")]
    assert not [r for r in at.radio if r.label == "Decision"]


def test_approved_versions_show_the_decision_to_the_builder(app_test, db, sqlite_settings, team, run):
    bea, rita, project = team
    with db() as session:
        version = make_assessed_version(session, bea, run.id)
        approve_version(session, sqlite_settings, bea, rita, version.id)
    at = open_page(app_test(), bea, "checklist.py", project)

    assert any("Round 1: Approve by rita" in m for m in plain(at.success))
    assert "Approved" in " ".join(plain(at.markdown))
