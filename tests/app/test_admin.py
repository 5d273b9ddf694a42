"""Administration: adding users, roles, password resets and deactivation."""

import pytest
from sqlmodel import select

from core import auth
from core.config import get_settings
from core.errors import AuthenticationFailed
from core.models import LoginSession, User, UserRole
from tests.app.conftest import button, logged_in, page_title, plain, texts
from tests.factories import PASSWORD, make_admin, make_user

NASTY = "<b>x</b> [link](http://evil) '; drop table user;--"
NEW_PASSWORD = "a brand new long password"


def open_admin(app_test, user):
    at = logged_in(app_test(), user)
    return at.switch_page("../pages/admin.py").run()


def table(at) -> list[dict]:
    return at.dataframe[0].value.to_dict("records")


def add_user(at, username, *, roles=("builder",), password=PASSWORD, display_name="", email=""):
    at.text_input(key="admin_new_username").input(username)
    at.text_input(key="admin_new_display_name").input(display_name)
    at.text_input(key="admin_new_email").input(email)
    at.multiselect(key="admin_new_roles").set_value(list(roles))
    at.text_input(key="admin_new_pw").input(password)
    return button(at, "Add user").click().run()


def choose(at, username):
    users = at.selectbox(key="admin_manage_user")
    return users.select_index(users.options.index(username)).run()


def roles_of(db, username) -> list[str]:
    with db() as session:
        user = session.exec(select(User).where(User.username == username)).one()
        return sorted(session.exec(select(UserRole.role).where(UserRole.user_id == user.id)).all())


def can_log_in(db, username, password) -> bool:
    with db() as session:
        try:
            auth.authenticate(session=session, settings=get_settings(), username=username, password=password)
        except AuthenticationFailed:
            return False
    return True


def test_builder_cannot_reach_the_users_page(app_test, db):
    with db() as session:
        bea = make_user(session, "bea", roles=("builder", "reviewer", "manager"))
    at = logged_in(app_test(), bea).run()

    assert not at.exception
    assert [page_title(at)] == ["Projects"]
    with pytest.raises(ValueError):  # not registered for this session, so not reachable by URL
        at.switch_page("../pages/admin.py")


def test_admin_demoted_while_on_the_page_no_longer_sees_it(app_test, db):
    with db() as session:
        make_admin(session)
        boss = make_user(session, "boss", roles=("admin",))
    at = open_admin(app_test, boss)
    assert page_title(at) == "Users"
    with db() as session:
        auth.set_roles(session=session, actor=auth.OPERATOR, user_id=boss.id, roles=["builder"])

    at.run()

    assert not at.exception
    assert page_title(at) == "Projects"  # the Users page is gone from the navigation: back to the default
    assert "Roles: builder" in texts(at.sidebar.caption)
    assert not at.dataframe


def test_admin_adds_a_user_who_appears_in_the_list_and_can_log_in(app_test, db):
    with db() as session:
        admin = make_admin(session)
    at = open_admin(app_test, admin)

    at = add_user(at, " bea ", roles=("builder", "reviewer"), display_name="Bea Builder", email="bea@example.org")

    assert not at.exception
    assert not at.error
    assert plain(at.success) == ["Added bea. Tell them their first password in person."]
    assert {"User name": "bea", "Name": "Bea Builder", "Roles": "builder, reviewer", "State": "active",
            "Locked until (UTC)": ""} in table(at)
    assert "bea" in at.selectbox(key="admin_manage_user").options
    assert roles_of(db, "bea") == ["builder", "reviewer"]
    assert can_log_in(db, "bea", PASSWORD)


def test_duplicate_user_name_is_refused_whatever_its_case(app_test, db):
    with db() as session:
        admin = make_admin(session)
        make_user(session, "bea")
    at = open_admin(app_test, admin)

    at = add_user(at, "BEA")

    assert not at.exception
    assert plain(at.error) == ["A user called 'bea' already exists. Choose another user name."]
    with db() as session:
        assert sorted(session.exec(select(User.username)).all()) == ["admin", "bea"]


def test_weak_first_password_is_refused(app_test, db):
    with db() as session:
        admin = make_admin(session)
    at = open_admin(app_test, admin)

    at = add_user(at, "bea", password="tooshort")

    assert not at.exception
    assert len(at.error) == 1 and "it needs at least 12" in at.error[0].value
    with db() as session:
        assert session.exec(select(User.username)).all() == ["admin"]


def test_a_user_needs_at_least_one_role(app_test, db):
    with db() as session:
        admin = make_admin(session)
    at = open_admin(app_test, admin)

    at = add_user(at, "bea", roles=())

    assert not at.exception
    assert plain(at.error) == ["Give the user at least one role."]


def test_admin_changes_a_users_roles(app_test, db):
    with db() as session:
        admin = make_admin(session)
        bea = make_user(session, "bea", roles=("builder",))
    at = choose(open_admin(app_test, admin), "bea")

    at.multiselect(key=f"admin_roles_{bea.id}").set_value(["reviewer", "manager"])
    at = button(at, "Save roles").click().run()

    assert not at.exception
    assert plain(at.success) == ["Roles saved."]
    assert roles_of(db, "bea") == ["manager", "reviewer"]
    assert [row["Roles"] for row in table(at) if row["User name"] == "bea"] == ["manager, reviewer"]
    # The choice stays on bea, whose row just changed, with her new roles in the form.
    assert at.selectbox(key="admin_manage_user").value == bea.id
    assert sorted(at.multiselect(key=f"admin_roles_{bea.id}").value) == ["manager", "reviewer"]


