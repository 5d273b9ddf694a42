"""Reusable UI pieces: safe text, job progress."""

import re

import streamlit as st

from app import resources
from core import jobs
from core.models import JobPublic, UserPublic

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=])")


def md(text: object) -> str:
    """User text made safe to put inside Markdown: shown literally, never as links, images or markup."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def follow_job(job_id: int, user: UserPublic, *, key: str) -> JobPublic:
    """Show a job's progress, polling while it runs; returns its state when the page ran."""
    with resources.db_session() as session:
        job = jobs.get_job(session=session, job_id=job_id, stale_after=resources.stale_after())
    started_running = not job.finished

    @st.fragment(run_every=1.0 if started_running else None)
    def _panel() -> None:
        with resources.db_session() as session:
            current = jobs.get_job(session=session, job_id=job_id, stale_after=resources.stale_after())
        if current.status == "succeeded":
            st.success(f"{md(current.title)}: done.")
        elif current.status == "failed":
            st.error(f"{md(current.title)} failed: {md(current.error)}")
        elif current.status == "cancelled":
            st.warning(f"{md(current.title)} was cancelled.")
        else:
            label = "Waiting for a free worker…" if current.status == "queued" else current.message or "Working…"
            st.progress(current.progress, text=f"{current.title}: {label}")
            if st.button("Cancel", key=f"{key}_cancel_{job_id}", disabled=current.cancel_requested):
                with resources.db_session() as session:
                    jobs.request_cancel(session=session, actor=user, job_id=job_id)
        if started_running and current.finished:
            st.rerun(scope="app")  # stop polling and let the page show the result

    _panel()
    return job
