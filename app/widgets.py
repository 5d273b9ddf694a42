"""Reusable UI pieces: safe text, job progress."""

import math
import re

import streamlit as st

from app import navigation, resources, state
from core import charts, jobs, notifications, projects
from core.errors import DomainError
from core.models import DatasetVersionPublic, JobPublic, ProjectPublic, UserPublic

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=])")


def md(text: object) -> str:
    """User text made safe to put inside Markdown: shown literally, never as links, images or markup."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def follow_job(job_id: int, user: UserPublic, *, key: str, announce_success: bool = True) -> JobPublic:
    """Show a job's progress, polling while it runs; returns its state when the page ran."""
    with resources.db_session() as session:
        job = jobs.get_job(session=session, job_id=job_id, stale_after=resources.stale_after())
    started_running = not job.finished

    @st.fragment(run_every=1.0 if started_running else None)
    def _panel() -> None:
        with resources.db_session() as session:
            current = jobs.get_job(session=session, job_id=job_id, stale_after=resources.stale_after())
        if current.status == "succeeded":
            if announce_success:  # pages that describe the result themselves say it once
                st.success(f"{md(current.title)}: done.")
        elif current.status == "failed":
            st.error(f"{md(current.title)} failed: {md(current.error)}")
        elif current.status == "cancelled":
            st.warning(f"{md(current.title)} was cancelled.")
        else:
            label = "Waiting for a free worker…" if current.status == "queued" else current.message or "Working…"
            st.progress(current.progress, text=f"{current.title}: {label}")
            if st.button("Cancel", key=f"{key}_cancel_{job_id}", disabled=current.cancel_requested):
                with resources.db_session() as session:
                    jobs.request_cancel(session=session, actor=user, job_id=job_id)
                st.rerun()  # show the cancel at once, not at the next poll
        if started_running and current.finished:
            st.rerun(scope="app")  # stop polling and let the page show the result

    _panel()
    return job


def require_project() -> ProjectPublic:
    """Page guard: the open project, or a pointer to the Projects page and stop."""
    project_id = state.get(state.PROJECT_ID)
    if project_id is None:
        st.info("Open a project first: data, models and reviews always belong to a project.")
        st.page_link(navigation.page_for("home.py"), label="Go to Projects", icon=":material/home:")
        st.stop()
    with resources.db_session() as session:
        project = projects.get_project(session=session, project_id=project_id)
    if project.status != "active":
        st.info(f"The project {md(project.name)} has been archived. Open another project.")
        st.page_link(navigation.page_for("home.py"), label="Go to Projects", icon=":material/home:")
        st.stop()
    return project


def require_datasets(project: ProjectPublic) -> list:
    """Page guard: the project's datasets, or a pointer to the Data page and stop."""
    from core import datasets

    with resources.db_session() as session:
        found = datasets.list_datasets(session=session, project_id=project.id)
    if not found:
        st.info("This project has no data yet.")
        st.page_link(navigation.page_for("data.py"), label="Upload data", icon=":material/upload_file:")
        st.stop()
    return found


def dataset_version_summary(version: DatasetVersionPublic) -> None:
    """A version's fingerprint, metadata and dataset-level warnings."""
    cols = st.columns(4)
    cols[0].metric("Rows", f"{version.rows:,}")
    cols[1].metric("Columns", version.columns)
    cols[2].metric("Duplicate rows", f"{version.profile.get('duplicate_rows', 0):,}")
    cols[3].metric("Sensitive columns", len(version.sensitive_columns))
    st.caption(f"SHA-256 {version.sha256} · from {md(version.source_filename)} · saved by "
               f"{md(version.created_by_name)} on {version.created_at:%Y-%m-%d %H:%M} UTC")
    meta = version.meta
    st.text(f"Source: {meta.get('source') or '—'}\nLegal basis: {meta.get('legal_basis') or '—'}\n"
            f"Owner: {meta.get('owner') or '—'}\nSensitive: {', '.join(version.sensitive_columns) or '—'}")
    for warning in version.profile.get("warnings", []):
        st.warning(md(warning["message"]), icon=":material/warning:")
    st.dataframe(
        [{"Column": name, "Type": p.get("type"), "Missing": f"{p.get('missing_share', 0):.1%}",
          "Distinct": p.get("distinct"), "Sensitive": "yes" if name in version.sensitive_columns else ""}
         for name, p in version.profile.get("columns_profile", {}).items()],
        hide_index=True)