def test_the_last_administrator_keeps_the_admin_role(app_test, db):
    with db() as session:
        admin = make_admin(session)
    at = choose(open_admin(app_test, admin), "admin")

    at.multiselect(key=f"admin_roles_{admin.id}").set_value(["builder"])
    at = button(at, "Save roles").click().run()

    assert not at.exception
    assert plain(at.error) == [
        "This is the last active administrator. Make someone else an administrator first."
    ]
    assert roles_of(db, "admin") == ["admin"]


def test_admin_resets_a_password_which_ends_that_users_logins(app_test, db):
    with db() as session:
        admin = make_admin(session)
        bea = make_user(session, "bea")
        bea_login, _ = auth.start_login(session=session, user=bea)
    at = choose(open_admin(app_test, admin), "bea")

    at.text_input(key="admin_reset_pw").input(NEW_PASSWORD)
    at = button(at, "Reset password").click().run()

    assert not at.exception
    assert plain(at.success) == ["Password reset; the account is unlocked and its logins have ended."]
    assert can_log_in(db, "bea", NEW_PASSWORD)
    assert not can_log_in(db, "bea", PASSWORD)
    with db() as session:
        assert session.get(LoginSession, bea_login).ended_reason == "password reset"


def test_reset_to_a_weak_password_is_refused(app_test, db):
    with db() as session:
        admin = make_admin(session)
        make_user(session, "bea")
    at = choose(open_admin(app_test, admin), "bea")

    at.text_input(key="admin_reset_pw").input("bea")
    at = button(at, "Reset password").click().run()

    assert not at.exception
    assert len(at.error) == 1 and "it needs at least 12" in at.error[0].value
    assert can_log_in(db, "bea", PASSWORD)


def test_admin_deactivates_and_reactivates_a_user(app_test, db):
    with db() as session:
        admin = make_admin(session)
        bea = make_user(session, "bea")
        bea_login, _ = auth.start_login(session=session, user=bea)
    at = choose(open_admin(app_test, admin), "bea")

    at = button(at, "Deactivate account").click().run()

    assert not at.exception
    assert plain(at.success) == ["bea is now deactivated."]
    assert [row["State"] for row in table(at) if row["User name"] == "bea"] == ["deactivated"]
    with db() as session:
        assert session.get(User, bea.id).is_active is False
        assert session.get(LoginSession, bea_login).ended_reason == "deactivated"
    assert not can_log_in(db, "bea", PASSWORD)

    at = button(at, "Reactivate account").click().run()

    assert not at.exception
    assert plain(at.success) == ["bea is now active."]
    assert [row["State"] for row in table(at) if row["User name"] == "bea"] == ["active"]
    assert can_log_in(db, "bea", PASSWORD)


def test_admin_cannot_deactivate_their_own_account(app_test, db):
    with db() as session:
        make_admin(session)
        boss = make_user(session, "boss", roles=("admin",))
    at = choose(open_admin(app_test, boss), "boss")

    at = button(at, "Deactivate account").click().run()

    assert not at.exception
    assert plain(at.error) == ["You cannot deactivate your own account. Ask another administrator."]
    with db() as session:
        assert session.get(User, boss.id).is_active is True


def test_locked_account_shows_when_it_unlocks_and_a_reset_unlocks_it(app_test, db):
    with db() as session:
        admin = make_admin(session)
        make_user(session, "bea")
    for _ in range(get_settings().lockout_attempts):
        assert not can_log_in(db, "bea", "wrong password, again")
    assert not can_log_in(db, "bea", PASSWORD)
    at = open_admin(app_test, admin)
    [locked] = [row["Locked until (UTC)"] for row in table(at) if row["User name"] == "bea"]
    assert locked != ""

    at = choose(at, "bea")
    at.text_input(key="admin_reset_pw").input(NEW_PASSWORD)
    at = button(at, "Reset password").click().run()

    assert not at.exception
    assert [row["Locked until (UTC)"] for row in table(at) if row["User name"] == "bea"] == [""]
    assert can_log_in(db, "bea", NEW_PASSWORD)


def test_names_with_markup_are_stored_as_typed_and_shown_literally(app_test, db):
    with db() as session:
        admin = make_admin(session)
    at = open_admin(app_test, admin)

    at = add_user(at, NASTY, display_name=NASTY)

    assert not at.exception
    assert not at.error
    with db() as session:
        stored = session.exec(select(User).where(User.username == NASTY)).one()
    assert stored.display_name == NASTY
    assert {"User name": NASTY, "Name": NASTY} in [
        {"User name": row["User name"], "Name": row["Name"]} for row in table(at)
    ]
    [message] = texts(at.success)
    assert "](" not in message and "<b>" not in message
    assert message.startswith(r"Added \<b\>x\</b\> \[link\]\(http\://evil\)")

    # The same name again: the refusal quotes it, and must not turn it into a link either.
    at = add_user(at, NASTY)
    [refusal] = texts(at.error)
    assert "](" not in refusal and "<b>" not in refusal
    assert r"\[link\]\(http\://evil\)" in refusal
