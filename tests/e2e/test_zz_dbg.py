import sqlite3
import pytest
from playwright.sync_api import Page, expect
from tests.e2e.conftest import Server, go_to, log_in_as_builder, start_project, wait_idle
from tests.e2e.test_data import JOB_TIMEOUT, SAMPLES, click_cell, main, upload

pytestmark = pytest.mark.e2e

@pytest.mark.parametrize("variant", ["source", "idle", "plain"])
def test_dbg(page: Page, seeded_server: Server, variant):
    log_in_as_builder(page, seeded_server)
    start_project(page, f"P {variant}")
    go_to(page, "Data")
    upload(page, SAMPLES / "labour_force.csv")
    columns = main(page).get_by_test_id("stDataFrame").nth(1)
    expect(columns).to_contain_text("person_id")
    wait_idle(page)
    click_cell(columns, row=2)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    if variant == "source":
        page.get_by_role("textbox", name="Where does the data come from?").fill("x")
    page.get_by_role("textbox", name="Data owner").fill("Survey team")
    if variant == "idle":
        page.wait_for_timeout(1000)
    page.get_by_role("button", name="Save version").click()
    expect(main(page).get_by_text("Saved as version 1 of labour_force (5,000 rows).")).to_be_visible(timeout=JOB_TIMEOUT)
    con = sqlite3.connect(seeded_server.database_url.removeprefix("sqlite:///"))
    print("DBG", variant, con.execute("select sensitive_columns from datasetversion order by id desc limit 1").fetchall())
