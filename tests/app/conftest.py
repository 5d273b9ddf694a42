"""AppTest helpers: the real entry script on a fresh SQLite store, and a real login session."""

from __future__ import annotations

import pickle
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import streamlit as st
from argon2 import PasswordHasher
from sqlmodel import Session, select
from streamlit.errors import UnserializableSessionStateError
from streamlit.runtime import context as streamlit_context
from streamlit.runtime.state.common import TESTING_KEY
from streamlit.runtime.state.session_state import SessionState
from streamlit.testing.v1 import AppTest

from app import auth as app_auth
from app import resources, server, state
from core import auth, jobs
from core.config import get_settings
from core.db import create_store_engine, session_scope
from core.models import Job, JobStatus, ProjectPublic, UserPublic

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "app" / "main.py"
SAMPLE_DATA = ROOT / "sample_data"


def _check_serializable_except_testing_key(self) -> None:
    # The app turns on runner.enforceSerializableSessionState. AppTest itself keeps each widget's
    # format_func (lambdas in our pages) under TESTING_KEY, which no real session has; check every other key.
    for key in self:
        if key == TESTING_KEY:
            continue
        try:
            pickle.dumps(self[key])
        except Exception as error:
            raise UnserializableSessionStateError(f"Cannot serialize st.session_state[{key!r}]") from error


@pytest.fixture(autouse=True)
def _serializable_session_state(monkeypatch):
    monkeypatch.setattr(SessionState, "_check_serializable", _check_serializable_except_testing_key)


@pytest.fixture(autouse=True)
def _quick_password_hashing(monkeypatch):
    """Page tests check what pages do with passwords, not argon2's cost: hash with the cheapest settings."""
    quick = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    dummy = quick.hash("not anybody's password")
    monkeypatch.setattr(auth, "_hasher", lambda: quick)
    monkeypatch.setattr(auth, "_dummy_hash", lambda: dummy)


@pytest.fixture(autouse=True)
def browser_cookies(monkeypatch) -> dict[str, str]:
    """The cookies the simulated browser sends (none unless a test adds some).

    AppTest's runtime is a MagicMock, so without this ``st.context.cookies.get(...)`` returns a mock.
    """
    cookies: dict[str, str] = {}
    client = SimpleNamespace(cookies=cookies, headers=[], remote_ip="127.0.0.1")
    monkeypatch.setattr(streamlit_context, "_get_client_context", lambda: client)
    return cookies


@pytest.fixture(autouse=True)
def redirects(monkeypatch) -> list[str]:
    """Every address the app sent the browser to (login cookie claim, log-out), still sent for real."""
    sent: list[str] = []
    original = app_auth.redirect_browser

    def record(url: str) -> None:
        sent.append(url)
        original(url)

    monkeypatch.setattr(app_auth, "redirect_browser", record)
    return sent


@pytest.fixture
def follow_login(app_test, redirects, browser_cookies):
    """Do what the browser does after a login: trade the ticket for the cookie and load the app again."""

    def follow() -> AppTest:
        claims = [url for url in redirects if url.startswith(app_auth.CLAIM_PATH)]
        assert claims, "the app did not send the browser to pick up a login cookie"
        ticket = parse_qs(urlsplit(claims[-1]).query)["ticket"][0]
        token = server._claim(ticket)  # what the /steward/session/claim route runs
        assert token, "the login ticket was refused"
        browser_cookies[app_auth.COOKIE_NAME] = token
        return app_test().run()  # a full page load: a new Streamlit session

    return follow


@pytest.fixture(autouse=True)
def _fresh_streamlit_caches(sqlite_settings):
    """Every page test starts on its own store, with no engine or job runner cached for an older one."""
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()  # disposes engines and shuts job runners down (their on_release)
    st.cache_data.clear()


@pytest.fixture
def engine(sqlite_settings):
    engine = create_store_engine(sqlite_settings.resolved_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine):
    """``with db() as session:`` — a fresh session per use, so each read sees what the app committed."""

    @contextmanager
    def open_session() -> Iterator[Session]:
        with session_scope(engine) as session:
            yield session

    return open_session


