"""Peer review: the reviewer's verdict per checklist item and the decision on a model version."""

import streamlit as st

from app import auth, governance_views, report_views, resources, widgets
from core import checklist, review
from core.errors import DomainError
from core.models import Role

user = auth.require_user(Role.reviewer, Role.admin)
st.title("Peer review")
st.write("Read the builder's answers with the evidence frozen at submission, give a verdict on each item, then "
         "decide. You cannot review a model you trained, documented or assessed yourself.")

with resources.db_session() as session:
    queue = review.review_queue(session=session, actor=user)
if not queue:
    st.info("Nothing is waiting for review.")
    st.stop()
st.dataframe([{"Model": e.label, "Round": e.round, "Submitted by": e.submitted_by_name,
               "Submitted": f"{e.submitted_at:%Y-%m-%d %H:%M}", "You may review": "no" if e.refusal else "yes"}
              for e in queue], hide_index=True)
entry = st.selectbox("Review", queue, format_func=lambda e: f"{e.label} · round {e.round}", key="review_choice")
if entry.refusal:
    st.warning(widgets.md(entry.refusal), icon=":material/block:")

with resources.db_session() as session:
    rounds = review.round_views(session=session, version_id=entry.version_id)
    board = review.dashboard(session=session, settings=resources.settings(), version_id=entry.version_id)
current = rounds[-1]
governance_views.dashboard(board)
report_views.download_button(user, "review", subject_label=entry.label, key="review_review_pdf",
                             version_id=entry.version_id)
st.caption(f"Submitted by {widgets.md(current.submitted_by_name)} on {current.submitted_at:%Y-%m-%d %H:%M} UTC · "
           f"card revision {current.snapshot['card_revision']} ({current.snapshot['card_completeness']}% complete) · "
           f"template {widgets.md(current.snapshot['template_version'])}")
earlier = [r for r in rounds[:-1] if r.decision]
for old in earlier:
    with st.expander(f"Round {old.number}: {review.DECISIONS[old.decision]} by {old.decided_by_name}"):
        st.write(widgets.md(old.comment) or "No comment.")
        st.dataframe([{"Item": v.code, "Verdict": review.VERDICTS[v.verdict], "Comment": v.comment}
                      for v in old.verdicts.values()], hide_index=True, key=f"round_{old.number}")

template = checklist.load_template()
items = current.snapshot["items"]
tabs = st.tabs([f"{code} · {name}" for code, name in template.dimensions.items()])
for tab, dimension in zip(tabs, template.dimensions, strict=True):
    with tab:
        for code, entry_item in items.items():
            if entry_item["dimension"] != dimension:
                continue
            verdict = current.verdicts.get(code)
            found = checklist.Evidence.from_dict(entry_item["evidence"])
            label = f"{code} · {entry_item['question']}" + (f" · {review.VERDICTS[verdict.verdict]}" if verdict
                                                           else " · :orange[no verdict]")
            with st.expander(label):
                st.markdown(f"**Builder's answer:** {checklist.ANSWERS.get(entry_item['answer'], '—')}")
                st.markdown(widgets.md(entry_item["justification"]) or ":gray[_no justification_]")
                governance_views.evidence(found, key=f"rev_{code}")
                if entry.refusal:
                    governance_views.reviewer_note(verdict)
                else:
                    governance_views.verdict_form(entry.version_id, current.number, code, verdict, user)

if not entry.refusal:
    st.subheader("Decision")
    with st.form("decision_form"):
        decision = st.radio("Decision", list(review.DECISIONS), format_func=review.DECISIONS.get, horizontal=True)
        conditions = st.text_area("Conditions (for an approval with conditions)")
        comment = st.text_area("Comment to the builder")
        if st.form_submit_button("Record the decision", type="primary", icon=":material/gavel:"):
            try:
                with resources.db_session() as session:
                    review.decide(session=session, settings=resources.settings(), actor=user,
                                  version_id=entry.version_id, decision=decision, conditions=conditions,
                                  comment=comment)
            except DomainError as error:
                governance_views.show_error(error)
            else:
                st.toast(f"{review.DECISIONS[decision]}: recorded and the builder is notified.")
                st.rerun()
