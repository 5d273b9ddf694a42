"""The jobs page: the list of jobs, following one, cancelling, and the artifact check it starts."""

import pytest
from sqlmodel import select

from core import jobs
from core.artifacts import ArtifactStore
from core.models import AuditEvent, Job, JobStatus
from tests.app.conftest import button, logged_in, page_title, plain, texts, wait_until_finished
from tests.factories import make_admin, make_user

CHECK = "Check every stored file"


def open_jobs(app_test, user):
    at = logged_in(app_test(), user)
    return at.switch_page("../pages/jobs.py").run()


def rows(at) -> list[dict]:
    return at.dataframe[0].value.to_dict("records")


def test_builder_cannot_reach_the_jobs_page(app_test, db):
    with db() as session:
        bea = make_user(session, "bea")
    at = logged_in(app_test(), bea).run()

    assert not at.exception
    with pytest.raises(ValueError):
        at.switch_page("../pages/jobs.py")


def test_no_jobs_yet(app_test, db):
    with db() as session:
        admin = make_admin(session)
    at = open_jobs(app_test, admin)

    assert not at.exception
    assert page_title(at) == "Jobs"
    assert texts(at.info) == ["No jobs have run yet."]
    assert not at.dataframe


def test_check_of_the_artifact_store_runs_and_reports_damaged_files(app_test, db, sqlite_settings,
                                                                    thread_runner):
    store = ArtifactStore(sqlite_settings.artifacts_path)
    store.put_bytes(b"a model, say")
    damaged = store.put_bytes(b"a dataset, say")
    store.path_for(damaged.sha256).write_bytes(b"changed on disk")
    with db() as session:
        admin = make_admin(session)
    at = open_jobs(app_test, admin)

    at = button(at, CHECK).click().run()

    assert not at.exception
    assert not at.error
    with db() as session:
        [job] = session.exec(select(Job)).all()
    assert job.kind == "artifacts.verify"
    wait_until_finished(db, job.id)

    at.run()

    assert not at.exception
    [row] = rows(at)
    assert (row["What"], row["State"], row["Progress"]) == ("Check of the artifact store", "succeeded", "100%")
    assert row["Outcome"] == f"checked: 2, damaged: ['{damaged.sha256}']"


def test_a_queued_job_is_followed_and_can_be_cancelled(app_test, db):
    with db() as session:
        admin = make_admin(session)
        job = jobs.create_job(session=session, actor=admin, kind="artifacts.verify",
                              title="Check of the artifact store")  # recorded, never started
    at = open_jobs(app_test, admin)

    assert not at.exception
    [progress] = at.get("progress")
    assert progress.proto.text == "Check of the artifact store: Waiting for a free worker…"
    assert [r["State"] for r in rows(at)] == ["queued"]

    at = at.button(key=f"jobs_cancel_{job.id}").click().run()

    assert not at.exception
    assert [r["State"] for r in rows(at)] == ["cancelled"]
    assert not at.get("progress")
    with db() as session:
        assert session.get(Job, job.id).status == "cancelled"
        assert session.exec(select(AuditEvent.action).where(AuditEvent.action == "job.cancel")).all()


def test_a_failed_job_shows_why(app_test, db):
    with db() as session:
        admin = make_admin(session)
        job = jobs.create_job(session=session, actor=admin, kind="artifacts.verify", title="Nightly check")
        stored = session.get(Job, job.id)
        stored.status, stored.error = JobStatus.failed, "The artifact folder could not be read."
        session.add(stored)
        session.commit()
    at = open_jobs(app_test, admin)

    assert not at.exception
    assert [(r["What"], r["State"], r["Outcome"]) for r in rows(at)] == [
        ("Nightly check", "failed", "The artifact folder could not be read.")
    ]


def test_a_job_kind_this_server_cannot_run_is_refused(app_test, db, monkeypatch, thread_runner):
    monkeypatch.delitem(jobs.JOB_KINDS, "artifacts.verify")
    with db() as session:
        admin = make_admin(session)
    at = open_jobs(app_test, admin)

    at = button(at, CHECK).click().run()

    assert not at.exception
    assert plain(at.error) == ["Steward has no job called 'artifacts.verify'."]
    with db() as session:
        assert session.exec(select(Job)).all() == []
