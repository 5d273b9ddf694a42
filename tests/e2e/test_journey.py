"""The mission in a real browser (issue 10), so far its builder's first half.

The builder uploads the survey (sex marked sensitive, a legal basis), trains a quick model, reproduces it, reads
the explanation and writes the model card. Still to add (the reviewer and the manager are already in the store):
the self-assessment and two review rounds, the builder refused promotion and the manager promoting, scoring the
similar and the drifted batch, the drift alert, retraining from it on new data, and the portfolio PDF.

Only the accounts are made through the core services before the server starts; every step of the journey is
clicked. A screenshot of every page passed is saved in docs/screenshots/ (the README shows the main ones), so
the pictures stay current.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from core import auth as core_auth
from core.db import create_store_engine, session_scope
from tests.e2e.conftest import ADMIN, ROOT, Server, wait_idle
from tests.factories import COMPLETE_CARD

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]  # stays under ten minutes

DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
SAMPLES = ROOT / "sample_data"
PROJECT = "Labour force"
BEA = ("bea", "Bea Builder", "correct horse battery bea")
RITA = ("rita", "Rita Reviewer", "correct horse battery rita")
MAX = ("max", "Max Manager", "correct horse battery max")
JOB = 240_000  # a job in the server's worker process, on a loaded 2-core machine
ROW = 35  # a row of Streamlit's data grid, in CSS pixels
ROWS = 1500  # of the 5,000 survey rows: enough for every gate, quick to save, train and explain


@pytest.fixture(scope="module")
def journey_server(start_server) -> Server:
    """A server of its own holding only the accounts: an administrator, a builder, a reviewer and a manager."""
    server = start_server("journey")
    engine = create_store_engine(server.database_url)
    try:
        with session_scope(engine) as session:
            admin = core_auth.create_first_admin(session=session, username=ADMIN[0], display_name=ADMIN[1],
                                                 password=ADMIN[2])
            for (username, name, password), role in ((BEA, "builder"), (RITA, "reviewer"), (MAX, "manager")):
                core_auth.create_user(session=session, actor=admin, username=username, display_name=name,
                                      password=password, roles=[role])
    finally:
        engine.dispose()
    return server


@pytest.fixture
def browser_for(browser: Browser, browser_context_args, journey_server) -> Iterator[Callable[[tuple], Page]]:
    """A browser of one's own per person (a context each), logged in."""
    contexts = []

    def open_for(person: tuple[str, str, str]) -> Page:
        context = browser.new_context(**browser_context_args, accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        log_in(page, journey_server, person)
        return page

    yield open_for
    for context in contexts:
        context.close()


# ── helpers ─────────────────────────────────────────────────────────────────────────────────────────────


def main(page: Page) -> Locator:
    return page.get_by_test_id("stMain")


def shot(page: Page, name: str) -> None:
    """Save the whole page as docs/screenshots/<name>.png (the window grows to the page, Streamlit scrolls inside)."""
    wait_idle(page)
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": min(max(size["height"], height), 6000)})
    try:
        page.wait_for_timeout(300)  # let the charts redraw at the new size
        page.screenshot(path=DOCS_SCREENSHOTS / f"{name}.png")
    finally:
        page.set_viewport_size(size)


def log_in(page: Page, server: Server, person: tuple[str, str, str]) -> None:
    username, name, password = person
    page.goto(server.url + "/")
    wait_idle(page)
    expect(main(page).get_by_role("heading", name="Log in to Steward", exact=True)).to_be_visible()
    page.get_by_role("textbox", name="User name").fill(username)
    page.get_by_role("textbox", name="Password", exact=True).fill(password)
    with page.expect_event("load"):
        page.get_by_role("button", name="Log in").click()
    wait_idle(page)
    expect(page.get_by_test_id("stSidebar").get_by_text(name, exact=True)).to_be_visible()


def go_to(page: Page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    expect(main(page).get_by_role("heading", name=title, exact=True)).to_be_visible()
    wait_idle(page)


def open_project(page: Page) -> None:
    main(page).get_by_role("button", name="Open", exact=True).click()  # the only project
    expect(page.get_by_test_id("stSidebar").get_by_text(f"Project: {PROJECT}", exact=True)).to_be_visible()
    wait_idle(page)


def upload(page: Page, path: Path) -> None:
    main(page).get_by_test_id("stFileUploader").locator('input[type="file"]').set_input_files(path)
















def mark_sex_sensitive(page: Page) -> None:
    """The columns grid is a canvas: select the first cell of sex (the third row), move to Sensitive, tick it."""
    columns = main(page).get_by_test_id("stDataFrame").nth(1)
    expect(columns).to_contain_text("person_id")
    wait_idle(page)
    columns.scroll_into_view_if_needed()
    box = columns.bounding_box()
    page.mouse.click(box["x"] + 10, box["y"] + ROW + 2 * ROW + ROW / 2)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")


def save_version(page: Page, source: str) -> None:
    main(page).get_by_role("textbox", name="Where does the data come from?").fill(source)
    main(page).get_by_role("textbox", name="Legal basis for using it").fill("Statistics Act, section 13")
    main(page).get_by_role("textbox", name="Data owner").fill("Labour statistics division")
    page.wait_for_timeout(1_000)  # the grid hands its edits to the form a moment after the key press
    main(page).get_by_role("button", name="Save version").click()




# ── the journey ─────────────────────────────────────────────────────────────────────────────────────────


def test_builder_uploads_trains_reproduces_explains_and_documents(browser_for, journey_server: Server, tmp_path):
    bea = browser_for(BEA)

    # The builder starts a project and uploads the survey, sex marked sensitive, with its legal basis.
    expect(main(bea).get_by_role("heading", name="Projects", exact=True)).to_be_visible()
    main(bea).get_by_role("textbox", name="Project name").fill(PROJECT)
    main(bea).get_by_role("textbox", name="What is it for?").fill("Predict employment to edit survey answers.")
    main(bea).get_by_role("button", name="Create project").click()
    expect(bea.get_by_test_id("stSidebar").get_by_text(f"Project: {PROJECT}", exact=True)).to_be_visible()
    wait_idle(bea)
    survey = tmp_path / "first" / "labour_force.csv"
    survey.parent.mkdir()
    lines = (SAMPLES / "labour_force.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    survey.write_text("".join(lines[:ROWS + 1]), encoding="utf-8")
    go_to(bea, "Data")
    upload(bea, survey)
    expect(main(bea).get_by_text("Detected encoding UTF-8 and separator ','.")).to_be_visible()
    mark_sex_sensitive(bea)
    shot(bea, "01_data")
    save_version(bea, "Labour force survey, sample quarter")
    expect(main(bea).get_by_text(f"Saved as version 1 of labour_force ({ROWS:,} rows).")).to_be_visible(timeout=JOB)
    go_to(bea, "Versions and profiles")
    expect(main(bea).get_by_text("Sensitive: sex")).to_be_visible()
    shot(bea, "02_profile")

    # Train a quick model and reproduce it (a gate before production).
    go_to(bea, "Train")
    expect(main(bea).get_by_role("combobox", name="Column to predict")).to_have_value("employed")
    main(bea).get_by_test_id("stRadio").get_by_text("quick (20 s)").click()
    shot(bea, "03_train")
    main(bea).get_by_role("button", name="Start training").click()
    results = main(bea).get_by_role("link", name="See the results")
    expect(results).to_be_visible(timeout=JOB)
    expect(main(bea).get_by_text("Training run 1 (employed): done.")).to_be_visible()
    shot(bea, "04_train_done")
    results.click()
    expect(main(bea).get_by_role("heading", name="Model results", exact=True)).to_be_visible()
    wait_idle(bea)
    shot(bea, "05_results")
    bea.get_by_role("tab", name="Subgroups").click()
    expect(main(bea).get_by_test_id("stDataFrame").filter(has_text="female")).to_be_visible()
    bea.get_by_role("tab", name="Reproducibility").click()
    main(bea).get_by_role("button", name="Reproduce this run").click()
    expect(main(bea).get_by_text(re.compile(r"^Reproducibility certificate \d+: re-running gave identical"))
           ).to_be_visible(timeout=JOB)

    # Read the explanation.
    go_to(bea, "Explanations")
    charts = main(bea).locator(".vega-embed").locator("canvas, svg")
    expect(charts.first).to_be_visible(timeout=JOB)
    shot(bea, "06_explanations")

    # Write the model card: every required field and one risk typed into the grid.
    go_to(bea, "Model card")
    labels = {"overview": "Overview", "owner_contact": "Owner and contact", "primary_uses": "Primary uses",
              "primary_users": "Primary users", "out_of_scope": "Out-of-scope uses", "factors": "Relevant factors",
              "metric_rationale": "Why these metrics", "data_notes": "How the data was collected",
              "labelling": "How the target values were produced", "limitations": "Known limitations",
              "recommendations": "Recommendations"}
    for key, label in labels.items():
        main(bea).get_by_role("textbox", name=label, exact=True).fill(COMPLETE_CARD[key])
    risk = COMPLETE_CARD["risks"][0]
    grid = main(bea).get_by_test_id("stForm").get_by_test_id("stDataFrame")
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    cell_editor = bea.locator("textarea.gdg-input")
    bea.mouse.dblclick(box["x"] + 100, box["y"] + ROW + ROW / 2)
    cell_editor.fill(risk["name"])
    bea.keyboard.press("Tab")
    expect(cell_editor).to_have_count(0)
    bea.keyboard.press("Enter")
    cell_editor.fill(risk["mitigation"])
    bea.keyboard.press("Tab")
    expect(cell_editor).to_have_count(0)
    bea.wait_for_timeout(500)
    main(bea).get_by_role("button", name="Save the card").click()
    expect(main(bea).get_by_text("Saved revision 1 of the card.")).to_be_visible()
    expect(main(bea).get_by_text("Completeness: 100% of the required text")).to_be_visible()
    bea.get_by_role("tab", name="Read").click()
    shot(bea, "07_model_card")
