"""Administration: the audit trail, with filters and a check of its hash chain."""

from datetime import UTC, datetime, time

import streamlit as st

from app import auth, resources
from core import audit
from core.models import Role

auth.require_user(Role.admin)
st.title("Audit trail")
st.write("Every change made in Steward, by whom and when. Each entry is chained to the one before it "
         "by a hash, so a changed or deleted entry shows up when the chain is verified.")

if st.button("Verify the chain", type="primary", key="audit_verify"):
    with resources.db_session() as session:
        report = audit.verify_chain(session=session)
    (st.success if report.ok else st.error)(report.summary)

with resources.db_session() as session:
    choices = audit.distinct_values(session=session)
cols = st.columns(4)
actor = cols[0].selectbox("Who", [None, *choices["actor_name"]], format_func=lambda v: v or "anyone",
                          key="audit_actor")
action = cols[1].selectbox("Action", [None, *choices["action"]], format_func=lambda v: v or "any action",
                           key="audit_action")
entity = cols[2].selectbox("On", [None, *choices["entity_type"]], format_func=lambda v: v or "anything",
                           key="audit_entity")
day = cols[3].date_input("Since", value=None, key="audit_since")

with resources.db_session() as session:
    events = audit.list_events(
        session=session, actor_name=actor, action=action, entity_type=entity,
        since=datetime.combine(day, time.min, tzinfo=UTC) if day else None,
    )
st.caption(f"{len(events)} most recent matching events")
st.dataframe(
    [{"#": e.seq, "When (UTC)": e.at.strftime("%Y-%m-%d %H:%M:%S"), "Who": e.actor_name, "Action": e.action,
      "On": f"{e.entity_type} {e.entity_id}".strip(), "Details": e.details, "Hash": e.hash[:12]}
     for e in events],
    hide_index=True, width="stretch",
)
