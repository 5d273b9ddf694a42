"""The audit trail page: events, filters, and the check of the hash chain."""

import pytest
from sqlalchemy import text

from core import auth
from tests.app.conftest import button, logged_in, page_title, plain
from tests.factories import make_admin, make_project, make_user

NASTY = "<b>x</b> [link](http://evil) '; drop table user;--"


def open_audit(app_test, user):
    at = logged_in(app_test(), user)
    return at.switch_page("../pages/audit.py").run()


def rows(at) -> list[dict]:
    return at.dataframe[0].value.to_dict("records")


@pytest.fixture
def trail(db):
    """An admin, a builder and a project: events 1-3, then the admin's login is event 4."""
    with db() as session:
        admin = make_admin(session)
        bea = make_user(session, "bea")
        make_project(session, bea, "Labour force")
    return admin, bea


@pytest.mark.parametrize("roles", [("builder",), ("reviewer", "manager")])
def test_only_administrators_reach_the_audit_trail(app_test, db, roles):
    with db() as session:
        someone = make_user(session, "someone", roles=roles)
    at = logged_in(app_test(), someone).run()

    assert not at.exception
    with pytest.raises(ValueError):
        at.switch_page("../pages/audit.py")


def test_admin_sees_every_event_newest_first(app_test, trail):
    admin, _ = trail
    at = open_audit(app_test, admin)

    assert not at.exception
    assert page_title(at) == "Audit trail"
    assert [(r["#"], r["Who"], r["Action"], r["On"]) for r in rows(at)] == [
        (4, "admin", "login.success", "login 1"),
        (3, "bea", "project.create", "project 1"),
        (2, "operator", "user.create", "user 2"),
        (1, "admin", "user.create_first_admin", "user 1"),
    ]
    assert at.caption[0].value == "4 most recent matching events"


def test_filters_narrow_the_events(app_test, trail):
    admin, _ = trail
    at = open_audit(app_test, admin)

    at = at.selectbox(key="audit_actor").set_value("bea").run()

    assert not at.exception
    assert [(r["Who"], r["Action"]) for r in rows(at)] == [("bea", "project.create")]

    at = at.selectbox(key="audit_actor").set_value(None).run()
    at = at.selectbox(key="audit_entity").set_value("user").run()

    assert [r["Action"] for r in rows(at)] == ["user.create", "user.create_first_admin"]


def test_verify_reports_an_intact_chain(app_test, trail):
    admin, _ = trail
    at = open_audit(app_test, admin)

    at = button(at, "Verify the chain").click().run()

    assert not at.exception
    assert not at.error
    assert plain(at.success) == ["The audit trail is intact: 4 events checked."]


def test_verify_names_the_event_changed_behind_steward(app_test, trail, engine):
    admin, _ = trail
    at = open_audit(app_test, admin)
    with engine.begin() as connection:
        connection.execute(text("UPDATE auditevent SET action = 'project.delete' WHERE seq = 3"))

    at = button(at, "Verify the chain").click().run()

    assert not at.exception
    assert plain(at.error) == [
        "The audit trail is broken at event 3: its content was changed after it was written."
    ]
    assert not at.success
    # The tampered row is still listed as it now reads: the check, not the table, tells the truth.
    assert [r["Action"] for r in rows(at) if r["#"] == 3] == ["project.delete"]


def test_verify_notices_deleted_latest_events(app_test, trail, engine):
    admin, _ = trail
    at = open_audit(app_test, admin)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM auditevent WHERE seq = 4"))

    at = button(at, "Verify the chain").click().run()

    assert not at.exception
    assert plain(at.error) == ["The audit trail is broken at event 4: events after it were removed."]


def test_names_with_markup_are_listed_and_filtered_as_typed(app_test, db):
    with db() as session:
        admin = make_admin(session)
        nasty = auth.create_user(session=session, actor=admin, username=NASTY,
                                 password="a long enough password", roles=["builder"])
        auth.start_login(session=session, user=nasty)
    at = open_audit(app_test, admin)

    assert not at.exception
    [created] = [r for r in rows(at) if r["Action"] == "user.create"]
    assert created["Details"]["username"] == NASTY
    assert NASTY in at.selectbox(key="audit_actor").options

    at = at.selectbox(key="audit_actor").set_value(NASTY).run()

    assert not at.exception
    assert [(r["Who"], r["Action"]) for r in rows(at)] == [(NASTY, "login.success")]
