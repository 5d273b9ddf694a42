import pytest
from pydantic import ValidationError

from core.config import Settings


def test_defaults_live_under_the_home(tmp_path, monkeypatch):
    monkeypatch.setenv("STEWARD_HOME", str(tmp_path / "h"))
    monkeypatch.delenv("STEWARD_DATABASE_URL", raising=False)
    settings = Settings()
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'h' / 'steward.db'}"
    assert settings.artifacts_path == tmp_path / "h" / "artifacts"
    assert settings.max_upload_bytes == 200 * 1024 * 1024


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("STEWARD_HOME", str(tmp_path))
    monkeypatch.setenv("STEWARD_MAX_UPLOAD_MB", "5")
    monkeypatch.setenv("STEWARD_SESSION_IDLE_MINUTES", "7")
    settings = Settings()
    assert settings.max_upload_bytes == 5 * 1024 * 1024
    assert settings.session_idle_minutes == 7


def test_placeholder_secret_is_refused(monkeypatch):
    monkeypatch.setenv("STEWARD_SECRET_KEY", "changeme")
    with pytest.raises(ValidationError, match="random string"):
        Settings()


def test_secret_key_is_generated_once_and_private(tmp_path, monkeypatch):
    monkeypatch.setenv("STEWARD_HOME", str(tmp_path))
    monkeypatch.delenv("STEWARD_SECRET_KEY", raising=False)
    first = Settings().resolved_secret_key()
    assert len(first) >= 32
    assert Settings().resolved_secret_key() == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
