"""Administration: long-running jobs and their state."""

import streamlit as st

from app import auth, resources, widgets
from core import jobs
from core.errors import DomainError
from core.models import Role

user = auth.require_user(Role.admin)
st.title("Jobs")
st.write("Training, explanations, drift reports and pipelines run as jobs in a worker process, so they "
         "continue when you leave the page. Here you can follow them and check the artifact store.")

if st.button("Check every stored file", key="jobs_verify_artifacts",
             help="Re-hashes every file in the artifact store and lists any that were changed or damaged."):
    try:
        with resources.db_session() as session:
            jobs.submit_job(session=session, runner=resources.job_runner(), actor=user, kind="artifacts.verify",
                            title="Check of the artifact store")
    except DomainError as error:
        st.error(widgets.md(error))

with resources.db_session() as session:
    recent = jobs.list_jobs(session=session, limit=50)

running = [job for job in recent if not job.finished]
for job in running:
    widgets.follow_job(job.id, user, key="jobs")

if not recent:
    st.info("No jobs have run yet.")
else:
    st.dataframe(
        [{"Job": j.id, "What": j.title, "State": j.status, "Progress": f"{j.progress:.0%}",
          "Started": j.started_at.strftime("%Y-%m-%d %H:%M:%S") if j.started_at else "",
          "Outcome": j.error or (", ".join(f"{k}: {v}" for k, v in (j.result or {}).items()) if j.result else "")}
         for j in recent],
        hide_index=True, width="stretch",
    )
