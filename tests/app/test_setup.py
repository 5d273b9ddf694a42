"""First run: the page that creates the administrator."""

import pytest
from sqlmodel import select

from core.models import AuditEvent, User, UserRole
from tests.app.conftest import button, page_title, plain, texts
from tests.factories import PASSWORD, make_admin

GOOD_PASSWORD = "correct horse battery staple"


def fill_setup(at, *, username="ada", display_name="Ada Lovelace", password=GOOD_PASSWORD, repeat=None):
    at.text_input(key="setup_username").input(username)
    at.text_input(key="setup_display_name").input(display_name)
    at.text_input(key="setup_password").input(password)
    at.text_input(key="setup_repeat").input(password if repeat is None else repeat)
    return button(at, "Create the administrator").click().run()


def stored_users(db) -> list[str]:
    with db() as session:
        return list(session.exec(select(User.username)).all())


def test_empty_store_opens_the_setup_page_only(app_test):
    at = app_test().run()

    assert not at.exception
    assert page_title(at) == "Welcome to Steward"
    # No navigation to other pages: the only registered page is setup.
    for hidden in ("../pages/login.py", "../pages/home.py", "../pages/admin.py"):
        with pytest.raises(ValueError):
            at.switch_page(hidden)


def test_setup_creates_the_administrator_and_logs_in(app_test, db, follow_login):
    at = fill_setup(app_test().run())

    assert not at.exception
    assert not at.error

    at = follow_login()  # the browser picks up its login cookie and loads the app again

    assert not at.exception
    assert page_title(at) == "Projects"
    assert "**Ada Lovelace**" in texts(at.sidebar.markdown)
    assert "Roles: admin" in texts(at.sidebar.caption)
    with db() as session:
        admin = session.exec(select(User)).one()
        assert (admin.username, admin.display_name) == ("ada", "Ada Lovelace")
        assert session.exec(select(UserRole.role).where(UserRole.user_id == admin.id)).all() == ["admin"]
        actions = session.exec(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
    assert actions == ["user.create_first_admin", "login.success"]


def test_weak_password_is_refused_with_the_rule_and_nothing_is_stored(app_test, db):
    at = fill_setup(app_test().run(), password="short")

    assert not at.exception
    assert plain(at.error) == [
        "The password has 5 characters; it needs at least 12. "
        "A few unrelated words make a long password that is easy to remember."
    ]
    assert page_title(at) == "Welcome to Steward"
    assert stored_users(db) == []


def test_password_equal_to_user_name_is_refused(app_test, db):
    at = fill_setup(app_test().run(), username="administrator", password="Administrator")

    assert not at.exception
    assert plain(at.error) == ["The password must not be the user name. Choose something else."]
    assert stored_users(db) == []


def test_mismatched_repeat_is_refused_and_nothing_is_stored(app_test, db):
    at = fill_setup(app_test().run(), repeat=GOOD_PASSWORD + "!")

    assert not at.exception
    assert plain(at.error) == ["The two passwords differ. Type the same password twice."]
    assert stored_users(db) == []


def test_empty_user_name_is_refused(app_test, db):
    at = fill_setup(app_test().run(), username="   ")

    assert not at.exception
    assert plain(at.error) == ["The user name is empty. Type a user name."]
    assert stored_users(db) == []


def test_setup_page_is_gone_once_a_user_exists(app_test, db):
    with db() as session:
        make_admin(session)
    at = app_test().run()

    assert not at.exception
    assert page_title(at) == "Log in to Steward"
    with pytest.raises(ValueError):  # not registered for this session, so not reachable by URL
        at.switch_page("../pages/setup.py")


def test_a_second_browser_that_still_shows_setup_cannot_create_another_admin(app_test, db):
    at = app_test().run()  # this browser loaded the page while the store was empty
    with db() as session:
        make_admin(session, "first")  # meanwhile someone else finished setup

    at = fill_setup(at, username="second", password=PASSWORD)

    assert not at.exception
    # The router notices the administrator exists and shows the login page instead of the form.
    assert page_title(at) == "Log in to Steward"
    assert stored_users(db) == ["first"]
