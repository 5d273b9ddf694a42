"""Process-wide resources shared by every session: the engine and the job runner (cached, keyed by URL)."""

from contextlib import contextmanager
from datetime import timedelta

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
