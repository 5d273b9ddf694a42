"""The steward command: same services, JSON for scripts, one plain line and exit code 2 on refusal."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from core.cli import cli
from core.db import create_store_engine

PASSWORD = "a long enough password"


@pytest.fixture
def steward(settings, monkeypatch):
    monkeypatch.setenv("STEWARD_PASSWORD", PASSWORD)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return run


def test_user_project_and_audit_commands(steward):
    assert steward("user", "add", "ada", "--role", "admin").exit_code == 0
    assert steward("user", "add", "bea", "--role", "builder", "--role", "reviewer").exit_code == 0
    listed = json.loads(steward("--json", "user", "list").stdout)
    assert [(u["username"], u["roles"]) for u in listed] == [("ada", ["admin"]), ("bea", ["builder", "reviewer"])]
    created = json.loads(steward("--json", "project", "create", "Survey", "--user", "bea").stdout)
    assert created["owner_name"] == "bea"
    verify = steward("--json", "audit", "verify")
    assert verify.exit_code == 0 and json.loads(verify.stdout)["events_checked"] == 3
    assert json.loads(steward("--json", "jobs", "list").stdout) == []


def test_refusals_are_one_line_on_stderr_with_exit_code_2(steward):
    steward("user", "add", "ada", "--role", "admin")
    for args in (("user", "add", "ADA", "--role", "builder"), ("project", "create", "P", "--user", "ghost")):
        result = steward(*args)
        assert result.exit_code == 2
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("steward: ")
        assert "Traceback" not in result.stderr


def test_a_weak_password_is_refused(steward, monkeypatch):
    monkeypatch.setenv("STEWARD_PASSWORD", "short")
    result = steward("user", "add", "ada", "--role", "admin")
    assert result.exit_code == 2 and "at least 12" in result.stderr


def test_audit_verify_names_the_first_broken_event(steward, settings):
    steward("user", "add", "ada", "--role", "admin")
    steward("project", "create", "P", "--user", "ada")
    engine = create_store_engine(settings.resolved_database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE auditevent SET actor_name = 'mallory' WHERE seq = 1"))
    engine.dispose()
    result = steward("audit", "verify")
    assert result.exit_code == 1 and "broken at event 1" in result.stdout


def test_the_installed_console_script_never_shows_a_traceback(settings, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    env = {**os.environ, "STEWARD_DATABASE_URL": f"sqlite:///{tmp_path / 'a-file' / 'x.db'}"}
    result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "steward"), "user", "list"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.startswith("steward: ")
