"""Profile: who you are in Steward, and your personal API tokens for the REST endpoint."""

import streamlit as st

from app import auth, resources, state, widgets
from core import auth as core_auth
from core import notifications, tokens
from core.errors import DomainError, InvalidInput

user = auth.require_user()
st.title("Profile")
st.write(f"Logged in as **{widgets.md(user.username)}**" + (f" ({widgets.md(user.display_name)})"
                                                              if user.display_name else "")
         + f". Roles: {', '.join(user.roles)}.")

st.subheader("Notifications")
with resources.db_session() as session:
    received = notifications.list_notifications(session=session, actor=user, limit=100)
if received:
    st.dataframe([{"Received (UTC)": n.created_at.strftime("%Y-%m-%d %H:%M"), "Message": n.message,
                   "Read": "yes" if n.read_at else "no"} for n in received], hide_index=True, width="stretch")
    if any(n.read_at is None for n in received) and st.button("Mark all as read", key="profile_read_all"):
        with resources.db_session() as session:
            notifications.mark_read(session=session, actor=user)
        st.rerun()
else:
    st.caption("No notifications yet: review requests and decisions about your models appear here.")

st.subheader("Password")
with st.form("profile_password", clear_on_submit=True):
    current = st.text_input("Current password", type="password", key="profile_current_password")
    new = st.text_input("New password", type="password", key="profile_new_password",
                        help=f"At least {core_auth.MIN_PASSWORD_LENGTH} characters; not your user name.")
    repeated = st.text_input("New password again", type="password", key="profile_repeat_password")
    change = st.form_submit_button("Change password")
if change:
    try:
        if new != repeated:
            raise InvalidInput("The two new passwords differ. Type the same one twice.")
        with resources.db_session() as session:
            core_auth.change_own_password(session=session, actor=user, current_password=current, new_password=new)
    except DomainError as error:
        st.error(widgets.md(error))
    else:
        st.success("Password changed.")

st.subheader("API tokens")
st.write("A token lets a program score records with Steward's REST endpoint as you, with your roles (scoring needs "
         "the builder or admin role). Steward shows a token once, when it is made, and keeps only a fingerprint of "
         "it: copy it then. Revoke a token you no longer use or may have leaked.")

if notice := state.pop(state.NOTICE):
    st.success(notice)

with st.form("profile_new_token", clear_on_submit=True):
    name = st.text_input("What is the token for?", key="profile_token_name",
                         placeholder="e.g. nightly coding of new survey answers")
    make = st.form_submit_button("Make a token", type="primary")
if make:
    try:
        with resources.db_session() as session:
            made, secret = tokens.create_token(session=session, actor=user, name=name)
    except DomainError as error:
        st.error(widgets.md(error))
    else:
        # Shown in this run only: it is never stored, so it is gone after the next click.
        st.success(f"Token {widgets.md(made.name)} made. Copy it now; Steward will not show it again.")
        st.code(secret, language=None)

with resources.db_session() as session:
    mine = tokens.list_tokens(session=session, actor=user)
if mine:
    st.dataframe([{"Name": t.name, "Starts with": f"{t.prefix}…", "Made (UTC)": t.created_at.strftime("%Y-%m-%d %H:%M"),
                   "Last used (UTC)": t.last_used_at.strftime("%Y-%m-%d %H:%M") if t.last_used_at else "never",
                   "State": "active" if t.active else "revoked"} for t in mine], hide_index=True, width="stretch")
    active = {t.id: t for t in mine if t.active}
    if active:
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        chosen = left.selectbox("Token", list(active), key="profile_revoke_token",
                                format_func=lambda i: f"{active[i].name} ({active[i].prefix}…)")
        if right.button("Revoke", key="profile_revoke"):
            try:
                with resources.db_session() as session:
                    tokens.revoke_token(session=session, actor=user, token_id=chosen)
            except DomainError as error:
                st.error(widgets.md(error))
            else:
                state.put(state.NOTICE, f"Token {widgets.md(active[chosen].name)} revoked: it no longer works.")
                st.rerun()
else:
    st.caption("You have no API tokens.")

with st.expander("How to call the REST endpoint"):
    url = resources.settings().app_url.rstrip("/")
    st.code(f"curl -X POST '{url}/api/v1/models/MODEL/predict?project=PROJECT' \\\n"
            "     -H 'Authorization: Bearer YOUR_TOKEN' -H 'Content-Type: application/json' \\\n"
            "     -d '[{\"column\": \"value\", \"other column\": 42}]'", language="bash")
    st.write(f"The answer holds one prediction per record (with class probabilities, and for coding models whether "
             f"the code may be used automatically). The full description is at `{url}/api/v1/openapi.json`; "
             "one request may hold at most "
             f"{resources.settings().api_max_records:,} records.")
