"""Pieces of the Alerts and Retraining pages: alerts with their actions, rule editor, delivery log, pipeline
settings, starting a run and its history."""

from __future__ import annotations

import streamlit as st

from app import navigation, resources, state, widgets
from app.widgets import md
from core import alerts, pipelines, registry
from core.errors import DomainError
from core.models import ProjectPublic, Role, UserPublic

ACTORS = (Role.builder, Role.manager, Role.admin)
SEVERITY_ICONS = {"info": ":blue[:material/info:]", "warning": ":orange[:material/warning:]",
                  "critical": ":red[:material/error:]"}
STATUS_COLORS = {"open": "red", "acknowledged": "orange", "resolved": "green"}
RUN_ICONS = {"queued": ":material/schedule:", "running": ":material/autorenew:", "succeeded": ":material/check_circle:",
             "stopped": ":material/do_not_disturb_on:", "failed": ":material/cancel:", "cancelled": ":material/block:"}
STEP_ICONS = {"succeeded": ":green[:material/check_circle:]", "stopped": ":orange[:material/do_not_disturb_on:]",
              "failed": ":red[:material/cancel:]", "running": ":blue[:material/pending:]",
              "cancelled": ":gray[:material/block:]"}


def _when(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "—"


def notice() -> None:
    """The message of the action that just succeeded (user text in it is escaped where it was composed)."""
    if message := state.pop(state.NOTICE):
        st.success(message, icon=":material/check_circle:")


def attempt(action, success: str) -> None:
    """Run one core call; a refusal is shown, a success is announced after the rerun that shows it."""
    try:
        with resources.db_session() as session:
            action(session)
    except DomainError as error:
        st.error(md(error), icon=":material/error:")
    else:
        state.put(state.NOTICE, success)
        st.rerun()


def choose_model(project: ProjectPublic, *, key: str) -> registry.ModelSummary | None:
    """A registered model of the project (the one shown on the other pages first)."""
    with resources.db_session() as session:
        found = registry.list_models(session=session, project_id=project.id)
    if not found:
        return None
    ids = [model.id for model in found]
    by_id = {model.id: model for model in found}

    def label(model_id: int) -> str:
        model = by_id[model_id]
        live = f"v{model.production.number} in production" if model.production else "nothing in production"
        return f"{model.name} ({live})"

    chosen = st.selectbox("Model", ids, format_func=label, key=key)
    return by_id[chosen]


def no_model(user: UserPublic) -> None:
    st.info("No model is registered in this project yet. Alerts and retraining start once a model is in "
            "production.")
    spec = next((spec for spec in navigation.PAGES if spec.file == "registry.py"), None)
    if spec is not None and user.has_role(*spec.roles) and (navigation.PAGES_DIR / spec.file).exists():
        st.page_link(spec.page(), label="Go to the model registry", icon=":material/inventory_2:")
    st.stop()


# ── alerts ──────────────────────────────────────────────────────────────────────────────────────────


def alert_list(project: ProjectPublic, user: UserPublic, *, show_resolved: bool) -> None:
    """The project's alerts, newest first, each with what it says, who did what, and the actions."""
    statuses = None if show_resolved else ("open", "acknowledged")
    with resources.db_session() as session:
        found = alerts.list_alerts(session=session, project_id=project.id, statuses=statuses)
    if not found:
        st.info("No open alerts. Alerts appear here when a scored batch crosses a rule's threshold."
                if not show_resolved else "No alerts yet.")
        return
    for alert in found:
        with st.container(border=True):
            head, badge = st.columns([5, 1])
            head.markdown(f"{SEVERITY_ICONS[alert.severity]} **{md(alert.label)}** · "
                          f"{md(alert.rule_description)}")
            badge.badge(alerts.STATUSES[alert.status], color=STATUS_COLORS[alert.status])
            st.write(md(alert.message))
            facts = [f"Raised {_when(alert.created_at)}"]
            if alert.acknowledged_at:
                facts.append(f"acknowledged by {md(alert.acknowledged_by_name)} {_when(alert.acknowledged_at)}")
            if alert.resolved_at:
                facts.append(f"resolved by {md(alert.resolved_by_name)} {_when(alert.resolved_at)}")
            sent = [f"{alerts.CHANNELS[d.channel].lower()} to {md(d.target)}: {d.status}" for d in alert.deliveries]
            if sent:
                facts.append("; ".join(sent))
            st.caption(" · ".join(facts))
            if alert.note:
                st.text(alert.note)
            retraining = False
            if alert.pipeline_run_id:
                with resources.db_session() as session:
                    run = pipelines.get_run(session=session, pipeline_run_id=alert.pipeline_run_id)
                retraining = not run.finished
                st.page_link(navigation.page_for("pipelines.py"), icon=":material/autorenew:",
                             label=f"Retraining: pipeline run {run.id}, {pipelines.STATUSES[run.status].lower()}")
            if alert.status != "resolved" and user.has_role(*ACTORS):
                _alert_actions(alert, user, retraining=retraining)


def _alert_actions(alert: alerts.AlertPublic, user: UserPublic, *, retraining: bool) -> None:
    with st.form(f"alerts_act_{alert.id}", border=False):
        note = st.text_input("Note", key=f"alerts_note_{alert.id}", placeholder="What you found or did",
                             label_visibility="collapsed")
        with st.container(horizontal=True):
            acknowledge = st.form_submit_button("Acknowledge", disabled=alert.status != "open",
                                                icon=":material/visibility:")
            resolve = st.form_submit_button("Resolve", icon=":material/task_alt:")
            retrain = st.form_submit_button("Retrain now", icon=":material/autorenew:", disabled=retraining,
                                            help="Retraining for this alert is under way." if retraining else
                                            "Start the retraining pipeline for this model because of this alert "
                                            "(it needs a new version of the training data).")
    if acknowledge:
        attempt(lambda s: alerts.acknowledge(session=s, actor=user, alert_id=alert.id, note=note),
                f"Alert {alert.id} acknowledged.")
    if resolve:
        attempt(lambda s: alerts.resolve(session=s, actor=user, alert_id=alert.id, note=note),
                f"Alert {alert.id} resolved.")
    if retrain:
        attempt(lambda s: pipelines.retrain_from_alert(session=s, settings=resources.settings(),
                                                       runner=resources.job_runner(), actor=user, alert_id=alert.id),
                f"Retraining of {md(alert.model_name)} started because of alert {alert.id}; follow it on the "
                "Retraining page.")


def rules(model: registry.ModelSummary, user: UserPublic) -> None:
    """The model's rules as a table, and a form to add one or change one (for those who may)."""
    with resources.db_session() as session:
        found = alerts.list_rules(session=session, model_id=model.id)
        choices = alerts.rule_choices(session=session, model_id=model.id)
    if found:
        st.dataframe([{"Rule": r.id, "Watches": r.description, "Severity": alerts.SEVERITIES[r.severity],
                       "Channels": ", ".join(alerts.CHANNELS[c] for c in r.channels),
                       "Recipients": ", ".join(r.recipients) or ("the model's people" if "email" in r.channels
                                                                 else "—"),
                       "Webhook": r.webhook_url or "—", "Starts retraining": "yes" if r.triggers_retraining else "no",
                       "Active": "yes" if r.active else "no", "Made by": r.created_by_name}
                      for r in found], hide_index=True, width="stretch")
    else:
        st.info(f"{md(model.name)} has no alert rules yet. Default rules are added when it is first promoted.")
    if not user.has_role(*ACTORS):
        st.caption("Builders, managers and administrators change the rules.")
        return
    st.subheader("Add or change a rule", divider="gray")
    by_id = {r.id: r for r in found}
    chosen_id = st.selectbox("Rule to change", [None, *by_id], key=f"alerts_rule_{model.id}",
                             format_func=lambda i: "A new rule" if i is None else f"Rule {i}: {by_id[i].description}")
    rule = by_id.get(chosen_id)
    metric_names = list(alerts.METRICS)
    metric = st.selectbox("Watch", metric_names, format_func=alerts.METRICS.get,
                          index=metric_names.index(rule.metric) if rule else 0,
                          key=f"alerts_metric_{model.id}_{chosen_id}")
    with st.form(f"alerts_rule_form_{model.id}_{chosen_id}"):
        column = None
        if metric == "column_drift":
            options = choices["columns"] or ([rule.column] if rule and rule.column else [])
            column = st.selectbox("Input column", options, index=options.index(rule.column)
                                  if rule and rule.column in options else 0)
        elif metric == "performance":
            options = choices["metrics"]
            column = st.selectbox("Metric", options, index=options.index(rule.column)
                                  if rule and rule.column in options else 0,
                                  format_func=lambda m: registry.SHORT_METRICS.get(m, m))
        left, middle, right = st.columns(3)
        direction = left.radio("Alert when the value is", list(alerts.DIRECTIONS), horizontal=True,
                               index=list(alerts.DIRECTIONS).index(rule.direction) if rule else
                               (1 if metric in ("performance", "automation_rate", "volume") else 0))
        threshold = middle.number_input("Threshold", value=float(rule.threshold) if rule else (
            100.0 if metric == "volume" else 0.3), format="%.4g")
        severity = right.selectbox("Severity", list(alerts.SEVERITIES), format_func=alerts.SEVERITIES.get,
                                   index=list(alerts.SEVERITIES).index(rule.severity) if rule else 1)
        channels = st.multiselect("Channels", list(alerts.CHANNELS), format_func=alerts.CHANNELS.get,
                                  default=rule.channels if rule else ["app"])
        recipients = st.text_input("E-mail recipients (comma separated; empty: the model's builders and the "
                                   "managers)", value=", ".join(rule.recipients) if rule else "")
        webhook = st.text_input("Webhook address (for the webhook channel)",
                                value=(rule.webhook_url or "") if rule else "", placeholder="https://…")
        retrain = st.checkbox("Start the retraining pipeline when it fires",
                              value=rule.triggers_retraining if rule else False)
        active = st.checkbox("Active", value=rule.active if rule else True)
        submitted = st.form_submit_button("Save the rule", type="primary", icon=":material/save:")
    if submitted:
        attempt(lambda s: alerts.save_rule(
            session=s, actor=user, model_id=model.id, rule_id=chosen_id, metric=metric, column=column,
            direction=direction, threshold=threshold, severity=severity, channels=channels,
            recipients=[r for r in recipients.replace(";", ",").split(",") if r.strip()], webhook_url=webhook,
            triggers_retraining=retrain, active=active), "Rule saved.")


def delivery_log(project: ProjectPublic, user: UserPublic) -> None:
    """Every e-mail and webhook delivery of the project's alerts, with retries and errors."""
    with resources.db_session() as session:
        found = alerts.list_deliveries(session=session, project_id=project.id)
    if not found:
        st.info("Nothing was e-mailed or posted to a webhook yet.")
        return
    st.dataframe([{"Alert": d.alert_id, "Channel": alerts.CHANNELS[d.channel], "To": d.target, "State": d.status,
                   "Attempts": d.attempts, "Last error": d.last_error or "",
                   "Next attempt (UTC)": d.next_attempt_at.strftime("%Y-%m-%d %H:%M") if d.next_attempt_at else "",
                   "Sent (UTC)": d.sent_at.strftime("%Y-%m-%d %H:%M") if d.sent_at else ""} for d in found],
                 hide_index=True, width="stretch")
    st.caption("Failed attempts are retried after 1, 5 and 15 minutes, 1 and 4 hours (by the app and by "
               "`steward scheduler`); after that the delivery is marked failed and the administrators are told.")
    waiting = {d.id: d for d in found if d.status != "sent"}
    if waiting and user.has_role(Role.admin):
        chosen = st.selectbox("Delivery", list(waiting), key="alerts_retry_delivery",
                              format_func=lambda i: f"{waiting[i].channel} to {waiting[i].target} "
                                                    f"(alert {waiting[i].alert_id}, {waiting[i].status})")
        if st.button("Try again now", key="alerts_retry", icon=":material/send:"):
            attempt(lambda s: alerts.retry_delivery(session=s, settings=resources.settings(), actor=user,
                                                    delivery_id=chosen), "Tried again: see the delivery's state.")


# ── retraining ──────────────────────────────────────────────────────────────────────────────────────


def pipeline_settings(model: registry.ModelSummary, user: UserPublic) -> None:
    """Schedule, new-data trigger and automatic promotion of one model."""
    with resources.db_session() as session:
        config = pipelines.get_config(session=session, model_id=model.id)
        triggers = pipelines.retraining_triggers(session=session, model_id=model.id)
    st.markdown("**Automatic triggers:** " + (md("; ".join(triggers)) if triggers else "none: the pipeline runs "
                                                                                        "only when started by hand."))
    if config.next_run_at:
        st.caption(f"Next scheduled run: {_when(config.next_run_at)} (when `steward scheduler` runs).")
    if config.updated_by_name:
        st.caption(f"Settings last changed by {md(config.updated_by_name)} on {_when(config.updated_at)}.")
    may_edit = user.has_role(*ACTORS)
    with st.form(f"pipelines_config_{model.id}"):
        scheduled = st.checkbox("Retrain on a schedule", value=config.schedule_days is not None, disabled=not may_edit)
        days = st.number_input("Every how many days", min_value=1, max_value=pipelines.MAX_SCHEDULE_DAYS,
                               value=config.schedule_days or 30, step=1, disabled=not may_edit)
        new_data = st.checkbox("Retrain on each new version of the training data", value=config.on_new_data,
                               disabled=not may_edit)
        auto = st.checkbox("Promote retrained versions automatically when every automatic gate passes",
                           value=config.auto_promote, disabled=not user.has_role(Role.manager, Role.admin),
                           help="Off by default: a retrained version then waits for the peer review and a "
                                "manager's promotion. Only a manager or an administrator changes this.")
        if config.auto_promote:
            st.caption(f"Automatic promotion allowed by {md(config.auto_promote_by_name or 'a manager')}.")
        saved = st.form_submit_button("Save the settings", type="primary", disabled=not may_edit,
                                      icon=":material/save:")
    if saved:
        attempt(lambda s: pipelines.save_config(session=s, actor=user, model_id=model.id,
                                                schedule_days=int(days) if scheduled else None, on_new_data=new_data,
                                                auto_promote=auto), "Retraining settings saved.")


def start_panel(model: registry.ModelSummary, user: UserPublic) -> None:
    """Run the pipeline now on a version of the production model's dataset."""
    if model.production is None:
        st.warning(f"{md(model.name)} has no version in production. The pipeline retrains the production model "
                   "with its configuration, so promote a version first.")
        return
    if not user.has_role(*ACTORS):
        return
    st.subheader("Run the pipeline now", divider="gray")
    with resources.db_session() as session:
        busy = [r for r in pipelines.list_runs(session=session, model_id=model.id, limit=20) if not r.finished]
        trained_on, versions = pipelines.training_data_versions(session=session, model_id=model.id)
    if busy:
        st.caption("A run of this model is waiting or under way; start another when it has finished.")
        return
    labels = {v.id: f"{v.dataset_name} v{v.number} · {v.rows:,} rows · {v.created_at:%Y-%m-%d}"
              + (" · the production model's training data" if v.id == trained_on else "") for v in versions}
    with st.form(f"pipelines_start_{model.id}"):
        chosen = st.selectbox("Train on", list(labels), format_func=labels.get,
                              help="The newest version of the data the production version was trained on, unless "
                                   "you choose another.")
        start = st.form_submit_button("Run the pipeline now", type="primary", icon=":material/play_arrow:")
    if start:
        attempt(lambda s: pipelines.request_run(session=s, settings=resources.settings(), model_id=model.id,
                                                trigger="manual", dataset_version_id=chosen, actor=user,
                                                runner=resources.job_runner()),
                "The pipeline started; its steps show below as they finish.")


def active_run(model: registry.ModelSummary, user: UserPublic) -> None:
    """The run waiting or under way, followed live."""
    with resources.db_session() as session:
        found = [r for r in pipelines.list_runs(session=session, model_id=model.id, limit=20) if not r.finished]
    for run in found:
        if run.job_id is not None:
            widgets.follow_job(run.job_id, user, key="pipelines", announce_success=False)
            continue
        st.info(f"Pipeline run {run.id} ({md(run.trigger_label.lower())}) waits for `steward scheduler`, which "
                "starts requested runs on its next pass.", icon=":material/schedule:")
        if user.has_role(*ACTORS) and st.button("Start it now", key=f"pipelines_start_now_{run.id}",
                                                icon=":material/play_arrow:"):
            attempt(lambda s, run_id=run.id: pipelines.start(session=s, runner=resources.job_runner(), actor=user,
                                                             pipeline_run_id=run_id),
                    f"Pipeline run {run.id} started.")


def _outputs(step: dict) -> list[str]:
    """A step's outputs as short lines a person reads."""
    out = step.get("outputs") or {}
    lines = []
    for key, value in out.items():
        if key == "gates":
            lines += [f"{g['verdict']}: {g['title']} — {g['reason']}" for g in value]
        elif isinstance(value, dict):
            shown = ", ".join(f"{registry.SHORT_METRICS.get(k, k)} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in value.items())
            lines.append(f"{key.replace('_', ' ')}: {shown}")
        elif isinstance(value, list):
            if value:
                items = [v if isinstance(v, str) else ", ".join(f"{k} {x}" for k, x in v.items()) for v in value]
                lines.append(f"{key.replace('_', ' ')}: " + "; ".join(items))
        elif isinstance(value, bool):
            lines.append(f"{key.replace('_', ' ')}: {'yes' if value else 'no'}")
        elif isinstance(value, float):
            lines.append(f"{key.replace('_', ' ')}: {value:.4g}")
        elif value not in (None, ""):
            lines.append(f"{key.replace('_', ' ')}: {value}")
    return lines


def history(model: registry.ModelSummary) -> None:
    """Every pipeline run of the model, newest first, with each step's status, time and outputs."""
    st.subheader("History", divider="gray")
    with resources.db_session() as session:
        found = pipelines.list_runs(session=session, model_id=model.id)
    if not found:
        st.info("The pipeline has not run for this model yet.")
        return
    st.dataframe([{"Run": r.id, "Started": r.created_at.strftime("%Y-%m-%d %H:%M"), "Trigger": r.trigger_label,
                   "Data": r.dataset_label or "—", "State": pipelines.STATUSES.get(r.status, r.status),
                   "Candidate": r.candidate_label or "—", "Acting for": r.created_by_name,
                   "Took": f"{r.seconds:.0f} s" if r.seconds is not None else ""} for r in found],
                 hide_index=True, width="stretch")
    for run in found:
        title = f"Run {run.id} · {run.trigger_label} · {pipelines.STATUSES.get(run.status, run.status)}"
        with st.expander(title, icon=RUN_ICONS.get(run.status)):
            if run.outcome:
                st.write(md(run.outcome))
            for step in run.steps:
                seconds = f" · {step['seconds']:.1f} s" if step.get("seconds") is not None else ""
                st.markdown(f"{STEP_ICONS.get(step['status'], '•')} **{md(step['title'])}**{seconds}")
                if step.get("message"):
                    st.caption(md(step["message"]))
                lines = _outputs(step)
                if lines:
                    st.text("\n".join(lines))


# ── e-mail (the admin page) ─────────────────────────────────────────────────────────────────────────


def smtp_settings(user: UserPublic) -> None:
    """The SMTP server alerts are e-mailed through; the stored password is never shown, only whether one is set."""
    from core import mail

    with resources.db_session() as session:
        current = mail.get_smtp(session=session)
    st.write("Alerts whose rules use the e-mail channel are sent through this server. Failed sends are retried "
             "and listed in the delivery log on the Alerts page.")
    if current.updated_by:
        st.caption(f"Last changed by {md(current.updated_by)} on {_when(current.updated_at)}. "
                   + ("A password is stored (encrypted); it is never shown." if current.password_set else
                      "No password is stored."))
    with st.form("admin_smtp"):
        left, right = st.columns([3, 1])
        host = left.text_input("SMTP server", value=current.host, placeholder="smtp.example.org")
        port = right.number_input("Port", min_value=1, max_value=65535, value=current.port, step=1)
        sender = st.text_input("Sender address", value=current.sender, placeholder="steward@example.org")
        left, right = st.columns(2)
        username = left.text_input("User name (empty: no login)", value=current.username)
        password = right.text_input("Password", type="password", value="",
                                    placeholder="stored: leave empty to keep it" if current.password_set else "",
                                    help="Leave empty to keep the stored password.")
        security = st.radio("Encryption", ["STARTTLS", "SSL from the start", "None"], horizontal=True,
                            index=0 if current.starttls else 1 if current.use_ssl else 2)
        timeout = st.number_input("Timeout (seconds)", min_value=1.0, max_value=120.0, value=float(current.timeout))
        clear = st.checkbox("Remove the stored password", disabled=not current.password_set)
        saved = st.form_submit_button("Save the e-mail settings", type="primary", icon=":material/save:")
    if saved:
        attempt(lambda s: mail.save_smtp(session=s, settings=resources.settings(), actor=user, host=host,
                                         port=int(port), sender=sender, username=username, password=password or None,
                                         clear_password=clear, starttls=security == "STARTTLS",
                                         use_ssl=security == "SSL from the start", timeout=timeout),
                "E-mail settings saved.")
    with st.form("admin_smtp_test", clear_on_submit=False):
        to = st.text_input("Send a test e-mail to", value=user.email or "", placeholder="you@example.org")
        test = st.form_submit_button("Send a test e-mail", icon=":material/send:", disabled=not current.configured)
    if test:
        attempt(lambda s: mail.send_test_email(session=s, settings=resources.settings(), actor=user, to=to),
                f"Test e-mail handed to {md(current.host)} for {md(to)}.")
