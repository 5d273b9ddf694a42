"""The training journey a builder clicks: upload the survey, train a quick model, read its results."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Server, go_to, log_in_as_builder, screenshot, start_project, wait_idle
from tests.e2e.test_data import JOB_TIMEOUT, SAMPLES, click_cell, main, metric, upload

pytestmark = pytest.mark.e2e

# The quick budget is 20 s of search; the worker process, the winner's fit and the test set come on top.
TRAINING_TIMEOUT = 120_000


def charts(page: Page):
    return main(page).locator(".vega-embed").locator("canvas, svg")


def test_builder_trains_a_quick_model_and_reads_its_results(page: Page, seeded_server: Server):
    log_in_as_builder(page, seeded_server)
    start_project(page, "Employment model", "Who is employed, from the survey.")

    # The survey, with sex (the third column) marked sensitive so that results are given per sex too.
    go_to(page, "Data")
    upload(page, SAMPLES / "labour_force.csv")
    columns = main(page).get_by_test_id("stDataFrame").nth(1)
    expect(columns).to_contain_text("person_id")
    wait_idle(page)
    click_cell(columns, row=2)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    page.get_by_role("textbox", name="Data owner").fill("Survey team")
    # The grid hands its edits to the form a moment after the key press; a click at once would lose the mark.
    page.wait_for_timeout(1_000)
    page.get_by_role("button", name="Save version").click()
    expect(main(page).get_by_text("Saved as version 1 of labour_force (5,000 rows).")).to_be_visible(
        timeout=JOB_TIMEOUT)
    wait_idle(page)

    # Train: the last column is the target, the task is detected, the identifier is left out.
    go_to(page, "Train")
    expect(main(page).get_by_role("combobox", name="Column to predict")).to_have_value("employed")
    expect(main(page).get_by_role("combobox", name="Kind of problem")).to_have_value("binary")
    expect(main(page).get_by_text("Identifier columns are never used as inputs: person_id.")).to_be_visible()
    main(page).get_by_test_id("stRadio").get_by_text("quick (20 s)").click()
    screenshot(page, "train")
    page.get_by_role("button", name="Start training").click()
    expect(main(page).get_by_role("heading", name="Run 1: predicting employed")).to_be_visible()
    results_link = main(page).get_by_role("link", name="See the results")
    expect(results_link).to_be_visible(timeout=TRAINING_TIMEOUT)
    expect(main(page).get_by_text("Training run 1 (employed): done.")).to_be_visible()
    expect(main(page).get_by_test_id("stDataFrame")).to_contain_text("logistic regression")
    wait_idle(page)
    screenshot(page, "train_done")

    # Results: the headline on data the search never saw, then subgroups and diagnostics.
    results_link.click()
    expect(main(page).get_by_role("heading", name="Model results", exact=True)).to_be_visible()
    expect(metric(page, "ROC AUC")).to_have_text(re.compile(r"^0\.\d{3}$"))
    expect(main(page).get_by_text("vs baseline").first).to_be_visible()
    wait_idle(page)
    screenshot(page, "results_overview")

    page.get_by_role("tab", name="Subgroups").click()
    expect(main(page).get_by_test_id("stDataFrame").filter(has_text="female")).to_be_visible()
    expect(charts(page).first).to_be_visible()
    wait_idle(page)
    screenshot(page, "results_subgroups")

    page.get_by_role("tab", name="Diagnostics").click()
    expect(main(page).get_by_role("heading", name="Decision threshold")).to_be_visible()
    expect(main(page).get_by_role("button", name="Use 0.50 as the decision threshold")).to_have_count(0)
    wait_idle(page)
    screenshot(page, "results_diagnostics")
