"""The foundation journeys a person clicks: first run, accounts, login, logout, projects, role gating.

The first-run journey runs on a server of its own (setup only happens once per store); the other
scenarios share a server whose store already holds an administrator and a builder, so none of them
depends on another test having run first.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from core.auth import LOGIN_REFUSED
from tests.e2e.conftest import ADMIN, BUILDER, Server, screenshot, wait_idle

pytestmark = pytest.mark.e2e

COOKIE = "steward_login"


def open_app(page: Page, server: Server, path: str = "/") -> None:
    page.goto(server.url + path)
    wait_idle(page)


def main(page: Page):
    return page.get_by_test_id("stMain")


def sidebar(page: Page):
    return page.get_by_test_id("stSidebar")


def heading(page: Page, name: str):
    return main(page).get_by_role("heading", name=name, exact=True)


def click_and_reload(page: Page, button) -> None:
    """Click a button that sends the browser through a redirect, and wait for the new page to settle."""
    # Login and logout end in a full page load (cookie set or removed by the server), not a rerun.
    with page.expect_event("load"):
        button.click()
    wait_idle(page)


def log_in(page: Page, username: str, password: str) -> None:
    expect(heading(page, "Log in to Steward")).to_be_visible()
    page.get_by_role("textbox", name="User name").fill(username)
    page.get_by_role("textbox", name="Password", exact=True).fill(password)
    click_and_reload(page, page.get_by_role("button", name="Log in"))


def log_out(page: Page) -> None:
    click_and_reload(page, sidebar(page).get_by_role("button", name="Log out"))
    expect(heading(page, "Log in to Steward")).to_be_visible()


def login_cookie(page: Page) -> dict | None:
    return next((c for c in page.context.cookies() if c["name"] == COOKIE), None)


def project_line(page: Page, name: str):
    """The line of the project list that shows one project: its bold name, "(open)" and its owner."""
    bold_name = page.locator("strong", has_text=re.compile(f"^{re.escape(name)}$"))
    return main(page).locator("p").filter(has=bold_name)


def create_project(page: Page, name: str, description: str = "") -> None:
    page.get_by_role("textbox", name="Project name").fill(name)
    page.get_by_role("textbox", name="What is it for?").fill(description)
    page.get_by_role("button", name="Create project").click()


def test_first_run_admin_adds_builder_who_creates_a_project(page: Page, fresh_server: Server):
    admin_name, admin_label, admin_password = ADMIN
    builder_name, builder_label, builder_password = BUILDER

    # A new installation opens on the setup page, whatever the URL.
    open_app(page, fresh_server)
    expect(heading(page, "Welcome to Steward")).to_be_visible()
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
    screenshot(page, "setup")

    page.get_by_role("textbox", name="Administrator user name").fill(admin_name)
    page.get_by_role("textbox", name="Full name (optional)").fill(admin_label)
    page.get_by_role("textbox", name="Password", exact=True).fill(admin_password)
    page.get_by_role("textbox", name="Repeat the password").fill(admin_password)
    click_and_reload(page, page.get_by_role("button", name="Create the administrator"))

    # The administrator is logged in and sees the administration pages.
    expect(heading(page, "Projects")).to_be_visible()
    expect(sidebar(page).get_by_text(admin_label)).to_be_visible()
    assert login_cookie(page) is not None, "the claim route should have set the login cookie"
    nav = page.get_by_test_id("stSidebarNav")
    for title in ("Projects", "Users", "Audit trail", "Jobs"):
        expect(nav.get_by_role("link", name=title)).to_be_visible()

    # Log out and back in through the login page.
    log_out(page)
    screenshot(page, "login")
    log_in(page, admin_name, admin_password)
    expect(sidebar(page).get_by_text(admin_label)).to_be_visible()

    # Add a builder on the Users page.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Users").click()
    expect(heading(page, "Users")).to_be_visible()
    page.get_by_role("textbox", name="User name").fill(builder_name)
    page.get_by_role("textbox", name="Full name").fill(builder_label)
    page.get_by_role("textbox", name="First password (at least 12 characters)").fill(builder_password)
    page.get_by_role("button", name="Add user").click()
    expect(main(page).get_by_text(f"Added {builder_name}.")).to_be_visible()
    screenshot(page, "admin")
    log_out(page)

    # The builder logs in, sees only the pages a builder may open, and starts a project.
    log_in(page, builder_name, builder_password)
    expect(sidebar(page).get_by_text(builder_label)).to_be_visible()
    expect(sidebar(page).get_by_text("Roles: builder")).to_be_visible()
    for title in ("Users", "Audit trail", "Jobs"):
        expect(page.get_by_role("link", name=title)).to_have_count(0)
    expect(heading(page, "Projects")).to_be_visible()
    create_project(page, "Farm survey", "Predict crop yield from the yearly survey.")
    expect(project_line(page, "Farm survey")).to_contain_text("(open)")
    expect(project_line(page, "Farm survey")).to_contain_text("Owner: bob")
    expect(sidebar(page).get_by_text("Project: Farm survey")).to_be_visible()
    screenshot(page, "home")

    # A refresh keeps the login (the HttpOnly cookie brings the user back).
    page.reload()
    wait_idle(page)
    expect(heading(page, "Projects")).to_be_visible()
    expect(sidebar(page).get_by_text(builder_label)).to_be_visible()
    expect(project_line(page, "Farm survey")).to_be_visible()

    # The administration pages cannot be reached by typing their URL.
    for path in ("/admin", "/audit", "/jobs"):
        open_app(page, fresh_server, path)
        expect(heading(page, "Projects")).to_be_visible()
        expect(sidebar(page).get_by_text(builder_label)).to_be_visible()
        for title in ("Users", "Audit trail", "Jobs"):
            expect(heading(page, title)).to_have_count(0)
        if path == "/admin":
            screenshot(page, "admin_as_builder")


def test_wrong_password_shows_the_refusal(page: Page, seeded_server: Server):
    open_app(page, seeded_server)
    page.get_by_role("textbox", name="User name").fill(BUILDER[0])
    page.get_by_role("textbox", name="Password", exact=True).fill("not the right password")
    page.get_by_role("button", name="Log in").click()
    expect(main(page).get_by_text(LOGIN_REFUSED)).to_be_visible()
    expect(heading(page, "Log in to Steward")).to_be_visible()
    expect(sidebar(page).get_by_text(BUILDER[1])).to_have_count(0)
    assert login_cookie(page) is None
    screenshot(page, "login_refused")


def test_logout_ends_the_login_so_a_refresh_stays_logged_out(page: Page, seeded_server: Server):
    open_app(page, seeded_server)
    log_in(page, BUILDER[0], BUILDER[2])
    expect(sidebar(page).get_by_text(BUILDER[1])).to_be_visible()
    old_cookie = login_cookie(page)
    assert old_cookie is not None and old_cookie["httpOnly"]

    log_out(page)
    assert login_cookie(page) is None
    page.reload()
    wait_idle(page)
    expect(heading(page, "Log in to Steward")).to_be_visible()
    expect(sidebar(page).get_by_text(BUILDER[1])).to_have_count(0)

    # The login is ended on the server too: the old cookie, if it were kept, no longer opens the app.
    page.context.add_cookies([old_cookie])
    page.reload()
    wait_idle(page)
    expect(heading(page, "Log in to Steward")).to_be_visible()
    expect(heading(page, "Projects")).to_have_count(0)
    screenshot(page, "login_after_logout")


def test_project_name_with_html_is_shown_as_text(page: Page, seeded_server: Server):
    name = "<b>Survey</b> & co"
    open_app(page, seeded_server)
    log_in(page, BUILDER[0], BUILDER[2])
    expect(heading(page, "Projects")).to_be_visible()
    create_project(page, name, "<i>not italic</i> [not a link](http://example.com)")

    expect(project_line(page, name)).to_contain_text("(open)")
    expect(main(page).get_by_text("<i>not italic</i> [not a link](http://example.com)")).to_be_visible()
    expect(sidebar(page).get_by_text(f"Project: {name}", exact=True)).to_be_visible()
    # Nothing the user typed became markup.
    for tag in ("b", "i", "a[href='http://example.com']"):
        expect(page.get_by_test_id("stApp").locator(tag)).to_have_count(0)
    expect(page.get_by_text(re.compile(r"^Survey$"))).to_have_count(0)
    screenshot(page, "home_html_name")
