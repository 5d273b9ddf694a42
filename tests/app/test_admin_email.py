"""The E-mail tab of the admin page: SMTP settings without ever showing the password, and a test e-mail."""

from __future__ import annotations

import pytest

from core import mail
from tests.app.conftest import button, logged_in, plain
from tests.factories import make_admin
from tests.servers import SmtpServer


@pytest.fixture
def smtp():
    server = SmtpServer(username="steward", password="mail password 123").start()
    yield server
    server.stop()


def email_tab(at):
    return next(tab for tab in at.tabs if tab.label == "E-mail")


def field(tab, label: str):
    return next(w for w in [*tab.text_input, *tab.number_input] if w.label.startswith(label))


def test_an_admin_sets_up_smtp_the_password_is_never_shown_and_a_test_email_arrives(app_test, db, smtp):
    with db() as session:
        admin = make_admin(session)
    at = logged_in(app_test(), admin).switch_page("../pages/admin.py").run()
    tab = email_tab(at)
    assert button(at, "Send a test e-mail").disabled  # nothing set up yet

    field(tab, "SMTP server").input("127.0.0.1")
    field(tab, "Port").set_value(smtp.port)
    field(tab, "Sender address").input("steward@stats.example.org")
    field(tab, "User name").input("steward")
    field(tab, "Password").input("mail password 123")
    next(r for r in tab.radio if r.label == "Encryption").set_value("None")
    at = button(at, "Save the e-mail settings").click().run()

    assert not at.exception and plain(at.success) == ["E-mail settings saved."]
    tab = email_tab(at)
    assert field(tab, "Password").value == ""  # never shown back
    assert any("A password is stored (encrypted); it is never shown." in c for c in plain(tab.caption))
    with db() as session:
        assert mail.get_smtp(session=session).password_set

    field(tab, "Send a test e-mail to").input("ada@stats.example.org")
    at = button(at, "Send a test e-mail").click().run()
    assert plain(at.success) == ["Test e-mail handed to 127.0.0.1 for ada@stats.example.org."]
    [received] = smtp.received
    assert (received.recipients, received.authenticated_as) == (["ada@stats.example.org"], "steward")
    assert received.message["Subject"] == "Steward: test message"


def test_a_refused_login_is_shown_in_plain_words(app_test, db, smtp):
    with db() as session:
        admin = make_admin(session)
    at = logged_in(app_test(), admin).switch_page("../pages/admin.py").run()
    tab = email_tab(at)
    field(tab, "SMTP server").input("127.0.0.1")
    field(tab, "Port").set_value(smtp.port)
    field(tab, "Sender address").input("steward@stats.example.org")
    field(tab, "User name").input("steward")
    field(tab, "Password").input("not the password")
    next(r for r in tab.radio if r.label == "Encryption").set_value("None")
    at = button(at, "Save the e-mail settings").click().run()
    field(email_tab(at), "Send a test e-mail to").input("ada@stats.example.org")
    at = button(at, "Send a test e-mail").click().run()

    assert plain(at.error) == ["The SMTP server refused the user name or password (535)."]
    assert smtp.received == []