@pytest.fixture
def app_test():
    """A factory for an AppTest of the real entry script (router, sidebar and all)."""

    def make() -> AppTest:
        return AppTest.from_file(str(MAIN), default_timeout=30)

    return make


@pytest.fixture
def thread_runner(monkeypatch, sqlite_settings):
    """The pages' job runner, on a thread instead of a spawned process: the same run_job, quicker."""
    runner = jobs.JobRunner(database_url=sqlite_settings.resolved_database_url,
                            executor_factory=lambda: ThreadPoolExecutor(max_workers=1))
    monkeypatch.setattr(resources, "job_runner", lambda: runner)
    yield runner
    runner.shutdown(wait=True)
    jobs._worker_engine(sqlite_settings.resolved_database_url).dispose()
    jobs._worker_engine.cache_clear()


def wait_until_finished(db, job_id: int, timeout: float = 20.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db() as session:
            job = session.get(Job, job_id)
            if JobStatus(job.status).finished:
                return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish within {timeout} s")


def finish_jobs(at: AppTest, db) -> AppTest:
    """Let every submitted job end, then run the page again, as its polling fragment would."""
    with db() as session:
        job_ids = session.exec(select(Job.id)).all()
    assert job_ids, "no job was submitted"
    for job_id in job_ids:
        wait_until_finished(db, job_id)
    return at.run()


def sample(name: str) -> bytes:
    """The bytes of a file in sample_data/."""
    return (SAMPLE_DATA / name).read_bytes()


def sample_head(directory: Path, name: str, rows: int) -> Path:
    """A copy of the header and the first ``rows`` lines of a file in sample_data/ (small data trains quickly)."""
    lines = (SAMPLE_DATA / name).read_text(encoding="utf-8").splitlines(keepends=True)
    path = directory / f"{Path(name).stem}_{rows}.csv"
    path.write_text("".join(lines[: rows + 1]), encoding="utf-8")
    return path


def logged_in(at: AppTest, user: UserPublic) -> AppTest:
    """Log ``user`` in through a real server-side login session, as the login page would."""
    engine = create_store_engine(get_settings().resolved_database_url)
    try:
        with session_scope(engine) as session:
            login_id, _ticket = auth.start_login(session=session, user=user)
    finally:
        engine.dispose()
    at.session_state[state.LOGIN_ID] = login_id
    return at


def open_page(at: AppTest, user: UserPublic, page: str, project: ProjectPublic | None = None) -> AppTest:
    """``user`` logged in, ``project`` open (if given), on ``page`` (a file in pages/, e.g. "data.py")."""
    logged_in(at, user)
    if project is not None:
        at.session_state[state.PROJECT_ID] = project.id
    return at.run().switch_page(f"../pages/{page}").run()


def edit_table(at: AppTest, key: str, changes: dict[str, dict], *, by: str = "column") -> AppTest:
    """Edit cells of the keyed ``st.data_editor``, as a person typing into the grid would.

    AppTest cannot type into a grid; it applies the edit state stored under the editor's key (the same
    ``edited_rows`` the browser sends) to the table the script receives on the next run. ``changes`` maps a
    row, found by its value in column ``by``, to ``{column: new value}``. The edits replace earlier ones.
    """
    rows = list(at.data_editor(key=key).value[by])
    at.session_state[key] = {"edited_rows": {rows.index(row): cells for row, cells in changes.items()},
                             "added_rows": [], "deleted_rows": []}
    return at


def texts(elements) -> list[str]:
    """The Markdown source of every element in an AppTest element list (messages, markdown, captions)."""
    return [element.value for element in elements]


def plain(elements) -> list[str]:
    """What a person reads: the Markdown source with its backslash escapes removed."""
    return [re.sub(r"\\(.)", r"\1", element.value) for element in elements]


def page_links(at: AppTest) -> list[tuple[str, str]]:
    """(label, URL path) of every page link in the main area."""
    return [(link.value, link.proto.page) for link in at.main.get("page_link")]


def button(at: AppTest, label: str):
    """The one button (form submit buttons included) showing ``label``."""
    found = [b for b in at.button if b.label == label]
    assert len(found) == 1, f"expected one {label!r} button, found {[b.label for b in at.button]}"
    return found[0]


def page_title(at: AppTest) -> str:
    return at.title[0].value if len(at.title) else ""
