"""The sample project: `steward demo` walks the whole journey with real services, and refuses to run twice."""

import json

import pytest
from click.testing import CliRunner

from core import alerts, auth, demo, registry, review, serving
from core.cli import cli
from core.db import create_store_engine, session_scope
from core.errors import NotAllowed


@pytest.fixture
def sqlite_engine(sqlite_settings):
    engine = create_store_engine(sqlite_settings.resolved_database_url)
    yield engine
    engine.dispose()


def test_steward_demo_builds_every_step_and_prints_the_passwords_once(sqlite_settings, sqlite_engine):
    result = CliRunner().invoke(cli, ["--json", "demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    loaded = json.loads(result.stdout)

    accounts = {a["username"]: a for a in loaded["accounts"]}
    assert {a["role"] for a in accounts.values()} == {"builder", "reviewer", "manager"}
    with session_scope(sqlite_engine) as session:
        builder = auth.authenticate(session=session, settings=sqlite_settings, username="demo_builder",
                                    password=accounts["demo_builder"]["password"])
        assert builder.roles == ["builder"]
        versions = {v.number: v for v in registry.list_versions(session=session, project_id=loaded["project_id"])}
        assert versions[1].status == "production" and versions[2].status == "in_review"
        assert review.latest_decision(session=session, version_id=versions[1].id)["decision"] == \
            "approve_with_conditions"
        batches = serving.list_batches(session=session, project_id=loaded["project_id"])
        assert sorted(b.source for b in batches) == ["labour_force_batch_drifted.csv",
                                                     "labour_force_batch_similar.csv"]
        opened = alerts.list_alerts(session=session, project_id=loaded["project_id"])
        assert [a.metric for a in opened] == ["drift_share"] and opened[0].pipeline_run_id is not None
        queue = review.review_queue(session=session, actor=auth.get_user_by_name(session=session,
                                                                                 username="demo_reviewer"))
        assert [(e.label, e.refusal) for e in queue] == [("employment v2", None)]

    again = CliRunner().invoke(cli, ["demo"], catch_exceptions=False)
    assert again.exit_code == 2 and "exists already" in again.stderr


def test_only_an_admin_loads_the_sample_project(sqlite_settings, sqlite_engine):
    from tests.factories import make_user

    with session_scope(sqlite_engine) as session:
        bea = make_user(session, "bea")
        with pytest.raises(NotAllowed):
            demo.create_accounts(session=session, actor=bea)
        assert not demo.sample_project_exists(session=session)
