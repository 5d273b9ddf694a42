"""Home: the project list, starting, opening and archiving projects."""

from sqlmodel import select

from core import auth
from core.config import get_settings
from core.models import Project
from tests.app.conftest import button, logged_in, page_title, plain, texts
from tests.factories import make_admin, make_project, make_user

NASTY = "<b>x</b> [link](http://evil) '; drop table user;--"


def create(at, name, description=""):
    at.text_input(key="home_name").input(name)
    at.text_area(key="home_description").input(description)
    return button(at, "Create project").click().run()


def project_cards(at) -> list[str]:
    return [text for text in texts(at.main.markdown) if text.startswith("**")]


def test_home_needs_a_live_login(app_test, db):
    with db() as session:
        admin = make_admin(session)
        bea = make_user(session, "bea")
    at = logged_in(app_test(), bea).run()
    assert page_title(at) == "Projects"
    with db() as session:
        auth.set_active(session=session, actor=admin, user_id=bea.id, active=False)

    at.run()

    assert not at.exception
    assert page_title(at) == "Log in to Steward"
    assert texts(at.info) == ["Your login has ended (deactivated). Log in again to continue."]


def test_builder_creates_a_project_which_opens_at_once(app_test, db):
    with db() as session:
        bea = make_user(session, "bea")
    at = logged_in(app_test(), bea).run()
    assert texts(at.info) == ["There are no projects yet. Start one below."]

    at = create(at, "  Labour force ", "Employment status by region")

    assert not at.exception
    assert not at.error
    with db() as session:
        stored = session.exec(select(Project)).one()
    assert (stored.name, stored.description) == ("Labour force", "Employment status by region")
    assert stored.owner_id == bea.id
    assert project_cards(at) == ["**Labour force** (open)  \nOwner: bea"]
    assert "Project: Labour force" in texts(at.sidebar.caption)
    assert "Employment status by region" in texts(at.text)


def test_open_a_project_shows_it_in_the_sidebar(app_test, db):
    with db() as session:
        bea = make_user(session, "bea")
        make_project(session, bea, "Labour force")
        second = make_project(session, bea, "Price index")
    at = logged_in(app_test(), bea).run()
    assert "No project open" in texts(at.sidebar.caption)

    at = at.button(key=f"home_open_{second.id}").click().run()

    assert not at.exception
    assert "Project: Price index" in texts(at.sidebar.caption)
    assert project_cards(at) == ["**Labour force**  \nOwner: bea", "**Price index** (open)  \nOwner: bea"]


def test_archiving_the_open_project_closes_it_and_hides_it(app_test, db):
    with db() as session:
        bea = make_user(session, "bea")
        project = make_project(session, bea, "Labour force")
    at = logged_in(app_test(), bea).run()
    at = at.button(key=f"home_open_{project.id}").click().run()

    at = at.button(key=f"home_archive_{project.id}").click().run()

    assert not at.exception
    assert "No project open" in texts(at.sidebar.caption)
    assert project_cards(at) == []
    with db() as session:
        assert session.get(Project, project.id).status == "archived"

    at = at.toggle(key="home_show_archived").set_value(True).run()

    assert not at.exception
    assert project_cards(at) == ["**Labour force**  \nOwner: bea"]
    assert any(caption.startswith("Archived on ") for caption in texts(at.main.caption))
    # An archived project is read only: it cannot be opened.
    assert not [b for b in at.button if b.key == f"home_open_{project.id}"]
    at = button(at, "Restore").click().run()
    with db() as session:
        assert session.get(Project, project.id).status == "active"


def test_duplicate_project_name_is_refused_whatever_its_case(app_test, db):
    with db() as session:
        bea = make_user(session, "bea")
        make_project(session, bea, "Labour force")
    at = logged_in(app_test(), bea).run()

    at = create(at, "LABOUR FORCE")

    assert not at.exception
    assert plain(at.error) == [
        "A project called 'Labour force' already exists. Open it or choose another name."
    ]
    with db() as session:
        assert session.exec(select(Project.name)).all() == ["Labour force"]
    assert "No project open" in texts(at.sidebar.caption)


