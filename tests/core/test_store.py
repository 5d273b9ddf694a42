"""The store: migrations match the models, SQLite settings, and concurrent writers lose nothing."""

import threading

from sqlalchemy import text
from sqlmodel import select

from core import audit, projects
from core.db import create_store_engine, schema_differences, session_scope
from core.models import Project
from tests.factories import make_user


def test_migrations_and_models_agree(settings):
    assert schema_differences(settings.resolved_database_url) == []


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path):
    engine = create_store_engine(f"sqlite:///{tmp_path / 's.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
    engine.dispose()


def test_eight_threads_writing_through_services_lose_nothing(settings, engine):
    with session_scope(engine) as session:
        owner = make_user(session, "writer")
    errors: list[BaseException] = []

    def write(thread: int) -> None:
        try:
            for index in range(10):
                with session_scope(engine) as session:
                    projects.create_project(session=session, actor=owner, name=f"p-{thread}-{index}")
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with session_scope(engine) as session:
        assert len(session.exec(select(Project)).all()) == 80
        report = audit.verify_chain(session=session)
    assert report.ok, report.summary
    assert report.events_checked == 80 + 2  # + the admin and the writer accounts