def comparison_summary(comparison: dict) -> None:
    """What changed between two versions: rows, columns and each column's distribution shift."""
    rows, columns = comparison["rows"], comparison["columns"]
    st.write(f"Rows: {rows['old']:,} → {rows['new']:,}.")
    for label, names in (("Columns added", columns["added"]), ("Columns removed", columns["removed"])):
        if names:
            st.write(f"{label}: {md(', '.join(names))}")
    for change in columns["retyped"]:
        st.write(f"Column {md(change['column'])} changed type: {change['old_type']} → {change['new_type']}")
    keyed = comparison.get("keyed_rows")
    if keyed:
        st.write(f"Matched by {md(comparison['key'])}: {keyed['added']:,} rows added, {keyed['removed']:,} removed.")
    scored = [entry for entry in comparison["drift"] if entry.get("score") is not None]
    if scored:
        st.altair_chart(charts.drift_chart(scored), width="stretch")
    st.dataframe([{"Column": e["column"], "Method": e["method"], "Score": e.get("score"),
                   "Shifted": "yes" if e.get("drifted") else "no",
                   "Missing before": f"{e['missing_share_old']:.1%}", "Missing now": f"{e['missing_share_new']:.1%}"}
                  for e in comparison["drift"]], hide_index=True)


def contract_rows(content: dict) -> list[dict]:
    """A contract's column rules as the rows of the contract editor."""
    return [{"column": name, "type": rule["type"], "required": rule["required"],
             "allowed_categories": rule.get("allowed_categories") or [], "min": rule.get("min"),
             "max": rule.get("max"), "max_missing_share": rule["max_missing_share"]}
            for name, rule in content["columns"].items()]


def contract_from_rows(content: dict, rows: list[dict]) -> dict:
    """The contract as edited in the editor's rows, its reference data unchanged.

    An empty number cell comes back from the editor as NaN once its column holds any number (the minimum of a
    categorical column next to a numeric one), and an emptied category list as []: both mean "no rule", which
    a contract writes as None.
    """

    def number(value):
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

    columns = {}
    for row in rows:
        columns[row["column"]] = {"type": row["type"], "required": row["required"],
                                  "allowed_categories": list(row["allowed_categories"] or []) or None,
                                  "min": number(row["min"]), "max": number(row["max"]),
                                  "max_missing_share": number(row["max_missing_share"])}
    return {"columns": columns, "reference": content.get("reference", {})}


def contract_editor(content: dict, *, key: str, disabled: bool) -> dict:
    """Edit a contract's rules in a table; returns the contract as edited (its reference data unchanged)."""
    edited = st.data_editor(
        contract_rows(content),
        column_config={
            "column": st.column_config.TextColumn("Column", disabled=True),
            "type": st.column_config.TextColumn("Type", disabled=True),
            "required": st.column_config.CheckboxColumn("Required"),
            "allowed_categories": st.column_config.MultiselectColumn("Allowed categories", accept_new_options=True),
            "min": st.column_config.NumberColumn("Minimum"),
            "max": st.column_config.NumberColumn("Maximum"),
            "max_missing_share": st.column_config.NumberColumn("Max. missing share", min_value=0.0, max_value=1.0),
        },
        hide_index=True, disabled=disabled, key=key)
    return contract_from_rows(content, edited)


