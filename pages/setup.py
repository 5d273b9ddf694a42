"""First run: create the administrator account."""

import streamlit as st

from app import auth, resources, widgets
from core import auth as core_auth
from core.errors import DomainError

st.title("Welcome to Steward")
st.write(
    "Steward has no accounts yet. Create the administrator first: this account manages users and "
    "settings. Use a password of at least 12 characters that is not the user name."
)

with st.form("setup_form"):
    username = st.text_input("Administrator user name", key="setup_username")
    display_name = st.text_input("Full name (optional)", key="setup_display_name")
    password = st.text_input("Password", type="password", key="setup_password")
    repeat = st.text_input("Repeat the password", type="password", key="setup_repeat")
    submitted = st.form_submit_button("Create the administrator", type="primary")

if submitted:
    if password != repeat:
        st.error("The two passwords differ. Type the same password twice.")
        st.stop()
    try:
        with resources.db_session() as session:
            admin = core_auth.create_first_admin(
                session=session, username=username, password=password, display_name=display_name
            )
    except DomainError as error:
        st.error(widgets.md(error))
        st.stop()
    auth.log_in(admin)
    st.success(f"Administrator created. Welcome, {widgets.md(admin.username)}.")
    st.rerun()
