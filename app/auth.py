"""Login glue between the browser and ``core.auth``.

After a successful login the browser is sent to ``/steward/session/claim`` (see ``app/server.py``), which
trades a one-time ticket for an HttpOnly cookie and comes back; every rerun then resolves the user from the
server-side login session, so a refresh keeps the login and a logout anywhere ends it everywhere.
"""

from urllib.parse import quote

import streamlit as st

from app import resources, state
from core import auth
from core.errors import NotAllowed
from core.models import UserPublic

COOKIE_NAME = "steward_login"
CLAIM_PATH = "/steward/session/claim"
END_PATH = "/steward/session/end"


def redirect_browser(url: str) -> None:
    """Send the browser to ``url`` (a full page load, so the new cookie reaches the app)."""
    # Streamlit's own st.login/st.logout navigate the browser with this message; no public API does.
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is not None:
        message = ForwardMsg()
        message.auth_redirect.url = url
        ctx.enqueue(message)


def current_user() -> UserPublic | None:
    """The logged-in user of this browser session, or None."""
    settings = resources.settings()
    with resources.db_session() as session:
        login_id = state.get(state.LOGIN_ID)
        if login_id is not None:
            user = auth.resolve_login(session=session, settings=settings, login_id=login_id)
            if user is not None:
                return user
            reason = auth.login_end_reason(session=session, login_id=login_id)
            state.clear_all()
            state.put(state.ENDED_LOGIN_REASON, reason)
            return None
        found = auth.resolve_token(session=session, settings=settings, token=st.context.cookies.get(COOKIE_NAME))
        if found is None:
            return None
        state.put(state.LOGIN_ID, found[0])
        state.put(state.PROJECT_ID, auth.remembered_project(session=session, login_id=found[0]))
    return found[1]


def open_project(project_id: int | None) -> None:
    """Make a project the open one, for this tab and for the rest of the login."""
    state.put(state.PROJECT_ID, project_id)
    login_id = state.get(state.LOGIN_ID)
    if login_id is not None:
        with resources.db_session() as session:
            auth.remember_project(session=session, login_id=login_id, project_id=project_id)


def log_in(user: UserPublic) -> None:
    """Start the login; the next run (``st.rerun()``) sends the browser to pick up its cookie."""
    with resources.db_session() as session:
        login_id, ticket = auth.start_login(session=session, user=user)
    state.clear_all()  # a fresh session state for the new user
    state.put(state.LOGIN_ID, login_id)
    # Not sent from this run: the pages follow log_in with st.rerun(), and a rerun drops the messages not
    # yet sent to the browser, so the redirect would often be lost and the login never get its cookie.
    state.put(state.PENDING_REDIRECT, f"{CLAIM_PATH}?ticket={quote(ticket)}")


def send_pending_redirect() -> None:
    """Send the browser where the previous run asked (after a login, to pick up its cookie)."""
    url = state.pop(state.PENDING_REDIRECT)
    if url:
        redirect_browser(url)


def log_out() -> None:
    login_id = state.get(state.LOGIN_ID)
    if login_id is not None:
        with resources.db_session() as session:
            auth.end_login(session=session, login_id=login_id, reason="logout")
    state.clear_all()
    redirect_browser(END_PATH)


def require_user(*roles: str) -> UserPublic:
    """Page guard: the logged-in user, holding one of ``roles`` if given; otherwise refuse and stop."""
    user = current_user()
    if user is None:
        st.warning("You are not logged in.")
        st.stop()
    if roles:
        try:
            auth.require_role(user, *roles)
        except NotAllowed as error:
            st.error(str(error))
            st.stop()
    return user
