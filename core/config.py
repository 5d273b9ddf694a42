"""Settings, read from ``STEWARD_*`` environment variables.

Settings are created through :func:`get_settings` (never at import time), so tests and worker processes
can point Steward at another home or database by changing the environment.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDERS = {"changeme", "change-me", "secret", "password", "steward"}


class Settings(BaseSettings):
    """Every setting Steward reads, with its default."""

    model_config = SettingsConfigDict(env_prefix="STEWARD_", extra="ignore")

    home: Path = Field(default=Path("~/.steward"), description="Folder for the store, artifacts and secrets.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is a SQLite file `steward.db` in the home."
    )
    artifact_dir: Path | None = Field(default=None, description="Artifact store; default `artifacts/` in the home.")
    secret_key: str | None = Field(
        default=None, description="Signing key; generated into `secret_key` in the home when absent."
    )
    max_upload_mb: int = Field(default=200, ge=1, description="Largest file a user may upload, in MB.")
    session_idle_minutes: int = Field(default=60, ge=1, description="A login ends after this many idle minutes.")
    lockout_attempts: int = Field(default=5, ge=1, description="Failed logins in a row that lock an account.")
    lockout_minutes: int = Field(default=15, ge=1, description="How long a locked account stays locked.")
    job_workers: int = Field(default=1, ge=1, description="Worker processes that run long jobs.")
    job_stale_seconds: int = Field(default=60, ge=5, description="A running job silent this long is dead.")
    api_max_records: int = Field(default=10_000, ge=1, description="Most records one REST prediction request may hold.")
    explain_rows: int = Field(default=1000, ge=50, description="Rows explained for a model's global explanation.")
    explain_background_rows: int = Field(default=200, ge=20, description="Background rows for SHAP explainers.")
    app_url: str = Field(default="http://127.0.0.1:8501", description="Public address of the app (for links).")
    model_card_schema: Path | None = Field(
        default=None, description="Model Card Toolkit JSON schema (v0.0.2) that card exports are validated against."
    )
    baseline_margin: float = Field(default=0.01, ge=0, description="How much a model must beat the dummy baseline.")
    subgroup_gap_tolerance: float = Field(default=0.05, ge=0, description="Largest tolerated subgroup metric gap.")
    production_tolerance: float = Field(
        default=0.01, ge=0, description="How much worse than the production version a new version may score."
    )
    min_group_rows: int = Field(default=30, ge=1, description="Fewer rows than this make a group under-represented.")
    min_cell_size: int = Field(default=10, ge=1, description="Group tables suppress cells with fewer rows.")
    proxy_nmi_threshold: float = Field(default=0.5, ge=0, le=1,
                                       description="Mutual information above which a feature proxies a sensitive one.")
    missing_share_threshold: float = Field(default=0.2, ge=0, le=1, description="Tolerated missing share per column.")
    ci_width_tolerance: float = Field(default=0.1, ge=0, description="Widest tolerated 95% interval of a metric.")
    reassess_months: int = Field(default=12, ge=1, description="An approved assessment is repeated after this.")
    monitor_min_rows: int = Field(default=100, ge=1,
                                  description="A scored batch with fewer rows is reported but not judged for drift.")
    monitor_drift_share: float = Field(default=0.5, gt=0, le=1,
                                       description="Share of drifted input columns at which a batch counts as drifted.")
    monitor_html_rows: int = Field(default=20_000, ge=100,
                                   description="Rows of each side sampled for evidently's full HTML drift report.")

    @field_validator("home", "artifact_dir", "model_card_schema", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @field_validator("secret_key", mode="after")
    @classmethod
    def _refuse_placeholder(cls, value: str | None) -> str | None:
        if value is not None and (value.lower() in _PLACEHOLDERS or len(value) < 32):
            raise ValueError("STEWARD_SECRET_KEY must be a random string of at least 32 characters")
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'steward.db'}"

    @property
    def artifacts_path(self) -> Path:
        return self.artifact_dir or self.home / "artifacts"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    def ensure_home(self) -> None:
        """Create the home and artifact folders."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.artifacts_path.mkdir(parents=True, exist_ok=True)

    def resolved_secret_key(self) -> str:
        """The configured key, or one generated once into the home (readable by the owner only)."""
        if self.secret_key:
            return self.secret_key
        self.ensure_home()
        path = self.home / "secret_key"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_urlsafe(48))
            tmp.chmod(0o600)
            tmp.replace(path)
        return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    """The settings of this process (cached; tests call ``get_settings.cache_clear()``)."""
    return Settings()
