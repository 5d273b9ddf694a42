"""The data journey a builder clicks: upload a table, check its columns, save it as a version, read its
profile, derive a data contract and check new batches against it; plus a bad upload.

Both tests share the seeded server and start their own project, so neither depends on the other.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import BUILDER, ROOT, Server, go_to, log_in_as_builder, screenshot, start_project, wait_idle

pytestmark = pytest.mark.e2e

SAMPLES = ROOT / "sample_data"
# Saving runs in a worker process the server spawns on the first job: give it time to start.
JOB_TIMEOUT = 60_000
ROW = 35  # height of a header or data row in Streamlit's data grid, in CSS pixels


def main(page: Page) -> Locator:
    return page.get_by_test_id("stMain")


def upload(page: Page, path) -> None:
    page.get_by_test_id("stFileUploader").locator('input[type="file"]').set_input_files(path)


def select(page: Page, label: str, option: str) -> None:
    combobox = main(page).get_by_role("combobox", name=label, exact=True)
    # A scroll closes an open dropdown, so bring the box into view before the click opens it.
    combobox.scroll_into_view_if_needed()
    combobox.click()
    page.get_by_role("option", name=option, exact=True).click()
    expect(combobox).to_have_value(option)


def metric(page: Page, label: str) -> Locator:
    """The value shown by the metric with this label."""
    label_text = page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True)
    return main(page).get_by_test_id("stMetric").filter(has=label_text).get_by_test_id("stMetricValue")


def click_cell(grid: Locator, row: int) -> None:
    """Select a cell of the grid's first column; the grid is a canvas, so move on from there with the keyboard."""
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    grid.page.mouse.click(box["x"] + 10, box["y"] + ROW + row * ROW + ROW / 2)


def test_upload_save_profile_and_check_batches_against_the_contract(page: Page, seeded_server: Server):
    log_in_as_builder(page, seeded_server)
    start_project(page, "Labour force", "Predict employment from the survey.")

    # Upload: a preview of the first rows and the guessed column types.
    go_to(page, "Data")
    upload(page, SAMPLES / "labour_force.csv")
    expect(main(page).get_by_text("Detected encoding UTF-8 and separator ','.")).to_be_visible()
    expect(main(page).get_by_role("heading", name="Columns")).to_be_visible()
    grids = main(page).get_by_test_id("stDataFrame")
    expect(grids).to_have_count(2)
    preview, columns = grids.nth(0), grids.nth(1)
    expect(preview).to_contain_text("P000001")
    expect(columns).to_contain_text("person_id")
    wait_idle(page)

    # The grid is drawn on a canvas: select a cell with the mouse, move with the keyboard, and mark sex
    # (the third row of the grid) as sensitive.
    click_cell(columns, row=2)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    page.get_by_role("textbox", name="Where does the data come from?").fill("Synthetic labour force survey")
    page.get_by_role("textbox", name="Data owner").fill("Survey team")
    screenshot(page, "data_preview")

    # Save: a job in a worker process; the page polls it and shows the result.
    page.get_by_role("button", name="Save version").click()
    expect(main(page).get_by_text("Saved as version 1 of labour_force (5,000 rows).")).to_be_visible(
        timeout=JOB_TIMEOUT)
    expect(main(page).get_by_role("link", name="See its profile")).to_be_visible()
    wait_idle(page)
    screenshot(page, "data_saved")

    # The profile: the version, the metadata given, a warning about the identifier, a chart.
    go_to(page, "Versions and profiles")
    expect(main(page).get_by_role("combobox", name="Dataset")).to_have_value("labour_force (1 version)")
    expect(main(page).get_by_test_id("stDataFrame").first).to_contain_text("labour_force.csv")
    expect(metric(page, "Rows")).to_have_text("5,000")
    expect(metric(page, "Sensitive columns")).to_have_text("1")
    expect(main(page).get_by_text("Sensitive: sex")).to_be_visible()
    expect(main(page).get_by_text("Owner: Survey team")).to_be_visible()
    identifier_warning = main(page).get_by_test_id("stAlert").filter(has_text=re.compile(r"'person_id'.*identif"))
    expect(identifier_warning).to_be_visible()
    select(page, "Column", "region")
    expect(main(page).locator(".vega-embed").locator("canvas, svg").first).to_be_visible()
    expect(main(page).get_by_test_id("stExpander").filter(has_text="All figures for region")).to_be_visible()
    wait_idle(page)
    screenshot(page, "datasets_profile")

    # The contract: derived from version 1.
    go_to(page, "Data contract")
    expect(main(page).get_by_text("No contract yet. Derive one from a version above.")).to_be_visible()
    page.get_by_role("button", name="Derive a contract from this version").click()
    expect(main(page).get_by_role("heading", name="Contract 1")).to_be_visible()
    expect(main(page).get_by_text(f"Saved by {BUILDER[0]} on ")).to_be_visible()
    wait_idle(page)
    screenshot(page, "contract")

    # A drifted batch breaks a rule (too many empty hours_usual) and its ages have shifted.
    upload(page, SAMPLES / "labour_force_batch_drifted.csv")
    expect(main(page).get_by_text("labour_force_batch_drifted.csv does not meet contract 1: 1 problem to fix.")
           ).to_be_visible()
    expect(main(page).locator("li").filter(has_text="Problem:")).to_have_count(1)
    expect(main(page).locator("li").filter(has_text="Problem:")).to_contain_text(
        "Column 'hours_usual' is empty in 20.0% of rows")
    age_drift = main(page).locator("li").filter(has_text="Warning:").filter(
        has_text="The values of column 'age' have shifted")
    expect(age_drift).to_have_count(1)
    wait_idle(page)
    screenshot(page, "contract_validation")

    # A batch from the same process meets the contract.
    upload(page, SAMPLES / "labour_force_batch_similar.csv")
    expect(main(page).get_by_text("labour_force_batch_similar.csv meets contract 1 (1,000 rows).")).to_be_visible()
    expect(main(page).locator("li").filter(has_text="Problem:")).to_have_count(0)
    expect(main(page).locator("li").filter(has_text="Warning:")).to_have_count(0)
    wait_idle(page)
    screenshot(page, "contract_validation_similar")


def test_empty_file_is_refused_in_plain_words(page: Page, seeded_server: Server, tmp_path):
    log_in_as_builder(page, seeded_server)
    start_project(page, "Empty upload")
    go_to(page, "Data")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    upload(page, empty)
    error = main(page).get_by_test_id("stAlert")
    expect(error).to_contain_text("'empty.csv' is empty. Upload a file with a header row and at least one row of data.")
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(main(page).get_by_role("button", name="Save version")).to_have_count(0)
    wait_idle(page)
    screenshot(page, "data_empty_file")
