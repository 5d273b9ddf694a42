"""steward register / promote / rollback / models list: the registry from the command line."""

import json

import pytest
from click.testing import CliRunner

from core import auth, registry
from core.cli import cli
from core.db import create_store_engine, session_scope
from tests.core.test_registry import WEAK, complete_card, reviewed
from tests.factories import PASSWORD


@pytest.fixture
def steward(settings, monkeypatch):
    monkeypatch.setenv("STEWARD_PASSWORD", PASSWORD)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return run


@pytest.fixture
def trained(steward, tmp_path):
    """ada (admin), bea (builder), rita (reviewer), mo (manager); two runs of bea's on 300 survey rows."""
    from tests.app.conftest import sample_head

    for name, role in (("ada", "admin"), ("bea", "builder"), ("rita", "reviewer"), ("mo", "manager")):
        assert steward("user", "add", name, "--role", role).exit_code == 0
    steward("project", "create", "Survey", "--user", "bea")
    path = sample_head(tmp_path, "labour_force.csv", 300)
    assert steward("data", "add", "Survey", "labour", str(path), "--user", "bea", "--sensitive", "sex").exit_code == 0
    for extra in ((), tuple(f"--exclude={name}" for name in WEAK)):
        result = steward("train", "Survey", "labour", "--target", "employed", "--user", "bea", "--budget", "0.001",
                         *extra)
        assert result.exit_code == 0, result.stderr


def store(settings):
    return session_scope(create_store_engine(settings.resolved_database_url))


def test_register_promote_list_and_roll_back(steward, settings, trained):
    first = json.loads(steward("register", "1", "--model", "employment", "--user", "bea", "--json").stdout)
    assert (first["model_name"], first["number"], first["status"]) == ("employment", 1, "candidate")
    assert steward("register", "2", "--model", "employment", "--user", "bea").stdout == \
        "Registered run 2 as employment v2 (candidate).\n"

    refused = steward("promote", "employment", "1", "--user", "mo")
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("steward: employment v1 cannot be promoted: 3 gates fail.")

    with store(settings) as session:
        bea = auth.get_user_by_name(session=session, username="bea")
        rita = auth.get_user_by_name(session=session, username="rita")
        complete_card(session, bea, first["run_id"])
        reviewed(session, settings, bea, rita, first["id"])
    assert steward("reproduce", "1").exit_code == 0

    promoted = steward("promote", "employment", "1", "--user", "mo", "--project", "Survey", "--json",
                       "--reason", "First release")
    assert promoted.exit_code == 0, promoted.stderr
    data = json.loads(promoted.stdout)
    assert data["status"] == "production" and data["fallback"] is None
    assert [gate["verdict"] for gate in data["gates"]] == ["passed"] * 6

    with store(settings) as session:  # v2 is worse than chance: an administrator waives what it fails
        second = registry.find_version(session=session, model_id=data["model_id"], number=2)
        ada = auth.get_user_by_name(session=session, username="ada")
        for gate in registry.evaluate_gates(session=session, settings=settings, version_id=second.id).failed:
            registry.override_gate(session=session, settings=settings, actor=ada, version_id=second.id,
                                   gate=gate.gate, reason="Trial of the reduced model, agreed with the unit head.")
    text = steward("promote", "employment", "2", "--user", "ada").stdout
    assert text.startswith("employment v2 is in production. employment v1 is kept as the fallback.\n")
    assert "  overridden Model card complete: " in text

    listed = json.loads(steward("models", "list", "Survey", "--json").stdout)
    assert [(m["model"], m["production"], m["fallback"]) for m in listed] == [("employment", 2, 1)]
    assert [(v["number"], v["status"], v["fallback"]) for v in listed[0]["versions"]] == [
        (2, "production", False), (1, "retired", True)]
    assert "v1    retired (fallback)" in steward("models", "list", "Survey").stdout

    rolled = steward("rollback", "employment", "--user", "mo", "--reason", "Complaints from the regions")
    assert rolled.stdout == "Rolled employment back: employment v1 is in production again, v2 is retired.\n"
    again = steward("rollback", "employment", "--user", "mo")
    assert again.exit_code == 2 and again.stderr == \
        "steward: employment has no earlier production version to go back to.\n"


def test_refusals_name_the_problem_in_one_line(steward, trained):
    cases = {
        ("register", "1", "--model", "employment", "--user", "rita"): "This needs the builder or admin role",
        ("promote", "nothing", "1", "--user", "mo"): "There is no model named 'nothing'",
        ("rollback", "employment", "--user", "mo", "--project", "Elsewhere"): "Elsewhere",
        ("models", "list", "Elsewhere"): "Elsewhere",
    }
    steward("register", "1", "--model", "employment", "--user", "bea")
    for args, words in cases.items():
        result = steward(*args)
        assert result.exit_code == 2, args
        assert result.stderr.startswith("steward: ") and result.stderr.count("\n") == 1 and words in result.stderr
    four_eyes = steward("promote", "employment", "1", "--user", "bea")
    assert four_eyes.exit_code == 2 and "manager or admin" in four_eyes.stderr
    assert steward("models", "list", "Survey").stdout.startswith("employment: nothing in production\n  v1")
