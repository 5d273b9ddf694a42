"""Jobs: long work (training, explanations, drift reports, pipelines) run off the page, in a worker.

A job is a :class:`~core.models.Job` row. :func:`submit_job` records it and hands it to a
:class:`JobRunner`, whose executor runs :func:`run_job` in a worker process. The job function gets a
:class:`JobContext` to report progress (which also checks for a cancel request) and returns a small
JSON-able result. Pages and the CLI only read the row, so a refresh or a second user never loses a job.

The executor is anything with the ``concurrent.futures.Executor`` interface: a process pool by default,
or e.g. ``dask.distributed.Client(...).get_executor()`` when one machine is not enough.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import socket
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core import audit
from core.db import create_store_engine, session_scope
from core.errors import DomainError, NotAllowed, NotFound
from core.models import Job, JobPublic, JobStatus, Role, User, UserPublic, utcnow

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0

# kind → "module:function". The worker imports the function by name, so it must be importable.
JOB_KINDS: dict[str, str] = {
    "artifacts.verify": "core.maintenance:verify_artifacts_job",
    "data.ingest": "core.datasets:ingest_job",
    "demo.load": "core.demo:demo_job",
    "monitoring.html": "core.monitoring:html_job",
    "monitoring.report": "core.monitoring:report_job",
    "pipeline.run": "core.pipelines:pipeline_job",
    "serving.batch": "core.serving:batch_job",
    "training.run": "core.training.runs:training_job",
    "training.reproduce": "core.training.runs:reproduction_job",
}


def register_job_kind(kind: str, target: str) -> None:
    """Make ``kind`` runnable; ``target`` is ``"package.module:function"``."""
    JOB_KINDS[kind] = target


class JobCancelled(Exception):
    """Raised inside a job when someone asked to cancel it."""


class JobContext:
    """What a job function gets: its parameters, the store, and a way to report progress."""

    def __init__(self, *, engine: Engine, job_id: int, params: dict[str, Any], actor: UserPublic | None):
        self.engine, self.job_id, self.params, self.actor = engine, job_id, params, actor

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def progress(self, fraction: float, message: str = "") -> None:
        """Record progress (0-1) and a short message; stops the job if a cancel was requested."""
        with self.session() as session:
            job = session.get(Job, self.job_id)
            if job.cancel_requested:
                raise JobCancelled()
            job.progress = max(0.0, min(1.0, float(fraction)))
            job.message = message[:500]
            job.heartbeat_at = utcnow()
            session.add(job)
            session.commit()

    def check_cancelled(self) -> None:
        with self.session() as session:
            if session.get(Job, self.job_id).cancel_requested:
                raise JobCancelled()


def _public(job: Job) -> JobPublic:
    return JobPublic.model_validate(job, from_attributes=True)


# ── services ────────────────────────────────────────────────────────────────────────────────────────


def create_job(
    *, session: Session, actor: UserPublic, kind: str, params: dict[str, Any] | None = None, title: str = "",
    project_id: int | None = None,
) -> JobPublic:
    """Record a queued job (the runner starts it)."""
    if kind not in JOB_KINDS:
        raise NotFound(f"Steward has no job called {kind!r}.")
    job = Job(kind=kind, title=title or kind, params=params or {}, project_id=project_id,
              created_by_id=actor.id or None)
    session.add(job)
    session.flush()
    audit.record_event(session, actor=actor, action="job.submit", entity_type="job", entity_id=job.id,
                       details={"kind": kind, "title": job.title})
    session.commit()
    return _public(job)


def submit_job(
    *, session: Session, runner: JobRunner, actor: UserPublic, kind: str, params: dict[str, Any] | None = None,
    title: str = "", project_id: int | None = None,
) -> JobPublic:
    """Record a job and start it on ``runner``."""
    job = create_job(session=session, actor=actor, kind=kind, params=params, title=title, project_id=project_id)
    runner.start(job.id)
    return job


def get_job(*, session: Session, job_id: int, stale_after: timedelta | None = None) -> JobPublic:
    """A job's current state; a running job whose heartbeat stopped is marked failed."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"There is no job {job_id}.")
    if stale_after is not None and job.status == JobStatus.running and _is_stale(job, stale_after):
        _fail(session, job, "The worker running this job stopped answering. Start the job again.")
    return _public(job)


