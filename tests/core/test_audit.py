"""The audit trail is hash-chained: any changed, removed or inserted row is found."""

from sqlalchemy import text

from core import audit, projects
from tests.factories import make_project, make_user


def _trail(session):
    owner = make_user(session, "bea")
    for name in ("one", "two", "three"):
        make_project(session, owner, name)
    return owner


def test_every_service_change_writes_an_event(session):
    owner = _trail(session)
    projects.set_archived(session=session, actor=owner, project_id=1, archived=True)
    actions = [event.action for event in audit.list_events(session=session)]
    assert actions[:2] == ["project.archive", "project.create"]
    assert audit.verify_chain(session=session).ok


def test_a_changed_row_is_found(session):
    _trail(session)
    session.execute(text("UPDATE auditevent SET details = '{\"name\": \"forged\"}' WHERE seq = 3"))
    session.commit()
    report = audit.verify_chain(session=session)
    assert not report.ok and report.first_broken_seq == 3
    assert "changed" in report.summary


def test_a_removed_row_is_found(session):
    _trail(session)
    session.execute(text("DELETE FROM auditevent WHERE seq = 2"))
    session.commit()
    assert audit.verify_chain(session=session).first_broken_seq == 2


def test_removing_the_newest_rows_is_found(session):
    _trail(session)
    session.execute(text("DELETE FROM auditevent WHERE seq = (SELECT MAX(seq) FROM auditevent)"))
    session.commit()
    assert not audit.verify_chain(session=session).ok


def test_filters(session):
    _trail(session)
    assert {e.actor_name for e in audit.list_events(session=session, actor_name="bea")} == {"bea"}
    assert len(audit.list_events(session=session, action="project.create")) == 3
    assert "project" in audit.distinct_values(session=session)["entity_type"]