def test_empty_project_name_is_refused(app_test, db):
    with db() as session:
        bea = make_user(session, "bea")
    at = logged_in(app_test(), bea).run()

    at = create(at, "   ")

    assert not at.exception
    assert plain(at.error) == ["The project name is empty. Type a project name."]
    with db() as session:
        assert session.exec(select(Project)).all() == []


def test_reviewer_sees_projects_but_cannot_start_or_archive_them(app_test, db):
    with db() as session:
        bea = make_user(session, "bea")
        make_project(session, bea, "Labour force")
        rita = make_user(session, "rita", roles=("reviewer",))
    at = logged_in(app_test(), rita).run()

    assert not at.exception
    assert project_cards(at) == ["**Labour force**  \nOwner: bea"]
    assert [b.label for b in at.main.button] == ["Open"]
    assert not at.text_input  # no "Start a project" form
    assert "Start a project" not in texts(at.subheader)


def test_reviewer_without_projects_is_not_invited_to_start_one(app_test, db):
    with db() as session:
        rita = make_user(session, "rita", roles=("reviewer",))
    at = logged_in(app_test(), rita).run()

    assert not at.exception
    assert texts(at.info) == ["There are no projects yet."]


def test_only_the_owner_or_an_admin_may_archive(app_test, db):
    with db() as session:
        bea = make_user(session, "bea")
        other = make_user(session, "carl")
        project = make_project(session, bea, "Labour force")
        admin = auth.get_user_by_name(session=session, username="admin")
    at = logged_in(app_test(), other).run()
    assert not [b for b in at.button if b.key == f"home_archive_{project.id}"]

    at = logged_in(app_test(), admin).run()
    at = at.button(key=f"home_archive_{project.id}").click().run()

    assert not at.exception
    with db() as session:
        assert session.get(Project, project.id).status == "archived"


def test_names_with_markup_are_stored_as_typed_and_shown_literally(app_test, db):
    with db() as session:
        bea = make_user(session, NASTY)
    at = logged_in(app_test(), bea).run()

    at = create(at, NASTY)

    assert not at.exception
    assert not at.error
    with db() as session:
        assert session.exec(select(Project.name)).all() == [NASTY]
    [card] = project_cards(at)
    rendered = [card, *texts(at.sidebar.markdown), *texts(at.sidebar.caption)]
    for source in rendered:
        assert "](" not in source and "<b>" not in source  # no live link, no raw HTML
    assert card.startswith(r"**\<b\>x\</b\> \[link\]\(http\:")
    escaped = r"\<b\>x\</b\> \[link\]\(http\://evil\) '; drop table user;\-\-"
    assert f"Project: {escaped}" in texts(at.sidebar.caption)


def test_an_admin_loads_the_sample_project_and_sees_the_passwords_once(app_test, db, thread_runner):
    from tests.app.conftest import wait_until_finished

    with db() as session:
        admin = make_admin(session)
        bea = make_user(session, "bea")
    assert not [e for e in logged_in(app_test(), bea).run().expander if "sample project" in e.label]
    at = logged_in(app_test(), admin).run()
    assert [e.label for e in at.expander if "sample project" in e.label] == [
        "New to Steward? Load the sample project"]

    at = button(at, "Load the sample project").click().run()
    assert not at.exception
    shown = at.dataframe[0].value
    assert shown["User name"].tolist() == ["demo_builder", "demo_reviewer", "demo_manager"]
    with db() as session:
        builder = auth.authenticate(session=session, settings=get_settings(),
                                    username="demo_builder", password=shown["Password"][0])
        assert builder.roles == ["builder"]

    wait_until_finished(db, at.session_state["demo_job_id"], timeout=600)  # the whole journey: a minute or two
    at = at.run()
    assert "The sample project is ready: open it below." in texts(at.success)
    assert "**Labour force survey \\(sample\\)**  \nOwner: demo\\_builder" in project_cards(at)
    at = button(at, "I have noted the passwords").click().run()
    assert not [frame for frame in at.dataframe if "Password" in frame.value.columns]
    assert not [e for e in at.expander if "sample project" in e.label], "offered only while it does not exist"
