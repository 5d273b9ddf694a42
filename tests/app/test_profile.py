"""Profile: every user makes and revokes their own API tokens; administrators see and revoke everyone's."""

import hashlib

from sqlmodel import select

from core import tokens
from core.models import ApiToken
from tests.app.conftest import button, open_page, plain, texts
from tests.factories import make_user


def test_every_user_can_make_a_token_shown_once_and_revoke_it(app_test, db):
    with db() as session:
        rita = make_user(session, "rita", roles=("reviewer",))
    at = open_page(app_test(), rita, "profile.py")
    assert not at.exception
    assert at.title[0].value == "Profile"
    assert "You have no API tokens." in texts(at.caption)

    at.text_input(key="profile_token_name").input("nightly coding")
    at = button(at, "Make a token").click().run()
    assert not at.exception
    assert plain(at.success) == ["Token nightly coding made. Copy it now; Steward will not show it again."]
    [secret] = [block.value for block in at.code if block.value.startswith("stw_")]
    with db() as session:
        stored = session.exec(select(ApiToken)).one()
        assert stored.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert tokens.user_for_token(session=session, secret=secret).username == "rita"
    table = at.dataframe[0].value
    assert table[["Name", "Starts with", "Last used (UTC)", "State"]].values.tolist() == [
        ["nightly coding", f"{secret[:12]}…", "never", "active"]]

    at = at.run()  # any next action: the secret is not shown again
    assert not [block for block in at.code if block.value.startswith("stw_")]

    at = button(at, "Revoke").click().run()
    assert not at.exception
    assert plain(at.success) == ["Token nightly coding revoked: it no longer works."]
    assert at.dataframe[0].value["State"].tolist() == ["revoked"]
    with db() as session:
        assert tokens.user_for_token(session=session, secret=secret) is None


def test_an_empty_token_name_is_refused_in_plain_words(app_test, db):
    with db() as session:
        bea = make_user(session, "bea")
    at = open_page(app_test(), bea, "profile.py")
    at = button(at, "Make a token").click().run()
    assert not at.exception
    assert plain(at.error) == ["The token name is empty. Type a token name."]
    with db() as session:
        assert session.exec(select(ApiToken)).all() == []


def test_an_administrator_sees_and_revokes_everyones_tokens_on_the_users_page(app_test, db):
    with db() as session:
        ada = make_user(session, "ada", roles=("admin",))
        bea = make_user(session, "bea")
        _token, secret = tokens.create_token(session=session, actor=bea, name="scoring robot")
    at = open_page(app_test(), ada, "admin.py")
    assert not at.exception
    tab = at.tabs[2]
    assert tab.label == "API tokens"
    assert tab.dataframe[0].value[["User", "Name", "State"]].values.tolist() == [["bea", "scoring robot", "active"]]
    at = button(at, "Revoke token").click().run()
    assert not at.exception
    assert plain(at.success) == ["Revoked bea's token scoring robot."]
    with db() as session:
        assert tokens.user_for_token(session=session, secret=secret) is None


def test_a_user_changes_their_password_only_with_the_current_one(app_test, db):
    from core import auth
    from core.config import get_settings
    from tests.factories import PASSWORD

    with db() as session:
        rita = make_user(session, "rita", roles=("reviewer",))
    at = open_page(app_test(), rita, "profile.py")
    at.text_input(key="profile_current_password").input("not the password")
    at.text_input(key="profile_new_password").input("a brand new passphrase")
    at.text_input(key="profile_repeat_password").input("a brand new passphrase")
    at = button(at, "Change password").click().run()
    assert plain(at.error) == ["The current password is not right. Type it again."]

    at.text_input(key="profile_current_password").input(PASSWORD)
    at.text_input(key="profile_new_password").input("a brand new passphrase")
    at.text_input(key="profile_repeat_password").input("a different passphrase")
    at = button(at, "Change password").click().run()
    assert plain(at.error) == ["The two new passwords differ. Type the same one twice."]

    at.text_input(key="profile_current_password").input(PASSWORD)
    at.text_input(key="profile_new_password").input("a brand new passphrase")
    at.text_input(key="profile_repeat_password").input("a brand new passphrase")
    at = button(at, "Change password").click().run()
    assert "Password changed." in texts(at.success)
    with db() as session:
        assert auth.authenticate(session=session, settings=get_settings(),
                                 username="rita", password="a brand new passphrase").username == "rita"


def test_notifications_are_listed_and_can_be_marked_read(app_test, db):
    from core import notifications

    with db() as session:
        rita = make_user(session, "rita", roles=("reviewer",))
        notifications.notify(session, user_ids=[rita.id], message="bea asks for a review of employment v1.",
                             page="review")
        session.commit()
    at = open_page(app_test(), rita, "profile.py")
    table = at.dataframe[0].value
    assert table[["Message", "Read"]].values.tolist() == [["bea asks for a review of employment v1.", "no"]]

    at = at.button(key="profile_read_all").click().run()
    assert at.dataframe[0].value["Read"].tolist() == ["yes"]
    with db() as session:
        assert notifications.unread_count(session=session, actor=rita) == 0
