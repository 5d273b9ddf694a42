"""Jobs run in a worker process, report progress, can be cancelled, and a dead worker is noticed."""

import os
import time
from datetime import timedelta

import pytest

from core import artifacts, jobs
from core.models import Job, JobStatus
from tests.factories import make_admin

jobs.register_job_kind("test.count", "tests.core.job_functions:count_to")
jobs.register_job_kind("test.crash", "tests.core.job_functions:crash")
jobs.register_job_kind("test.explode", "tests.core.job_functions:explode")


@pytest.fixture
def runner(settings):
    runner = jobs.JobRunner(database_url=settings.resolved_database_url, workers=1)
    yield runner
    runner.shutdown()


def _wait(session, job_id, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = jobs.get_job(session=session, job_id=job_id)
        if job.finished:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_a_job_runs_in_a_worker_and_reports_its_result(session, runner):
    admin = make_admin(session)
    job = jobs.submit_job(session=session, runner=runner, actor=admin, kind="test.count", params={"steps": 4})
    done = _wait(session, job.id)
    assert (done.status, done.progress, done.result) == ("succeeded", 1.0, {"counted": 4})
    assert done.message == "step 4 of 4"
    assert session.get(Job, job.id, populate_existing=True).worker_pid != os.getpid()


def test_the_artifact_check_is_a_real_job(session, runner, settings):
    admin = make_admin(session)
    store = artifacts.ArtifactStore(settings.artifacts_path)
    good, bad = store.put_bytes(b"good"), store.put_bytes(b"bad")
    bad.path.write_bytes(b"tampered")
    job = jobs.submit_job(session=session, runner=runner, actor=admin, kind="artifacts.verify")
    done = _wait(session, job.id)
    assert done.result == {"checked": 2, "damaged": [bad.sha256]}
    assert good.sha256 not in done.result["damaged"]


def test_cancel_stops_a_running_job(session, runner):
    admin = make_admin(session)
    job = jobs.submit_job(session=session, runner=runner, actor=admin, kind="test.count",
                          params={"steps": 200, "pause": 0.05})
    while jobs.get_job(session=session, job_id=job.id).progress == 0:
        time.sleep(0.05)
    jobs.request_cancel(session=session, actor=admin, job_id=job.id)
    done = _wait(session, job.id)
    assert done.status == "cancelled" and done.progress < 1


def test_a_queued_job_cancelled_never_starts(session):
    admin = make_admin(session)
    job = jobs.create_job(session=session, actor=admin, kind="test.count")
    assert jobs.request_cancel(session=session, actor=admin, job_id=job.id).status == "cancelled"


def test_an_error_is_recorded_in_plain_words(session, runner):
    admin = make_admin(session)
    job = jobs.submit_job(session=session, runner=runner, actor=admin, kind="test.explode")
    done = _wait(session, job.id)
    assert done.status == "failed" and "unexpected problem (ZeroDivisionError" in done.error


def test_a_crashed_worker_fails_the_job_and_the_runner_recovers(session, runner):
    admin = make_admin(session)
    crashed = jobs.submit_job(session=session, runner=runner, actor=admin, kind="test.crash")
    done = _wait(session, crashed.id)
    assert done.status == "failed" and "crashed" in done.error
    after = jobs.submit_job(session=session, runner=runner, actor=admin, kind="test.count")
    assert _wait(session, after.id).status == "succeeded"


def test_jobs_orphaned_by_a_restart_are_marked_failed(session):
    admin = make_admin(session)
    queued = jobs.create_job(session=session, actor=admin, kind="test.count")
    running = jobs.create_job(session=session, actor=admin, kind="test.count")
    row = session.get(Job, running.id)
    row.status, row.worker_host, row.worker_pid = JobStatus.running, os.uname().nodename, 2**22 + 12345
    session.add(row)
    session.commit()
    assert jobs.recover_orphaned_jobs(session=session, stale_after=timedelta(minutes=5)) == 2
    assert "could start" in jobs.get_job(session=session, job_id=queued.id).error
    assert "stopped" in jobs.get_job(session=session, job_id=running.id).error


def test_a_silent_running_job_is_marked_failed_when_read(session):
    admin = make_admin(session)
    job = jobs.create_job(session=session, actor=admin, kind="test.count")
    row = session.get(Job, job.id)
    row.status = JobStatus.running
    session.add(row)
    session.commit()
    found = jobs.get_job(session=session, job_id=job.id, stale_after=timedelta(seconds=-1))
    assert found.status == "failed" and "stopped answering" in found.error
