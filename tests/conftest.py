"""Every test gets its own Steward home (a temp dir) and its own store, SQLite or PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.config import get_settings
from core.db import create_store_engine, migrate, session_scope
from tests.pg import ThrowawayPostgres

# Workers spawned by job tests inherit these: keep numeric libraries to one thread each.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# The Model Card Toolkit schema is not part of the project; card exports are validated when it is at hand.
MCT_SCHEMA = Path(os.environ.get("STEWARD_MODEL_CARD_SCHEMA")
                  or Path(__file__).resolve().parents[2] / "shared" / "reference" / "model_card.schema.json")


@pytest.fixture(scope="session")
def postgres_server():
    server = ThrowawayPostgres().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A fresh, empty store URL; core tests using it run once per database."""
    if request.param == "postgres":
        return request.getfixturevalue("postgres_server").new_database()
    return f"sqlite:///{tmp_path / 'home' / 'steward.db'}"


def _settings_for(url, tmp_path, monkeypatch):
    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STEWARD_DATABASE_URL", url)
    monkeypatch.setenv("STEWARD_SECRET_KEY", "k" * 40)
    if MCT_SCHEMA.is_file():
        monkeypatch.setenv("STEWARD_MODEL_CARD_SCHEMA", str(MCT_SCHEMA))
    get_settings.cache_clear()
    current = get_settings()
    current.ensure_home()
    migrate(url)
    return current


@pytest.fixture
def settings(database_url, tmp_path, monkeypatch):
    """Settings pointing at a temp home and a fresh store (run on SQLite and on PostgreSQL)."""
    yield _settings_for(database_url, tmp_path, monkeypatch)
    get_settings.cache_clear()


@pytest.fixture
def sqlite_settings(tmp_path, monkeypatch):
    """Settings on a fresh SQLite store only (page tests, which exercise the UI, not the database)."""
    yield _settings_for(f"sqlite:///{tmp_path / 'home' / 'steward.db'}", tmp_path, monkeypatch)
    get_settings.cache_clear()


@pytest.fixture
def engine(settings):
    engine = create_store_engine(settings.resolved_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine):
    with session_scope(engine) as session:
        yield session
