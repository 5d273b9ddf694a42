"""Process-wide resources shared by every session: the engine and the job runner (cached, keyed by URL)."""

from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import streamlit as st

from core.config import Settings, get_settings
from core.db import create_store_engine, session_scope
from core.jobs import JobRunner


def settings() -> Settings:
    return get_settings()


@st.cache_resource(on_release=lambda engine: engine.dispose())
def _engine(url: str):
    return create_store_engine(url)


@contextmanager
def db_session():
    """One short session for one action (never cached, never kept in session state)."""
    with session_scope(_engine(settings().resolved_database_url)) as session:
        yield session


@st.cache_resource(on_release=lambda runner: runner.shutdown(wait=False))
def _job_runner(url: str, workers: int) -> JobRunner:
    return JobRunner(database_url=url, workers=workers)


def job_runner() -> JobRunner:
    current = settings()
    return _job_runner(current.resolved_database_url, current.job_workers)


def stale_after() -> timedelta:
    return timedelta(seconds=settings().job_stale_seconds)


@st.cache_data(max_entries=20, show_spinner="Comparing the two versions…")
def compare_versions(old_version_id: int, new_version_id: int, key: str | None) -> dict:
    """Versions never change, so a comparison can be kept and shared."""
    from core import datasets

    with db_session() as session:
        return datasets.compare_versions(session=session, settings=settings(), old_version_id=old_version_id,
                                         new_version_id=new_version_id, key=key)


@st.cache_data(max_entries=50, show_spinner="Checking the data for this target…")
def training_plan(version_id: int, target: str, task: str | None, excluded: tuple[str, ...]):
    """Planning reads the whole version; keep the answer while the user adjusts the form."""
    from core.training import runs

    with db_session() as session:
        return runs.plan_training(session=session, settings=settings(), version_id=version_id, target=target,
                                  task=task, excluded=excluded)


# A run's model and test set are content-addressed and never change: load (and verify) each once, by hash.


@st.cache_resource(max_entries=8, show_spinner="Loading the model…")
def _run_model(artifacts_path: str, model_sha256: str):
    from core.artifacts import ArtifactStore
    from core.training.persistence import load_model

    return load_model(ArtifactStore(Path(artifacts_path)), model_sha256)


@st.cache_data(max_entries=8, show_spinner="Loading the test set…")
def _run_test_set(artifacts_path: str, test_set_sha256: str):
    import pandas as pd

    from core.artifacts import ArtifactStore

    return pd.read_parquet(ArtifactStore(Path(artifacts_path)).verified_path(test_set_sha256))


def run_model(run):
    return _run_model(str(settings().artifacts_path), run.model_sha256)


def run_test_set(run):
    return _run_test_set(str(settings().artifacts_path), run.test_set_sha256)
