"""The only module that knows session-state keys. Session state holds ids, never rows or frames."""

import streamlit as st

LOGIN_ID = "login_id"
PROJECT_ID = "project_id"
ENDED_LOGIN_REASON = "ended_login_reason"


def get(key: str, default=None):
    return st.session_state.get(key, default)


def put(key: str, value) -> None:
    st.session_state[key] = value


def clear_all() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]
