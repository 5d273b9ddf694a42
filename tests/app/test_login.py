"""The login page: one refusal message for every failure, lockout, and logins that end."""

from datetime import timedelta

import pytest
from sqlmodel import select

from core import auth
from core.models import AuditEvent, LoginSession, LoginThrottle, utcnow
from tests.app.conftest import button, logged_in, page_title, plain, texts
from tests.factories import PASSWORD, make_admin, make_user

REFUSED = [auth.LOGIN_REFUSED]


def log_in(at, username, password):
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password)
    return button(at, "Log in").click().run()


def test_not_logged_in_sees_only_the_login_page(app_test, db):
    with db() as session:
        make_admin(session)
    at = app_test().run()

    assert not at.exception
    assert page_title(at) == "Log in to Steward"
    assert not at.sidebar.button  # no navigation, no log-out button
    with pytest.raises(ValueError):  # not registered for this session, so not reachable by URL
        at.switch_page("../pages/home.py")


def test_correct_password_logs_in_and_opens_projects(app_test, db, follow_login):
    with db() as session:
        user = make_user(session, "bea", roles=("builder",))
    at = log_in(app_test().run(), "bea", PASSWORD)
    assert not at.exception
    assert not at.error

    at = follow_login()

    assert not at.exception
    assert page_title(at) == "Projects"
    assert "**bea**" in texts(at.sidebar.markdown)
    with db() as session:
        login = session.exec(select(LoginSession).where(LoginSession.user_id == user.id)).one()
    assert login.ended_at is None
    assert at.session_state["login_id"] == login.id


def test_user_name_is_matched_without_regard_to_case(app_test, db, follow_login):
    with db() as session:
        make_user(session, "bea")
    at = log_in(app_test().run(), "  BEA ", PASSWORD)
    assert not at.error

    at = follow_login()

    assert not at.exception
    assert page_title(at) == "Projects"
    assert "**bea**" in texts(at.sidebar.markdown)


def test_wrong_password_and_unknown_user_get_the_same_message(app_test, db):
    with db() as session:
        make_user(session, "bea")
    wrong_password = log_in(app_test().run(), "bea", "not the password at all")
    unknown_user = log_in(app_test().run(), "nobody", PASSWORD)

    for at in (wrong_password, unknown_user):
        assert not at.exception
        assert plain(at.error) == REFUSED
        assert page_title(at) == "Log in to Steward"
    with db() as session:
        failed = select(AuditEvent.actor_name).where(AuditEvent.action == "login.failed")
        failures = session.exec(failed).all()
        logins = session.exec(select(LoginSession)).all()
    assert sorted(failures) == ["bea", "nobody"]
    assert logins == []


def test_five_failures_lock_the_account_and_a_correct_password_is_then_refused(app_test, db):
    with db() as session:
        make_user(session, "bea")
    at = app_test().run()
    for attempt in range(1, 6):
        at = log_in(at, "bea", "not the password at all")
        assert not at.exception
        assert plain(at.error) == REFUSED  # the fifth refusal reads like the first
        with db() as session:
            throttle = session.get(LoginThrottle, "bea")
            assert (throttle.locked_until is not None) == (attempt == 5)

    at = log_in(at, "bea", PASSWORD)

    assert not at.exception
    assert plain(at.error) == REFUSED  # the same words: a locked account is not revealed
    assert page_title(at) == "Log in to Steward"
    with db() as session:
        assert session.exec(select(LoginSession)).all() == []


def test_deactivated_account_is_refused_with_the_same_message(app_test, db):
    with db() as session:
        admin = make_admin(session)
        bea = make_user(session, "bea")
        auth.set_active(session=session, actor=admin, user_id=bea.id, active=False)
    at = log_in(app_test().run(), "bea", PASSWORD)

    assert not at.exception
    assert plain(at.error) == REFUSED


def test_idle_login_ends_and_the_login_page_says_so(app_test, db, sqlite_settings):
    with db() as session:
        bea = make_user(session, "bea")
    at = logged_in(app_test(), bea).run()
    assert page_title(at) == "Projects"
    with db() as session:
        login = session.get(LoginSession, at.session_state["login_id"])
        login.last_seen_at = utcnow() - timedelta(minutes=sqlite_settings.session_idle_minutes + 1)
        session.add(login)
        session.commit()
        login_id = login.id

    at.run()

    assert not at.exception
    assert page_title(at) == "Log in to Steward"
    assert texts(at.info) == ["Your login ended after a period without activity. Log in again to continue."]
    with db() as session:
        assert session.get(LoginSession, login_id).ended_reason == "idle timeout"


def test_login_ended_by_a_password_reset_says_why(app_test, db):
    with db() as session:
        admin = make_admin(session)
        bea = make_user(session, "bea")
    at = logged_in(app_test(), bea).run()
    with db() as session:
        auth.reset_password(session=session, actor=admin, user_id=bea.id,
                            new_password="another long password")

    at.run()

    assert not at.exception
    assert page_title(at) == "Log in to Steward"
    assert texts(at.info) == ["Your login has ended (password reset). Log in again to continue."]


def test_logging_in_again_after_an_ended_login_clears_the_notice(app_test, db, follow_login):
    with db() as session:
        bea = make_user(session, "bea")
    at = logged_in(app_test(), bea).run()
    with db() as session:
        auth.end_login(session=session, login_id=at.session_state["login_id"], reason="logout")
    at.run()
    assert texts(at.info) == ["Your login has ended (logout). Log in again to continue."]

    at = log_in(at, "bea", PASSWORD)
    assert not at.exception
    assert not at.error
    at = follow_login()

    assert not at.exception
    assert page_title(at) == "Projects"
    assert texts(at.info) == ["There are no projects yet. Start one below."]


def test_log_out_ends_the_login_everywhere(app_test, db, redirects, follow_login):
    with db() as session:
        make_user(session, "bea")
    assert not log_in(app_test().run(), "bea", PASSWORD).error
    at = follow_login()
    other_tab = app_test().run()  # same browser, same cookie
    assert page_title(other_tab) == "Projects"
    login_id = at.session_state["login_id"]

    at = at.sidebar.button(key="sidebar_logout").click().run()

    assert not at.exception
    assert redirects[-1] == "/steward/session/end"
    with db() as session:
        assert session.get(LoginSession, login_id).ended_reason == "logout"
    # Even a tab that still holds the cookie is logged out at its next action.
    other_tab.run()
    assert not other_tab.exception
    assert page_title(other_tab) == "Log in to Steward"


def test_a_browser_with_a_valid_login_cookie_is_logged_in(app_test, db, browser_cookies):
    with db() as session:
        bea = make_user(session, "bea")
        login_id, ticket = auth.start_login(session=session, user=bea)
        browser_cookies["steward_login"] = auth.claim_ticket(session=session, ticket=ticket)

    at = app_test().run()

    assert not at.exception
    assert page_title(at) == "Projects"
    assert at.session_state["login_id"] == login_id


def test_a_forged_login_cookie_is_ignored(app_test, db, browser_cookies):
    with db() as session:
        make_user(session, "bea")
    browser_cookies["steward_login"] = "not-a-real-token"

    at = app_test().run()

    assert not at.exception
    assert page_title(at) == "Log in to Steward"
