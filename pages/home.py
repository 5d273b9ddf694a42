"""Home: the projects, and a form to start one."""

import streamlit as st

from app import auth, resources, state, widgets
from core import projects
from core.errors import DomainError
from core.models import Role

user = auth.require_user()
st.title("Projects")
st.write("A project holds one piece of work: its data, models, reviews and monitoring. Open one to work in it.")

if user.has_role(Role.admin):
    widgets.sample_project_offer(user)

show_archived = st.toggle("Show archived projects", key="home_show_archived")
with resources.db_session() as session:
    found = projects.list_projects(session=session, include_archived=show_archived)

if not found:
    st.info("There are no projects yet." + (" Start one below." if user.has_role(Role.builder, Role.admin) else ""))

open_id = state.get(state.PROJECT_ID)
for project in found:
    with st.container(border=True):
        left, right = st.columns([4, 1])
        opened = " (open)" if project.id == open_id else ""
        left.markdown(f"**{widgets.md(project.name)}**{opened}  \nOwner: {widgets.md(project.owner_name)}")
        if project.description:
            left.text(project.description)
        left.caption(widgets.md(project.status_line))
        if project.status == "active" and project.id != open_id and right.button("Open", key=f"home_open_{project.id}"):
            auth.open_project(project.id)
            st.rerun()
        if project.owner_id == user.id or user.has_role(Role.admin):
            archived = project.status == "archived"
            if right.button("Restore" if archived else "Archive", key=f"home_archive_{project.id}"):
                try:
                    with resources.db_session() as session:
                        projects.set_archived(session=session, actor=user, project_id=project.id,
                                              archived=not archived)
                except DomainError as error:
                    st.error(widgets.md(error))
                else:
                    if not archived and open_id == project.id:
                        auth.open_project(None)
                    st.rerun()

if user.has_role(Role.builder, Role.admin):
    st.subheader("Start a project")
    with st.form("home_create", clear_on_submit=True):
        name = st.text_input("Project name", key="home_name")
        description = st.text_area("What is it for?", key="home_description")
        if st.form_submit_button("Create project", type="primary"):
            try:
                with resources.db_session() as session:
                    created = projects.create_project(session=session, actor=user, name=name,
                                                      description=description)
            except DomainError as error:
                st.error(widgets.md(error))
            else:
                auth.open_project(created.id)
                st.rerun()
