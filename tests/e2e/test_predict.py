"""Scoring in a real browser: a file uploaded on the Predict page and its predictions downloaded, then a token made
on the Profile page and used for one REST call against the same running server.

The model is trained and put into production through the core services against the server's own home before the
browser opens, so the test spends its time on the pages (tests/e2e/test_training.py covers training).
"""

from __future__ import annotations

import io
import json
import re
import urllib.error
import urllib.request

import pandas as pd
import pytest
from playwright.sync_api import Page, expect

from core import auth as core_auth
from core import registry
from core.config import Settings
from core.db import create_store_engine, session_scope
from core.models import VersionStatus
from tests.e2e.conftest import ADMIN, BUILDER, ROOT, Server, go_to, log_in_as_builder, screenshot, wait_idle
from tests.factories import make_dataset_version, make_project, make_trained_run

pytestmark = pytest.mark.e2e

PROJECT = "Scored survey"
RECORD = {"age": 42, "sex": "female", "region": "North", "education": "tertiary", "hours_usual": 38.5,
          "household_size": 3, "urban": "yes", "months_since_last_job": 4}


@pytest.fixture(scope="module")
def scoring_server(start_server, tmp_path_factory) -> Server:
    """A server of its own holding ``employment`` v1 in production (a yes/no model on 300 survey rows)."""
    server = start_server("predict")
    lines = (ROOT / "sample_data" / "labour_force.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path_factory.mktemp("data") / "labour_force.csv"
    path.write_text("".join(lines[:301]), encoding="utf-8")
    settings = Settings(home=server.home, database_url=server.database_url, artifact_dir=server.home / "artifacts",
                        explain_rows=50, explain_background_rows=20)
    engine = create_store_engine(server.database_url)
    try:
        with session_scope(engine) as session:
            admin = core_auth.create_first_admin(session=session, username=ADMIN[0], display_name=ADMIN[1],
                                                 password=ADMIN[2])
            builder = core_auth.create_user(session=session, actor=admin, username=BUILDER[0],
                                            display_name=BUILDER[1], password=BUILDER[2], roles=["builder"])
            project = make_project(session, builder, PROJECT)
            version = make_dataset_version(session, settings, builder, project, path)
            run = make_trained_run(session, settings, builder, version)
            registered = registry.register_run(session=session, actor=builder, run_id=run.id, model_name="employment")
            for status in (VersionStatus.approved, VersionStatus.production):
                registry.change_status(session=session, actor=admin, version_id=registered.id, to_status=status,
                                       reason="end-to-end test")
            session.commit()
    finally:
        engine.dispose()
    return server


def _open_project(page: Page, server: Server) -> None:
    log_in_as_builder(page, server)
    main = page.get_by_test_id("stMain")
    expect(main.get_by_text(PROJECT, exact=True)).to_be_visible()
    main.get_by_role("button", name="Open", exact=True).click()
    expect(page.get_by_test_id("stSidebar").get_by_text(f"Project: {PROJECT}", exact=True)).to_be_visible()


def test_builder_scores_a_file_and_downloads_the_predictions(page: Page, scoring_server: Server, tmp_path):
    _open_project(page, scoring_server)
    go_to(page, "Predict")
    main = page.get_by_test_id("stMain")
    expect(main.get_by_text(re.compile(r"^employment v1: a binary model for employed"))).to_be_visible()

    page.get_by_test_id("stFileUploader").locator('input[type="file"]').set_input_files(
        ROOT / "sample_data" / "labour_force_batch_drifted.csv")
    expect(main.get_by_text("labour_force_batch_drifted.csv fits employment v1: checked all 1,000 rows.")
           ).to_be_visible()
    expect(main.get_by_text("(the model does not use them): person_id, employed")).to_be_visible()
    wait_idle(page)
    screenshot(page, "predict_checked")

    main.get_by_role("button", name="Score all rows").click()
    # A job in a worker process: the page polls it, then shows the result (a spawned worker takes a while).
    expect(main.get_by_text(re.compile(r"^Scored 1,000 rows of labour_force_batch_drifted\.csv with employment v1"))
           ).to_be_visible(timeout=90_000)
    wait_idle(page)
    screenshot(page, "predict_scored")
    with page.expect_download() as info:
        main.get_by_role("button", name="Download CSV").first.click()
    download = info.value
    assert re.fullmatch(r"predictions-employment-v1-batch\d+\.csv", download.suggested_filename)
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    predictions = pd.read_csv(saved)
    assert len(predictions) == 1000
    assert list(predictions.columns)[:2] == ["person_id", "age"]
    assert list(predictions.columns)[-3:] == ["predicted_employed", "probability_false", "probability_true"]
    assert set(predictions["predicted_employed"]) <= {True, False}
    assert predictions["probability_true"].between(0, 1).all()


def test_a_token_made_on_the_profile_page_scores_a_record_over_rest(page: Page, scoring_server: Server):
    _open_project(page, scoring_server)
    go_to(page, "Profile")
    main = page.get_by_test_id("stMain")
    page.get_by_role("textbox", name="What is the token for?").fill("end-to-end test")
    main.get_by_role("button", name="Make a token").click()
    expect(main.get_by_text("Copy it now; Steward will not show it again.", exact=False)).to_be_visible()
    secret = main.get_by_test_id("stCode").inner_text().strip()
    assert secret.startswith("stw_")
    wait_idle(page)
    screenshot(page, "profile_token")

    url = f"{scoring_server.url}/api/v1/models/employment/predict?project={PROJECT.replace(' ', '%20')}"
    request = urllib.request.Request(url, data=json.dumps([RECORD]).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    assert (answer["model"], answer["version"], answer["rows"]) == ("employment", 1, 1)
    [prediction] = answer["predictions"]
    assert prediction["prediction"] in ("true", "false")
    assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-9

    refused = urllib.request.Request(url, data=b"[{", method="POST", headers={"Authorization": f"Bearer {secret}"})
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(refused, timeout=30)
    assert error.value.code == 400
    assert json.load(io.TextIOWrapper(error.value.fp))["error"]["message"].startswith("The request body is not valid")