def validation_report(report: dict) -> None:
    """A file checked against a contract: the verdict, every problem, every warning."""
    name = md(report["filename"])
    if report["ok"]:
        st.success(f"{name} meets contract {report['contract_number']} ({report['rows']:,} rows).")
    else:
        count = len(report["failures"])
        st.error(f"{name} does not meet contract {report['contract_number']}: "
                 f"{count} problem{'' if count == 1 else 's'} to fix.")
    for item in report["failures"]:
        st.markdown(f"- :material/error: **Problem:** {md(item['message'])}")
    for item in report["warnings"]:
        st.markdown(f"- :material/warning: **Warning:** {md(item['message'])}")


def notification_inbox(user: UserPublic) -> None:
    """The sidebar inbox: unread messages (review requests, decisions), each opening the page it concerns.

    Opening a message marks it read, so the count shows only what still needs a look.
    """
    with resources.db_session() as session:
        unread = notifications.list_notifications(session=session, actor=user, unread_only=True)
    label = f"Notifications ({len(unread)})" if unread else "Notifications"
    with st.popover(label, icon=":material/notifications:", width="stretch"):
        if not unread:
            st.caption("Nothing new.")
        for note in unread:
            st.markdown(f"{md(note.message)}  \n:gray[{note.created_at:%Y-%m-%d %H:%M} UTC]")
            # Only a page this user may open (roles change; a page may be gone).
            spec = next((spec for spec in navigation.PAGES
                         if spec.url_path == note.page and user.has_role(*spec.roles)), None)
            if spec is not None and st.button("Open", key=f"notification_open_{note.id}",
                                              icon=spec.icon, type="tertiary"):
                with resources.db_session() as session:
                    notifications.mark_read(session=session, actor=user, notification_ids=[note.id])
                st.switch_page(spec.page())
        if unread and st.button("Mark all as read", key="notifications_read"):
            with resources.db_session() as session:
                notifications.mark_read(session=session, actor=user)
            st.rerun()


def sample_project_offer(user: UserPublic) -> None:
    """For administrators: load the sample project, showing the demo accounts' passwords once."""
    from core import demo

    accounts = state.get(state.DEMO_ACCOUNTS)
    if accounts:
        with st.container(border=True):
            st.markdown("**Demo accounts.** Note these passwords now: Steward keeps only their hashes and will not "
                        "show them again.")
            st.dataframe(accounts, hide_index=True)
            if st.button("I have noted the passwords", key="demo_passwords_noted"):
                state.pop(state.DEMO_ACCOUNTS)
                st.rerun()
    job_id = state.get(state.DEMO_JOB_ID)
    if job_id is not None:
        job = follow_job(job_id, user, key="demo_job", announce_success=False)
        if job.status == "succeeded":
            st.success("The sample project is ready: open it below.")
            state.pop(state.DEMO_JOB_ID)
        return
    with resources.db_session() as session:
        if demo.sample_project_exists(session=session):
            return
    with st.expander("New to Steward? Load the sample project", icon=":material/school:", expanded=True):
        st.write("It creates three demo accounts (a builder, a reviewer and a manager) and walks the whole journey "
                 "with them on sample labour force survey data: a trained and explained model, its card, a "
                 "completed review, the production version, two scored batches (one drifted, with its alert) and "
                 "a retrained candidate waiting for review. It takes about a minute.")
        if st.button("Load the sample project", key="demo_load", icon=":material/play_arrow:"):
            try:
                with resources.db_session() as session:
                    created = demo.create_accounts(session=session, actor=user)
                    started = demo.start_building(session=session, runner=resources.job_runner(), actor=user)
            except DomainError as error:
                st.error(md(error))
            else:
                state.put(state.DEMO_ACCOUNTS, [{"User name": a.username, "Role": a.role, "Password": a.password}
                                                for a in created])
                state.put(state.DEMO_JOB_ID, started)
                st.rerun()
