"""Administration: accounts and roles."""

import streamlit as st

from app import auth, resources
from core import auth as core_auth
from core.errors import DomainError
from core.models import Role

user = auth.require_user(Role.admin)
st.title("Users")
st.write("Add colleagues, give them roles, reset passwords. Accounts are deactivated, never deleted, "
         "so the audit trail keeps every name.")

ROLES = [role.value for role in Role]


def attempt(action, success: str) -> None:
    try:
        with resources.db_session() as session:
            action(session)
    except DomainError as error:
        st.error(str(error))
    else:
        st.success(success)


with resources.db_session() as session:
    users = core_auth.list_users(session=session)
st.dataframe(
    [{"User name": u.username, "Name": u.display_name, "Roles": ", ".join(u.roles),
      "State": "active" if u.is_active else "deactivated",
      "Locked until": u.locked_until.strftime("%H:%M") if u.locked_until else ""} for u in users],
    hide_index=True, width="stretch",
)

add_tab, manage_tab = st.tabs(["Add a user", "Change a user"])
with add_tab, st.form("admin_add", clear_on_submit=True):
    username = st.text_input("User name", key="admin_new_username")
    display_name = st.text_input("Full name", key="admin_new_display_name")
    email = st.text_input("E-mail (for notifications)", key="admin_new_email")
    roles = st.multiselect("Roles", ROLES, default=["builder"], key="admin_new_roles")
    password = st.text_input("First password (at least 12 characters)", type="password", key="admin_new_pw")
    if st.form_submit_button("Add user", type="primary"):
        attempt(lambda s: core_auth.create_user(session=s, actor=user, username=username, password=password,
                                                roles=roles, display_name=display_name, email=email),
                f"Added {username.strip()}. Tell them their first password in person.")

with manage_tab:
    chosen = st.selectbox("User", users, format_func=lambda u: u.username, key="admin_manage_user")
    if chosen is not None:
        with st.form("admin_roles"):
            new_roles = st.multiselect("Roles", ROLES, default=chosen.roles, key=f"admin_roles_{chosen.id}")
            if st.form_submit_button("Save roles"):
                attempt(lambda s: core_auth.set_roles(session=s, actor=user, user_id=chosen.id, roles=new_roles),
                        "Roles saved.")
        with st.form("admin_reset", clear_on_submit=True):
            new_password = st.text_input("New password", type="password", key="admin_reset_pw")
            if st.form_submit_button("Reset password"):
                attempt(lambda s: core_auth.reset_password(session=s, actor=user, user_id=chosen.id,
                                                           new_password=new_password),
                        "Password reset; the account is unlocked and its logins have ended.")
        label = "Deactivate account" if chosen.is_active else "Reactivate account"
        if st.button(label, key="admin_toggle_active"):
            attempt(lambda s: core_auth.set_active(session=s, actor=user, user_id=chosen.id,
                                                   active=not chosen.is_active), "Saved.")
            st.rerun()
