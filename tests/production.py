"""A store with a model in production, built once per test module through the real services and copied per test.

Training, reproducing and reviewing a model takes seconds; alert and pipeline tests start from the result:
bea (builder) trained ``employment`` v1 on 300 labour-force rows (sex marked sensitive), wrote its card and
answered its checklist; rita (reviewer) approved it; its run was reproduced; mo (manager) promoted it. The
dataset has a data contract derived from version 1.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from core import auth, datasets, registry
from core.config import get_settings
from core.db import create_store_engine, migrate, session_scope
from core.models import UserPublic
from core.training import runs
from tests.factories import (
    approve_version,
    make_assessed_version,
    make_dataset_version,
    make_project,
    make_trained_run,
    make_user,
)

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
TRAINING_ROWS = 300


@dataclass(frozen=True)
class Team:
    admin: UserPublic
    bea: UserPublic
    rita: UserPublic
    mo: UserPublic


def labour_rows(directory: Path, first: int, count: int, name: str | None = None, edit=None) -> Path:
    """Rows ``first`` … ``first + count - 1`` (0-based, after the header) of the labour-force sample as a CSV file;
    ``edit`` may change each data line (a list of its fields)."""
    lines = (SAMPLE / "labour_force.csv").read_text(encoding="utf-8").splitlines()
    body = lines[1 + first: 1 + first + count]
    if edit is not None:
        header = lines[0].split(",")
        body = [",".join(edit(dict(zip(header, line.split(","), strict=True))).values()) for line in body]
    path = directory / (name or f"labour_{first}_{count}.csv")
    path.write_text("\n".join([lines[0], *body]) + "\n", encoding="utf-8")
    return path


def _environment(home: Path) -> dict[str, str]:
    return {"STEWARD_HOME": str(home), "STEWARD_DATABASE_URL": f"sqlite:///{home / 'steward.db'}",
            "STEWARD_SECRET_KEY": "k" * 40, "STEWARD_EXPLAIN_ROWS": "50", "STEWARD_EXPLAIN_BACKGROUND_ROWS": "20"}


def build(directory: Path) -> Path:
    """Build the store in ``directory/home`` and return that folder."""
    home = directory / "home"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in _environment(home).items():
            patch.setenv(key, value)
        get_settings.cache_clear()
        settings = get_settings()
        settings.ensure_home()
        migrate(settings.resolved_database_url)
        engine = create_store_engine(settings.resolved_database_url)
        try:
            with session_scope(engine) as session:
                bea = make_user(session, "bea")
                rita = make_user(session, "rita", roles=("reviewer",))
                mo = make_user(session, "mo", roles=("manager",))
                project = make_project(session, bea)
                data = make_dataset_version(session, settings, bea, project,
                                            labour_rows(directory, 0, TRAINING_ROWS),
                                            metadata=datasets.VersionMetadata(sensitive_columns=["sex"]))
                datasets.save_contract(session=session, settings=settings, actor=bea, version_id=data.id)
                run = make_trained_run(session, settings, bea, data)
                version = make_assessed_version(session, bea, run.id)
                certificate = runs.start_reproduction(session=session, runner=None, actor=bea, run_id=run.id)
                runs.reproduce(session=session, settings=settings, certificate_id=certificate.id, actor=bea)
                approve_version(session, settings, bea, rita, version.id)
                registry.promote_version(session=session, settings=settings, actor=mo, version_id=version.id,
                                         reason="First production version.")
        finally:
            with engine.connect() as connection:  # fold the WAL into the file before it is copied
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            engine.dispose()
            get_settings.cache_clear()
    return home


_BUILT: dict[Path, Path] = {}


def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built store, made once per test session."""
    base = tmp_path_factory.getbasetemp()
    if base not in _BUILT:
        _BUILT[base] = build(tmp_path_factory.mktemp("production"))
    return _BUILT[base]


def use(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str = "home"):
    """A private copy of the built store for one test (in ``tmp_path / folder``); returns its settings."""
    home = tmp_path / folder
    shutil.copytree(template, home)
    for key, value in _environment(home).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    settings = get_settings()
    assert os.path.exists(home / "steward.db")
    return settings


def team(session) -> Team:
    return Team(*(auth.get_user_by_name(session=session, username=name) for name in ("admin", "bea", "rita", "mo")))