def list_jobs(
    *, session: Session, project_id: int | None = None, kind: str | None = None, limit: int = 100
) -> list[JobPublic]:
    query = select(Job).order_by(col(Job.id).desc()).limit(limit)
    if project_id is not None:
        query = query.where(Job.project_id == project_id)
    if kind is not None:
        query = query.where(Job.kind == kind)
    return [_public(job) for job in session.exec(query)]


def request_cancel(*, session: Session, actor: UserPublic, job_id: int) -> JobPublic:
    """Ask a job to stop: its creator or an administrator may. A queued job never starts."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"There is no job {job_id}.")
    if job.created_by_id != actor.id and not actor.has_role(Role.admin):
        raise NotAllowed("Only the person who started this job or an administrator can cancel it.")
    if JobStatus(job.status).finished:
        return _public(job)
    job.cancel_requested = True
    if job.status == JobStatus.queued:
        job.status, job.finished_at, job.message = JobStatus.cancelled, utcnow(), "Cancelled before it started."
    session.add(job)
    audit.record_event(session, actor=actor, action="job.cancel", entity_type="job", entity_id=job.id)
    session.commit()
    return _public(job)


def recover_orphaned_jobs(*, session: Session, stale_after: timedelta) -> int:
    """At start-up: mark failed every job whose worker is gone. Returns how many."""
    count = 0
    here = socket.gethostname()
    for job in session.exec(select(Job).where(col(Job.status).in_([JobStatus.queued, JobStatus.running]))):
        if job.status == JobStatus.queued:
            reason = "The server stopped before this job could start. Start it again."
        elif job.worker_host == here and job.worker_pid and not _pid_alive(job.worker_pid):
            reason = "The worker running this job stopped (the server restarted or the process crashed)."
        elif _is_stale(job, stale_after):
            reason = "The worker running this job stopped answering. Start the job again."
        else:
            continue
        _fail(session, job, reason)
        count += 1
    return count


# ── execution ───────────────────────────────────────────────────────────────────────────────────────


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(job: Job, stale_after: timedelta) -> bool:
    last = job.heartbeat_at or job.started_at or job.created_at
    if last.tzinfo is None:
        from datetime import UTC

        last = last.replace(tzinfo=UTC)
    return utcnow() - last > stale_after


def _fail(session: Session, job: Job, reason: str) -> None:
    job.status, job.error, job.finished_at = JobStatus.failed, reason, utcnow()
    session.add(job)
    audit.record_event(session, actor=None, action="job.failed", entity_type="job", entity_id=job.id,
                       details={"kind": job.kind, "error": reason})
    session.commit()


def _resolve(target: str) -> Callable[[JobContext], dict[str, Any] | None]:
    module_name, _, function_name = target.partition(":")
    return getattr(importlib.import_module(module_name), function_name)


@lru_cache
def _worker_engine(database_url: str) -> Engine:
    return create_store_engine(database_url)


def run_job(job_id: int, target: str, database_url: str) -> str:
    """Run one job to its end and record the outcome (this runs in the worker)."""
    engine = _worker_engine(database_url)
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        if job is None or job.status != JobStatus.queued:
            return job.status if job else "missing"
        if job.cancel_requested:
            job.status, job.finished_at = JobStatus.cancelled, utcnow()
            session.add(job)
            session.commit()
            return job.status
        creator = session.get(User, job.created_by_id) if job.created_by_id else None
        from core.auth import get_user

        actor = get_user(session=session, user_id=creator.id) if creator else None
        job.status, job.started_at, job.heartbeat_at = JobStatus.running, utcnow(), utcnow()
        job.worker_host, job.worker_pid = socket.gethostname(), os.getpid()
        params, kind = dict(job.params), job.kind
        session.add(job)
        session.commit()

    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(engine, job_id, stop), daemon=True)
    beat.start()
    outcome: dict[str, Any]
    try:
        result = _resolve(target)(JobContext(engine=engine, job_id=job_id, params=params, actor=actor))
        outcome = {"status": JobStatus.succeeded, "result": result or {}, "progress": 1.0}
    except JobCancelled:
        outcome = {"status": JobStatus.cancelled, "message": "Cancelled."}
    except DomainError as error:
        outcome = {"status": JobStatus.failed, "error": str(error)}
    except Exception as error:  # noqa: BLE001 - a job must always end with a recorded reason
        log.error("Job %s (%s) failed:\n%s", job_id, kind, traceback.format_exc())
        outcome = {"status": JobStatus.failed,
                   "error": f"The job stopped because of an unexpected problem ({type(error).__name__}: {error})."}
    finally:
        stop.set()
        beat.join(timeout=HEARTBEAT_SECONDS)
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        for field, value in outcome.items():
            setattr(job, field, value)
        job.finished_at = utcnow()
        session.add(job)
        audit.record_event(session, actor=actor, action=f"job.{outcome['status']}", entity_type="job",
                           entity_id=job_id, details={"kind": kind, "error": outcome.get("error")})
        session.commit()
    return str(outcome["status"])


def _heartbeat(engine: Engine, job_id: int, stop: threading.Event) -> None:
    # Long steps between progress reports still show the job is alive.
    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            with session_scope(engine) as session:
                job = session.get(Job, job_id)
                if job is None or job.status != JobStatus.running:
                    return
                job.heartbeat_at = utcnow()
                session.add(job)
                session.commit()
        except Exception:  # noqa: BLE001 - a missed heartbeat is retried on the next beat
            log.warning("Heartbeat for job %s failed", job_id, exc_info=True)


def _process_pool(workers: int) -> Executor:
    # "spawn": a fresh interpreter per worker, safe with the threads Streamlit and BLAS libraries run.
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


class JobRunner:
    """Starts recorded jobs on an executor and records a crashed worker as a failed job."""

    def __init__(self, *, database_url: str, workers: int = 1,
                 executor_factory: Callable[[], Executor] | None = None) -> None:
        self.database_url = database_url
        self._factory = executor_factory or (lambda: _process_pool(workers))
        self._executor: Executor | None = None
        self._lock = threading.Lock()

    def start(self, job_id: int) -> Future:
        with self._lock:
            if self._executor is None:
                self._executor = self._factory()
            engine = create_store_engine(self.database_url)
            try:
                with session_scope(engine) as session:
                    kind = session.get(Job, job_id).kind
            finally:
                engine.dispose()  # one engine per start: never left holding a pooled connection
            try:
                future = self._executor.submit(run_job, job_id, JOB_KINDS[kind], self.database_url)
            except BrokenProcessPool:
                self._executor = self._factory()
                future = self._executor.submit(run_job, job_id, JOB_KINDS[kind], self.database_url)
        future.add_done_callback(lambda done: self._after(job_id, done))
        return future

    def _after(self, job_id: int, future: Future) -> None:
        error = future.exception()
        if error is None:
            return
        if isinstance(error, BrokenProcessPool):
            with self._lock:
                self._executor = None  # a broken pool takes no more work: start a new one next time
            reason = "The worker process running this job crashed (it may have run out of memory)."
        else:
            reason = f"The job could not run ({type(error).__name__}: {error})."
        engine = create_store_engine(self.database_url)
        try:
            with session_scope(engine) as session:
                job = session.get(Job, job_id)
                if job is not None and not JobStatus(job.status).finished:
                    _fail(session, job, reason)
        finally:
            engine.dispose()

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=wait, cancel_futures=True)
                self._executor = None
