import pytest

from core import projects
from core.errors import Conflict, InvalidInput, NotAllowed
from tests.factories import make_project, make_user


def test_builders_create_and_list_projects(session):
    bea = make_user(session, "bea")
    created = make_project(session, bea, "Labour force")
    listed = projects.list_projects(session=session)
    assert [(p.name, p.owner_name) for p in listed] == [("Labour force", "bea")]
    assert "Active since" in created.status_line


def test_duplicate_and_empty_names_are_refused(session):
    bea = make_user(session, "bea")
    make_project(session, bea, "Survey")
    with pytest.raises(Conflict):
        make_project(session, bea, "survey ")
    with pytest.raises(InvalidInput, match="empty"):
        make_project(session, bea, "   ")


def test_reviewers_cannot_create_projects(session):
    rex = make_user(session, "rex", roles=("reviewer",))
    with pytest.raises(NotAllowed):
        make_project(session, rex)


def test_only_owner_or_admin_archives(session):
    bea = make_user(session, "bea")
    other = make_user(session, "bob")
    project = make_project(session, bea)
    with pytest.raises(NotAllowed):
        projects.set_archived(session=session, actor=other, project_id=project.id, archived=True)
    archived = projects.set_archived(session=session, actor=bea, project_id=project.id, archived=True)
    assert archived.status == "archived"
    assert projects.list_projects(session=session) == []
    assert len(projects.list_projects(session=session, include_archived=True)) == 1
