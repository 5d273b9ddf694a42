"""Real-browser fixtures: Steward served by ``streamlit run app/server.py``, driven by Debian's Chromium.

Each server gets its own Steward home (a temp dir, so its own SQLite store and artifacts), listens on
127.0.0.1 on a free port, and is stopped when the test session ends. Never run ``playwright install``:
the browser is ``/usr/bin/chromium``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from core import auth as core_auth
from core.db import create_store_engine, session_scope

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "out" / "screenshots"
CHROMIUM = "/usr/bin/chromium"

# Streamlit marks its root element once the websocket is up and the script has finished a run.
IDLE = '[data-testid="stApp"][data-test-connection-state="CONNECTED"][data-test-script-state="notRunning"]'

# A login runs argon2 and two redirects; a shared 2-core machine needs more than Playwright's 5 s default.
expect.set_options(timeout=20_000)

ADMIN = ("ada", "Ada Admin", "correct horse battery admin")
BUILDER = ("bob", "Bob Builder", "correct horse battery builder")


@dataclass(frozen=True)
class Server:
    url: str
    home: Path
    database_url: str
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(proc: subprocess.Popen, url: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=1) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}; see {log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"streamlit not healthy after {timeout:.0f} s; see {log}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def start_server(tmp_path_factory) -> Iterator[Callable[[str], Server]]:
    """Start a Steward server with an empty store of its own; all are stopped at the end of the session."""
    running: list[tuple[subprocess.Popen, object]] = []

    def start(name: str) -> Server:
        home = tmp_path_factory.mktemp(f"steward-{name}")
        port = _free_port()
        env = {key: value for key, value in os.environ.items() if not key.startswith("STEWARD_")}
        env |= {"STEWARD_HOME": str(home), "STEWARD_APP_URL": f"http://127.0.0.1:{port}",
                "PYTHONUNBUFFERED": "1"}
        log = home / "streamlit.log"
        log_file = log.open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app/server.py",
             "--server.headless=true", "--server.address=127.0.0.1", f"--server.port={port}",
             "--browser.gatherUsageStats=false", "--server.fileWatcherType=none", "--server.runOnSave=false"],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
        running.append((proc, log_file))
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(proc, url, log)  # the lifespan has migrated the store by now
        return Server(url=url, home=home, database_url=f"sqlite:///{home / 'steward.db'}", log=log)

    yield start
    for proc, log_file in running:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()


@pytest.fixture(scope="session")
def fresh_server(start_server) -> Server:
    """A server on a new installation: no accounts yet, so it opens on the first-run setup page."""
    return start_server("fresh")


@pytest.fixture(scope="session")
def seeded_server(start_server) -> Server:
    """A server whose store already holds an administrator and a builder (made through core services)."""
    server = start_server("seeded")
    engine = create_store_engine(server.database_url)
    try:
        with session_scope(engine) as session:
            admin = core_auth.create_first_admin(session=session, username=ADMIN[0], display_name=ADMIN[1],
                                                 password=ADMIN[2])
            core_auth.create_user(session=session, actor=admin, username=BUILDER[0], display_name=BUILDER[1],
                                  password=BUILDER[2], roles=["builder"])
    finally:
        engine.dispose()
    return server


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright hook: Debian's Chromium, headless, nothing phoning home."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True,
            "args": ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update",
                     "--no-first-run", "--disable-sync", "--disable-extensions"]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1280, "height": 900}}


@pytest.fixture
def page(page: Page) -> Page:
    page.set_default_timeout(20_000)
    return page


def wait_idle(page: Page, timeout: float = 30_000) -> None:
    """Wait until the app is connected and its script has finished running."""
    page.wait_for_selector(IDLE, timeout=timeout)


def screenshot(page: Page, name: str) -> None:
    """Save a screenshot of the whole page as ``out/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Streamlit scrolls inside its main area, so full_page=True stops at the window: grow the window instead.
    size = page.viewport_size
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], height)})
    try:
        page.screenshot(path=SCREENSHOTS / f"{name}.png")
    finally:
        page.set_viewport_size(size)


def log_in_as_builder(page: Page, server: Server) -> None:
    """Open the app and log in as the seeded builder (the login ends in a full page load)."""
    page.goto(server.url + "/")
    wait_idle(page)
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name="Log in to Steward", exact=True)).to_be_visible()
    page.get_by_role("textbox", name="User name").fill(BUILDER[0])
    page.get_by_role("textbox", name="Password", exact=True).fill(BUILDER[2])
    with page.expect_event("load"):
        page.get_by_role("button", name="Log in").click()
    wait_idle(page)
    expect(page.get_by_test_id("stSidebar").get_by_text(BUILDER[1])).to_be_visible()


def start_project(page: Page, name: str, description: str = "") -> None:
    """On the Projects page, create a project; Steward opens it at once."""
    expect(page.get_by_test_id("stMain").get_by_role("heading", name="Projects", exact=True)).to_be_visible()
    page.get_by_role("textbox", name="Project name").fill(name)
    page.get_by_role("textbox", name="What is it for?").fill(description)
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_test_id("stSidebar").get_by_text(f"Project: {name}", exact=True)).to_be_visible()


def go_to(page: Page, title: str) -> None:
    """Open a page through the sidebar navigation and wait for its title."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_test_id("stMain").get_by_role("heading", name=title, exact=True)).to_be_visible()
    wait_idle(page)
