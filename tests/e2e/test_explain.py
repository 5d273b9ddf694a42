"""The explanations a builder reads: which columns matter overall, then why one record got its prediction.

The model is trained through the core services against the server's own home before the browser opens, so
the test spends its time on the page, not on uploading and training (tests/e2e/test_training.py does that).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from core import auth as core_auth
from core.config import Settings
from core.db import create_store_engine, session_scope
from tests.e2e.conftest import ADMIN, BUILDER, ROOT, Server, go_to, log_in_as_builder, screenshot, wait_idle
from tests.factories import make_dataset_version, make_project, make_trained_run

pytestmark = pytest.mark.e2e

PROJECT = "Explained survey"


@pytest.fixture(scope="module")
def explained_server(start_server, tmp_path_factory) -> Server:
    """A server of its own (run numbers stay 1, 2, ... for the other tests) holding one trained binary run."""
    server = start_server("explain")
    lines = (ROOT / "sample_data" / "labour_force.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    path = tmp_path_factory.mktemp("data") / "labour_force.csv"
    path.write_text("".join(lines[:601]), encoding="utf-8")
    settings = Settings(home=server.home, database_url=server.database_url, artifact_dir=server.home / "artifacts")
    engine = create_store_engine(server.database_url)
    try:
        with session_scope(engine) as session:
            admin = core_auth.create_first_admin(session=session, username=ADMIN[0], display_name=ADMIN[1],
                                                 password=ADMIN[2])
            builder = core_auth.create_user(session=session, actor=admin, username=BUILDER[0],
                                            display_name=BUILDER[1], password=BUILDER[2], roles=["builder"])
            project = make_project(session, builder, PROJECT)
            version = make_dataset_version(session, settings, builder, project, path)
            make_trained_run(session, settings, builder, version)
    finally:
        engine.dispose()
    return server


def test_builder_reads_the_overall_picture_then_one_records_explanation(page: Page, explained_server: Server):
    log_in_as_builder(page, explained_server)
    main = page.get_by_test_id("stMain")
    expect(main.get_by_text(PROJECT, exact=True)).to_be_visible()
    main.get_by_role("button", name="Open", exact=True).click()  # the only project
    expect(page.get_by_test_id("stSidebar").get_by_text(f"Project: {PROJECT}", exact=True)).to_be_visible()

    go_to(page, "Explanations")
    expect(main.get_by_text(re.compile(r"^LinearExplainer on 120 test records \(seed 42\)"))).to_be_visible()
    expect(main.get_by_text(re.compile(r"^Stability: not measured\. The model has only 8 input"))).to_be_visible()
    charts = main.locator(".vega-embed").locator("canvas, svg")
    expect(charts.first).to_be_visible()  # which columns matter most
    expect(charts).to_have_count(3)  # and the beeswarm and the dependence plot
    wait_idle(page)
    screenshot(page, "explain_overall")

    page.get_by_role("tab", name="One record").click()
    # The sentence comes first, in the info box (its text starts after the box's light-bulb icon).
    sentence = main.get_by_test_id("stAlert").get_by_text(
        re.compile(r"^Predicted '(true|false)' with probability 0\.\d\d\. The main reasons: "))
    expect(sentence).to_be_visible()
    expect(main.get_by_text(re.compile(r"^Actual value: (true|false)\. Contributions are rescaled"))).to_be_visible()
    wait_idle(page)
    screenshot(page, "explain_record")
