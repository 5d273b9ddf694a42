"""Accounts, passwords, lockout, login sessions, roles and the four-eyes helper."""

import time
from datetime import timedelta

import pytest
from sqlmodel import select

from core import auth
from core.errors import AuthenticationFailed, Conflict, InvalidInput, NotAllowed
from core.models import LoginSession, Role, User, utcnow
from tests.factories import PASSWORD, make_admin, make_user


def login(session, settings, username, password=PASSWORD):
    return auth.authenticate(session=session, settings=settings, username=username, password=password)


def test_passwords_are_stored_as_argon2_hashes(session):
    admin = make_admin(session)
    stored = session.get(User, admin.id).password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


@pytest.mark.parametrize("password, message", [
    ("short pw", "at least 12"),
    ("administrator", "must not be the user name"),
])
def test_weak_passwords_are_refused_and_nothing_is_stored(session, password, message):
    with pytest.raises(InvalidInput, match=message):
        auth.create_first_admin(session=session, username="administrator", password=password)
    assert not auth.has_any_user(session=session)


def test_first_admin_only_once(session):
    make_admin(session)
    with pytest.raises(Conflict):
        auth.create_first_admin(session=session, username="other", password=PASSWORD)


def test_duplicate_user_names_are_refused_whatever_the_case(session):
    make_user(session, "bea")
    with pytest.raises(Conflict, match="'bea' already exists"):
        make_user(session, "BEA")


def test_names_with_html_and_sql_are_stored_as_given(session, settings):
    name = "<b>x</b>'; drop table user;--"
    user = make_user(session, name)
    assert user.username == name
    assert login(session, settings, name).id == user.id


def test_unknown_user_and_wrong_password_get_the_same_answer_in_the_same_time(session, settings):
    make_user(session, "bea")
    timings, messages = {}, {}
    for case, (name, password) in {"unknown": ("nobody", PASSWORD), "wrong": ("bea", "wrong password!!")}.items():
        start = time.perf_counter()
        with pytest.raises(AuthenticationFailed) as error:
            login(session, settings, name, password)
        timings[case], messages[case] = time.perf_counter() - start, str(error.value)
    assert messages["unknown"] == messages["wrong"] == auth.LOGIN_REFUSED
    # Both paths run one argon2 verification; without the dummy hash "unknown" would be ~100x faster.
    assert timings["unknown"] > timings["wrong"] / 5


def test_five_failures_lock_the_account_even_for_the_right_password(session, settings):
    make_user(session, "bea")
    for _ in range(settings.lockout_attempts):
        with pytest.raises(AuthenticationFailed):
            login(session, settings, "bea", "wrong password!!")
    with pytest.raises(AuthenticationFailed):
        login(session, settings, "bea")
    assert auth.get_user_by_name(session=session, username="bea").locked_until is not None


def test_a_reset_password_unlocks(session, settings):
    admin = make_admin(session)
    bea = make_user(session, "bea")
    for _ in range(settings.lockout_attempts):
        with pytest.raises(AuthenticationFailed):
            login(session, settings, "bea", "wrong password!!")
    auth.reset_password(session=session, actor=admin, user_id=bea.id, new_password="a brand new password")
    assert login(session, settings, "bea", "a brand new password").id == bea.id


def test_deactivated_users_cannot_log_in_and_their_logins_end(session, settings):
    admin = make_admin(session)
    bea = make_user(session, "bea")
    login_id, _ = auth.start_login(session=session, user=bea)
    auth.set_active(session=session, actor=admin, user_id=bea.id, active=False)
    assert auth.resolve_login(session=session, settings=settings, login_id=login_id) is None
    with pytest.raises(AuthenticationFailed):
        login(session, settings, "bea")


def test_a_ticket_is_traded_once_for_a_cookie_token(session, settings):
    bea = make_user(session, "bea")
    login_id, ticket = auth.start_login(session=session, user=bea)
    token = auth.claim_ticket(session=session, ticket=ticket)
    assert token and auth.claim_ticket(session=session, ticket=ticket) is None
    assert auth.resolve_token(session=session, settings=settings, token=token) == (login_id, bea)
    assert auth.resolve_token(session=session, settings=settings, token="forged") is None


def test_logout_ends_the_login_for_every_tab(session, settings):
    bea = make_user(session, "bea")
    login_id, ticket = auth.start_login(session=session, user=bea)
    token = auth.claim_ticket(session=session, ticket=ticket)
    auth.end_login(session=session, login_id=login_id)
    assert auth.resolve_token(session=session, settings=settings, token=token) is None
    assert auth.resolve_login(session=session, settings=settings, login_id=login_id) is None
    assert auth.login_end_reason(session=session, login_id=login_id) == "logout"


def test_an_idle_login_expires(session, settings):
    bea = make_user(session, "bea")
    login_id, _ = auth.start_login(session=session, user=bea)
    row = session.get(LoginSession, login_id)
    row.last_seen_at = utcnow() - timedelta(minutes=settings.session_idle_minutes + 1)
    session.add(row)
    session.commit()
    assert auth.resolve_login(session=session, settings=settings, login_id=login_id) is None
    assert auth.login_end_reason(session=session, login_id=login_id) == "idle timeout"


def test_roles_are_checked_in_core(session):
    bea = make_user(session, "bea", roles=("builder", "reviewer"))
    assert auth.require_role(bea, Role.reviewer) == bea
    with pytest.raises(NotAllowed, match="admin role"):
        auth.create_user(session=session, actor=bea, username="eve", password=PASSWORD, roles=["admin"])
    assert session.exec(select(User).where(User.username == "eve")).first() is None


def test_the_last_admin_keeps_the_role_and_cannot_be_deactivated(session):
    admin = make_admin(session)
    with pytest.raises(NotAllowed, match="last active administrator"):
        auth.set_roles(session=session, actor=admin, user_id=admin.id, roles=["builder"])
    with pytest.raises(NotAllowed):
        auth.set_active(session=session, actor=admin, user_id=admin.id, active=False)


def test_four_eyes_refuses_the_author(session):
    bea = make_user(session, "bea", roles=("builder", "reviewer"))
    rex = make_user(session, "rex", roles=("reviewer",))
    auth.ensure_not_author(rex, [bea.id, None], what="this model")
    with pytest.raises(NotAllowed, match="four-eyes"):
        auth.ensure_not_author(bea, [bea.id], what="this model")


def test_unknown_roles_are_refused(session):
    with pytest.raises(InvalidInput, match="Unknown role"):
        make_user(session, "bea", roles=("wizard",))
