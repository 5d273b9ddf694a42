"""The web server: Streamlit's app plus the small routes the login cookie needs.

``streamlit run app/server.py`` finds ``app`` below and serves ``main.py`` with these extra routes.
On start-up the store is migrated and jobs whose worker died are marked failed.
"""

import logging
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from app import api
from core import auth, jobs, maintenance
from core.config import get_settings
from core.db import create_store_engine, migrate, session_scope

COOKIE_NAME = "steward_login"  # same as app.auth.COOKIE_NAME (app.auth imports Streamlit's script context)
log = logging.getLogger("steward.server")


def _engine():
    return create_store_engine(get_settings().resolved_database_url)


def _safe_next(value: str | None) -> str:
    # Only same-site paths: never an open redirect to another host.
    return value if value and value.startswith("/") and not value.startswith("//") else "/"


def _claim(ticket: str) -> str | None:
    engine = _engine()
    try:
        with session_scope(engine) as session:
            return auth.claim_ticket(session=session, ticket=ticket)
    finally:
        engine.dispose()


def _end(token: str) -> None:
    engine = _engine()
    try:
        with session_scope(engine) as session:
            found = auth.resolve_token(session=session, settings=get_settings(), token=token)
            if found is not None:
                auth.end_login(session=session, login_id=found[0], reason="logout")
    finally:
        engine.dispose()


async def claim_login(request: Request) -> RedirectResponse:
    """Trade the one-time ticket from the login form for the HttpOnly login cookie."""
    token = await run_in_threadpool(_claim, request.query_params.get("ticket", ""))
    response = RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    if token:
        response.set_cookie(COOKIE_NAME, token, httponly=True, samesite="lax", path="/",
                            secure=request.url.scheme == "https")
    return response


async def end_login(request: Request) -> RedirectResponse:
    """End the login of this browser and remove its cookie."""
    token = request.cookies.get(COOKIE_NAME)
    if token:
        await run_in_threadpool(_end, token)
    response = RedirectResponse("/?logged_out=1", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


def _start_up() -> None:
    settings = get_settings()
    settings.ensure_home()
    migrate(settings.resolved_database_url)
    engine = _engine()
    try:
        with session_scope(engine) as session:
            failed = jobs.recover_orphaned_jobs(session=session,
                                                stale_after=timedelta(seconds=settings.job_stale_seconds))
        if failed:
            log.warning("Marked %d job(s) failed whose worker had stopped.", failed)
        maintenance.remove_leftovers(settings)
    finally:
        engine.dispose()


@asynccontextmanager
async def lifespan(_app):
    await run_in_threadpool(_start_up)
    yield


app = st.App(
    Path(__file__).parent / "main.py",
    lifespan=lifespan,
    routes=[
        Route("/steward/session/claim", claim_login, methods=["GET"]),
        Route("/steward/session/end", end_login, methods=["GET"]),
        *api.ROUTES,  # the REST endpoint for predictions (app/api.py)
    ],
)
