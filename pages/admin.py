"""Administration: accounts and roles."""

import streamlit as st

from app import auth, operations_views, resources, state, widgets
from core import auth as core_auth
from core import tokens
from core.errors import DomainError
from core.models import Role

user = auth.require_user(Role.admin)
st.title("Users")
st.write("Add colleagues, give them roles, reset passwords. Accounts are deactivated, never deleted, "
         "so the audit trail keeps every name.")

ROLES = [role.value for role in Role]


def attempt(action, success: str, reset: tuple[str, ...] = ()) -> None:
    try:
        with resources.db_session() as session:
            action(session)
    except DomainError as error:
        st.error(widgets.md(error))
    else:
        # Rerun so the table and the user list above show the change; the message survives the rerun.
        state.put(state.NOTICE, success)
        for key in reset:  # empty the form only once it worked; a refusal keeps what was typed
            st.session_state.pop(key, None)
        st.rerun()


if notice := state.pop(state.NOTICE):
    st.success(notice)


with resources.db_session() as session:
    users = core_auth.list_users(session=session)
st.dataframe(
    [{"User name": u.username, "Name": u.display_name, "Roles": ", ".join(u.roles),
      "State": "active" if u.is_active else "deactivated",
      "Locked until (UTC)": u.locked_until.strftime("%Y-%m-%d %H:%M") if u.locked_until else ""} for u in users],
    hide_index=True, width="stretch",
)

add_tab, manage_tab, tokens_tab, mail_tab = st.tabs(["Add a user", "Change a user", "API tokens", "E-mail"])
ADD_KEYS = ("admin_new_username", "admin_new_display_name", "admin_new_email", "admin_new_roles", "admin_new_pw")
with add_tab, st.form("admin_add"):
    username = st.text_input("User name", key="admin_new_username")
    display_name = st.text_input("Full name", key="admin_new_display_name")
    email = st.text_input("E-mail (for notifications)", key="admin_new_email")
    roles = st.multiselect("Roles", ROLES, default=["builder"], key="admin_new_roles")
    password = st.text_input("First password (at least 12 characters)", type="password", key="admin_new_pw")
    if st.form_submit_button("Add user", type="primary"):
        attempt(lambda s: core_auth.create_user(session=s, actor=user, username=username, password=password,
                                                roles=roles, display_name=display_name, email=email),
                f"Added {widgets.md(username.strip())}. Tell them their first password in person.", reset=ADD_KEYS)

with manage_tab:
    # Choose by id: a user's row changes when they are edited, and the choice must stay on them.
    by_id = {u.id: u for u in users}
    chosen = by_id.get(st.selectbox("User", list(by_id), format_func=lambda i: by_id[i].username,
                                    key="admin_manage_user"))
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
                                                   active=not chosen.is_active),
                    f"{widgets.md(chosen.username)} is now {'deactivated' if chosen.is_active else 'active'}.")

with tokens_tab:
    # Everyone's REST tokens (made on their Profile page): who has one, when it was last used, and a way to stop it.
    with resources.db_session() as session:
        every_token = tokens.list_tokens(session=session, actor=user, everyone=True)
    if not every_token:
        st.caption("Nobody has made an API token yet.")
    else:
        st.dataframe([{"User": t.username, "Name": t.name, "Starts with": f"{t.prefix}…",
                       "Made (UTC)": t.created_at.strftime("%Y-%m-%d %H:%M"),
                       "Last used (UTC)": t.last_used_at.strftime("%Y-%m-%d %H:%M") if t.last_used_at else "never",
                       "State": "active" if t.active else "revoked"} for t in every_token],
                     hide_index=True, width="stretch")
        live = {t.id: t for t in every_token if t.active}
        if live:
            revoke_id = st.selectbox("Token", list(live), key="admin_revoke_token",
                                     format_func=lambda i: f"{live[i].username}: {live[i].name} ({live[i].prefix}…)")
            if st.button("Revoke token", key="admin_revoke"):
                attempt(lambda s: tokens.revoke_token(session=s, actor=user, token_id=revoke_id),
                        f"Revoked {widgets.md(live[revoke_id].username)}'s token {widgets.md(live[revoke_id].name)}.")

with mail_tab:
    operations_views.smtp_settings(user)  # the SMTP server alerts are e-mailed through
