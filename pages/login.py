"""Log in."""

import streamlit as st

from app import auth, resources, state, widgets
from core import auth as core_auth
from core.errors import DomainError

st.title("Log in to Steward")

if st.query_params.get("logged_out"):
    st.success("You have logged out.")
ended = state.get(state.ENDED_LOGIN_REASON)
if ended == "idle timeout":
    st.info("Your login ended after a period without activity. Log in again to continue.")
elif ended:
    st.info(f"Your login has ended ({ended}). Log in again to continue.")

with st.form("login_form"):
    username = st.text_input("User name", key="login_username")
    password = st.text_input("Password", type="password", key="login_password")
    submitted = st.form_submit_button("Log in", type="primary")
st.caption("Forgot your password? An administrator can set a new one for you.")

if submitted:
    try:
        with resources.db_session() as session:
            user = core_auth.authenticate(
                session=session, settings=resources.settings(), username=username, password=password
            )
    except DomainError as error:
        st.error(widgets.md(error))
        st.stop()
    auth.log_in(user)
    st.rerun()

