"""Steward's entry script: page config, the login gate, navigation by role, and the sidebar."""

import streamlit as st

from app import auth, navigation, resources, state, widgets
from core import auth as core_auth
from core import projects

st.set_page_config(page_title="Steward", page_icon=":material/verified:", layout="wide")
auth.send_pending_redirect()

with resources.db_session() as session:
    needs_setup = not core_auth.has_any_user(session=session)

user = None if needs_setup else auth.current_user()

if needs_setup:
    page = st.navigation([navigation.SETUP.page(default=True)], position="hidden")
elif user is None:
    page = st.navigation([navigation.LOGIN.page(default=True)], position="hidden")
else:
    state.take_link_params()
    # Every page the user may open stays listed: a collapsed "View more" hides the later steps of the journey.
    page = st.navigation(navigation.pages_for(user), expanded=True)
    with st.sidebar:
        st.markdown(f"**{widgets.md(user.label)}**")
        st.caption("Roles: " + ", ".join(user.roles))
        project_id = state.get(state.PROJECT_ID)
        if project_id is not None:
            with resources.db_session() as session:
                st.caption(f"Project: {widgets.md(projects.get_project(session=session, project_id=project_id).name)}")
        else:
            st.caption("No project open")
        widgets.notification_inbox(user)
        if st.button("Log out", key="sidebar_logout", icon=":material/logout:"):
            auth.log_out()
            st.stop()

page.run()
