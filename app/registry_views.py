"""Pieces of the Registry page: versions, gates, promotion and rollback, history, lineage, comparison, maturity."""

import pandas as pd
import streamlit as st

from app import navigation, resources, state
from app.widgets import md
from core import registry
from core.errors import DomainError
from core.models import ModelVersionPublic, ProjectPublic, Role, UserPublic
from core.training import runs

NEW_MODEL = "A new model…"
FIX_LINKS = {"review": ("checklist.py", "Self-assessment and review", "version"),
             "model_card": ("model_card.py", "Write the model card", "run"),
             "reproducibility": ("run.py", "Reproduce the run (Model results, Reproducibility tab)", "run")}
VERDICT_ICONS = {"passed": ":green[:material/check_circle:]", "failed": ":red[:material/cancel:]",
                 "overridden": ":orange[:material/gpp_maybe:]"}
STATUS_ICONS = {"production": ":material/rocket_launch:", "approved": ":material/verified:",
                "in_review": ":material/rate_review:", "changes_requested": ":material/edit_note:",
                "rejected": ":material/block:", "retired": ":material/inventory_2:", "candidate": ":material/draft:"}


@st.cache_data(max_entries=64, show_spinner="Scoring the models on the same test rows…")
def _cross_score(database_url: str, model_run_id: int, test_run_id: int) -> dict:
    """A run's model scored on another run's test set: both are content-addressed, so the answer never changes."""
    with resources.db_session() as session:
        model_run = runs.get_run(session=session, run_id=model_run_id)
        test_run = runs.get_run(session=session, run_id=test_run_id)
        return registry.cross_score(settings=resources.settings(), model_run=model_run, test_run=test_run,
                                    session=session)


def scorer(model_run, test_run) -> dict:
    return _cross_score(resources.settings().resolved_database_url, model_run.id, test_run.id)


def _done(message: str, version_id: int | None = None) -> None:
    """Say what happened after the rerun that shows it, and keep the version in view."""
    state.put(state.NOTICE, message)
    if version_id is not None:
        state.put(state.VERSION_ID, version_id)
        state.put(state.REGISTRY_FOLLOW, True)
    st.rerun()


def notice() -> None:
    if message := state.pop(state.NOTICE):
        st.success(md(message), icon=":material/check_circle:")


def _link(file: str, label: str, user: UserPublic, *, query: dict[str, str] | None = None,
          icon: str = ":material/open_in_new:") -> None:
    """A link to another page, only when it exists and the user may open it (a hidden page cannot be linked)."""
    spec = next((spec for spec in navigation.PAGES if spec.file == file), None)
    if spec is None or not user.has_role(*spec.roles) or not (navigation.PAGES_DIR / file).exists():
        return
    st.page_link(spec.page(), label=label, icon=icon, query_params=query or None)


# ── registering ─────────────────────────────────────────────────────────────────────────────────────


def register_panel(project: ProjectPublic, user: UserPublic, *, expanded: bool) -> None:
    """Builders and administrators register a finished run as the next version of a named model."""
    if not user.has_role(Role.builder, Role.admin):
        return
    with st.expander("Register a trained run", icon=":material/add_box:", expanded=expanded):
        with resources.db_session() as session:
            found = registry.registrable_runs(session=session, project_id=project.id)
            names = registry.model_names(session=session, project_id=project.id)
        if not found:
            st.caption("Every finished run of this project is registered already.")
            _link("train.py", "Train a model", user, icon=":material/model_training:")
            return
        labels = {run.id: run.label for run in found}
        run_id = st.selectbox("Trained run", list(labels), format_func=labels.get, key="registry_run")
        left, right = st.columns(2)
        choice = left.selectbox("As a version of", [*names, NEW_MODEL], key="registry_model_name",
                                help="Versions of one model should predict the same thing for the same use.")
        target = next(run.target for run in found if run.id == run_id)
        name = right.text_input("Name of the new model", value=target, key="registry_new_name",
                                disabled=choice != NEW_MODEL)
        if st.button("Register", key="registry_register", type="primary", icon=":material/add_box:"):
            try:
                with resources.db_session() as session:
                    version = registry.register_run(session=session, actor=user, run_id=run_id,
                                                    model_name=name if choice == NEW_MODEL else choice)
            except DomainError as error:
                st.error(md(error))
            else:
                _done(f"Registered run {run_id} as {version.label} (candidate). Next: its model card, "
                      "self-assessment and peer review.", version.id)


# ── models and versions ─────────────────────────────────────────────────────────────────────────────


def choose_model(project: ProjectPublic) -> registry.ModelSummary | None:
    """The model to show: the one of the version in view (from a link or another page), else the first."""
    with resources.db_session() as session:
        found = registry.list_models(session=session, project_id=project.id)
    if not found:
        return None
    wanted = state.get(state.VERSION_ID)
    index = next((i for i, m in enumerate(found) if any(v.id == wanted for v in m.versions)), 0)
    if state.pop(state.REGISTRY_FOLLOW, False) and any(v.id == wanted for v in found[index].versions):
        # Move the pickers to the version just acted on. Only a value set before a widget is drawn reaches the
        # browser: a picker whose state is merely dropped keeps showing its old choice there.
        state.put("registry_model", found[index].id)
        state.put("registry_version", wanted)

    # Labels never change with the status: a picker keyed by its key keeps the text it first showed.
    labels = {m.id: m.name for m in found}
    if state.get("registry_model") not in labels:  # first drawn on this visit: start from the version in view
        state.put("registry_model", found[index].id)
    chosen = st.selectbox("Model", list(labels), format_func=labels.get, key="registry_model")
    return next(m for m in found if m.id == chosen)


def _versions_table(model: registry.ModelSummary) -> None:
    with resources.db_session() as session:
        found = {v.id: runs.get_run(session=session, run_id=v.run_id) for v in model.versions}
    rows = []
    for version in model.versions:
        run = found[version.id]
        metric = ((run.evaluation or {}).get("metrics", {}).get(run.primary_metric) or {}).get("value")
        result = None if metric is None else f"{registry.metric_name(run.primary_metric)} {metric:.3f}"
        rows.append({"Version": f"v{version.number}", "Status": registry.status_label(version),
                     "Run": run.id, "Data": f"{run.dataset_name} v{run.dataset_number}", "Test result": result,
                     "Registered by": version.created_by_name, "Registered": f"{version.created_at:%Y-%m-%d %H:%M}",
                     "Status since": f"{version.status_changed_at:%Y-%m-%d %H:%M}"})
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="registry_versions")


def model_overview(model: registry.ModelSummary, user: UserPublic) -> ModelVersionPublic:
    """What is in production, the fallback and roll back, every version; returns the version chosen."""
    if model.production is not None:
        line = f":material/rocket_launch: **v{model.production.number}** is in production"
        line += f"; **v{model.fallback.number}** is kept as the fallback." if model.fallback else \
            "; there is no earlier production version to fall back to."
    else:
        line = "Nothing is in production yet: promote an approved version below."
    st.markdown(line)
    if model.production is not None and model.fallback is not None and user.has_role(Role.manager, Role.admin):
        _rollback(model, user)
    _versions_table(model)
    labels = {v.id: f"v{v.number} (run {v.run_id})" for v in model.versions}
    ids = list(labels)
    if state.get("registry_version") not in ids:  # first drawn on this visit, or another model chosen
        current = state.get(state.VERSION_ID)
        state.put("registry_version", current if current in ids else ids[0])
    chosen = st.selectbox("Version", ids, format_func=labels.get, key="registry_version")
    state.put(state.VERSION_ID, chosen)
    return model.versions[ids.index(chosen)]


def _rollback(model: registry.ModelSummary, user: UserPublic) -> None:
    with st.popover(f"Roll back to v{model.fallback.number}", icon=":material/undo:"):
        st.write(f"v{model.production.number} leaves production and v{model.fallback.number} scores again, at once. "
                 f"No gates are checked: v{model.fallback.number} went through them when it was "
                 "promoted.")
        with st.form("registry_rollback_form", border=False):
            reason = st.text_area("Why (kept with the status change)", key="registry_rollback_reason")
            if st.form_submit_button(f"Roll back to v{model.fallback.number}", type="primary"):
                try:
                    with resources.db_session() as session:
                        restored = registry.rollback(session=session, actor=user, model_id=model.id, reason=reason)
                except DomainError as error:
                    st.error(md(error))
                else:
                    _done(f"Rolled back: {restored.label} is in production again.", restored.id)


# ── gates, promotion and overrides ──────────────────────────────────────────────────────────────────


def gates_panel(version: ModelVersionPublic, user: UserPublic) -> None:
    """Each gate with its result and reason, then what this user may do about them."""
    with resources.db_session() as session:
        report = registry.evaluate_gates(session=session, settings=resources.settings(), version_id=version.id,
                                         scorer=scorer)
    failing = report.failed
    if version.status == "production":
        st.info(f"{version.label} is in production. The gates below are as they stand today.",
                icon=":material/rocket_launch:")
    elif failing:
        st.error(f"{len(failing)} of {len(report.gates)} gates fail, so {version.label} cannot be promoted yet.",
                 icon=":material/block:")
    else:
        overridden = sum(1 for gate in report.gates if gate.override is not None and not gate.passed)
        st.success(f"Every gate of {version.label} passes" + (f" ({overridden} overridden)" if overridden else "")
                   + ".", icon=":material/check_circle:")
    for gate in report.gates:
        st.markdown(f"{VERDICT_ICONS[gate.verdict]} **{gate.title}** — {md(gate.reason)}")
        if not gate.ok and gate.gate in FIX_LINKS:
            file, label, param = FIX_LINKS[gate.gate]
            _link(file, label, user, query={param: str(version.id if param == "version" else version.run_id)},
                  icon=":material/arrow_forward:")
        if gate.conditions:
            st.warning(f"Conditions of the approval: {md(gate.conditions)}", icon=":material/assignment_late:")
        if gate.override is not None and not gate.passed:
            st.caption(f":material/gpp_maybe: Overridden by {md(gate.override.actor_name)} on "
                       f"{gate.override.created_at:%Y-%m-%d %H:%M} UTC: “{md(gate.override.reason)}”")
    _promote(version, report, user)
    _override(version, report, user)


def _promote(version: ModelVersionPublic, report: registry.GateReport, user: UserPublic) -> None:
    if not user.has_role(Role.manager, Role.admin) or version.status == "production":
        return
    st.subheader("Promote to production")
    with resources.db_session() as session:
        refusal = registry.promotion_refusal(session=session, actor=user, version_id=version.id)
    if refusal:
        st.info(md(refusal), icon=":material/front_hand:")
        return
    replaces = f" {report.production.label} will be retired and kept as the fallback." if report.production else ""
    st.caption(f"Scoring will use {version.label} from then on.{replaces}")
    with st.form("registry_promote_form"):
        reason = st.text_area("Why now (optional, kept with the status change)", key="registry_promote_reason")
        clicked = st.form_submit_button(f"Promote {version.label} to production", type="primary",
                                        icon=":material/rocket_launch:", disabled=not report.ok)
    if not report.ok:
        st.caption("The button works once every gate passes or an administrator has overridden the failed ones.")
    if clicked:
        try:
            with resources.db_session() as session:
                promoted = registry.promote_version(session=session, settings=resources.settings(), actor=user,
                                                    version_id=version.id, reason=reason, scorer=scorer)
        except DomainError as error:
            st.error(md(error))
        else:
            kept = f" {report.production.label} is kept as the fallback." if report.production else ""
            _done(f"{promoted.label} is in production.{kept}", promoted.id)


def _override(version: ModelVersionPublic, report: registry.GateReport, user: UserPublic) -> None:
    open_gates = [gate for gate in report.gates if not gate.ok]
    if not open_gates or not user.has_role(Role.admin):
        return
    with resources.db_session() as session:
        refusal = registry.override_refusal(session=session, actor=user, version_id=version.id)
    with st.expander("Override a failed gate (administrators)", icon=":material/gpp_maybe:"):
        if refusal:
            st.info(md(refusal))
            return
        st.caption("An override lets this version past one failed gate. Your reason is stored with your name, "
                   "shown wherever the gates are shown and written to the audit trail and the reports.")
        with st.form("registry_override_form", border=False):
            gate = st.selectbox("Gate", [g.gate for g in open_gates], format_func=registry.GATES.get,
                                key="registry_override_gate")
            reason = st.text_area("Why it may be passed over (at least 10 characters)",
                                  key="registry_override_reason")
            if st.form_submit_button("Override this gate"):
                try:
                    with resources.db_session() as session:
                        registry.override_gate(session=session, settings=resources.settings(), actor=user,
                                               version_id=version.id, gate=gate, reason=reason, scorer=scorer)
                except DomainError as error:
                    st.error(md(error))
                else:
                    _done(f"The gate “{registry.GATES[gate]}” of {version.label} is overridden.", version.id)


# ── history and lineage ─────────────────────────────────────────────────────────────────────────────


def history(version: ModelVersionPublic) -> None:
    """Every status change (who, when, why) and every override of the version."""
    with resources.db_session() as session:
        changes = registry.transitions(session=session, version_id=version.id)
        overrides = registry.list_overrides(session=session, version_id=version.id)
    st.dataframe(pd.DataFrame([{"When (UTC)": f"{t.created_at:%Y-%m-%d %H:%M}",
                                "From": (t.from_status or "").replace("_", " ") or "—",
                                "To": t.to_status.replace("_", " "), "By": t.actor_name, "Why": t.reason}
                               for t in changes]), hide_index=True, key="registry_history")
    if overrides:
        st.markdown("**Gate overrides**")
        st.dataframe(pd.DataFrame([{"When (UTC)": f"{o.created_at:%Y-%m-%d %H:%M}",
                                    "Gate": registry.GATES.get(o.gate, o.gate), "By": o.actor_name,
                                    "Reason": o.reason,
                                    "Counts now": "yes" if o.current else "no: the version left production since"}
                                   for o in overrides]), hide_index=True,
                     key="registry_overrides")


SHORT_PRINCIPLES = {"versioned": "Versioned", "pipeline": "Pipeline", "reproducible": "Reproducible",
                    "monitoring": "Monitored", "deployment": "Deployed via registry", "governance": "Reviewed"}
LINEAGE_LINKS = {"data": ("datasets.py", "Versions and profiles"), "run": ("run.py", "Model results"),
                 "model": ("explain.py", "Explanations"), "card": ("model_card.py", "Model card"),
                 "review": ("checklist.py", "Checklist and review"), "scoring": ("predict.py", "Predict")}
LINEAGE_ICONS = {"data": ":material/dataset:", "run": ":material/model_training:", "model": ":material/deployed_code:",
                 "card": ":material/description:", "review": ":material/rate_review:",
                 "scoring": ":material/batch_prediction:"}


def lineage(version: ModelVersionPublic, user: UserPublic) -> None:
    """The chain from the data to the scoring batches, each link with the page that shows it."""
    with resources.db_session() as session:
        steps = registry.lineage(session=session, version_id=version.id)
    for index, step in enumerate(steps):
        if index:
            st.markdown(":gray[:material/arrow_downward:]")
        with st.container(border=True):
            title = f"{LINEAGE_ICONS[step.kind]} **{md(step.title)}**"
            st.markdown(title if step.present else f"{title} :gray[(not yet)]")
            st.text("\n".join(step.facts))
            file, label = LINEAGE_LINKS[step.kind]
            query = dict(step.query)
            if step.kind in ("review", "scoring"):
                query = {"version": str(version.id)}
            _link(file, f"Open in {label}", user, query=query)


# ── comparison and maturity ─────────────────────────────────────────────────────────────────────────


def compare(model: registry.ModelSummary) -> None:
    """Chosen versions side by side: metrics on each one's test rows, parameters, data and card differences."""
    if len(model.versions) < 2:
        st.info(f"{md(model.name)} has one version so far; register another run under this name to compare.")
        return
    labels = {v.id: f"v{v.number}" for v in model.versions}
    chosen = st.multiselect("Versions to compare", list(labels), default=list(labels)[:2], format_func=labels.get,
                            key="registry_compare")
    if len(chosen) < 2:
        st.info("Choose at least two versions.")
        return
    try:
        with resources.db_session() as session:
            found = registry.compare_versions(session=session, settings=resources.settings(), version_ids=chosen,
                                              scorer=scorer)
    except DomainError as error:
        st.error(md(error))
        return
    st.subheader("Test results on the same rows")
    st.caption("Each version's held-out test rows, with every chosen model scored on them where its input columns "
               "allow: the fair comparison.")
    st.dataframe(pd.DataFrame(found.metrics), hide_index=True, key="registry_compare_metrics", height="content",
                 placeholder="—",
                 column_config={label: st.column_config.NumberColumn(format="%.3f") for label in found.labels})
    for note in found.notes:
        st.caption(f":material/info: {md(note)}")
    wide = {label: st.column_config.TextColumn(width="large") for label in found.labels}
    st.subheader("Parameters")
    st.dataframe(pd.DataFrame(found.parameters), hide_index=True, key="registry_compare_parameters",
                 height="content", column_config=wide)
    st.subheader("Data")
    st.dataframe(pd.DataFrame(found.data), hide_index=True, key="registry_compare_data", height="content",
                 column_config=wide)
    st.subheader("Model card differences")
    if len(found.card) > 1:
        st.dataframe(pd.DataFrame(found.card), hide_index=True, key="registry_compare_card", height="content",
                     column_config=wide)
    elif all(value == "no card yet" for key, value in found.card[0].items() if key in found.labels):
        st.caption("None of these versions has a model card yet.")
    else:
        st.caption("The cards say the same: " + md(", ".join(f"{label} revision {found.card[0][label]}"
                                                              for label in found.labels)) + ".")


def maturity(model: registry.ModelSummary, project: ProjectPublic) -> None:
    """The model's MLOps principles with evidence, and the same for every model of the project."""
    with resources.db_session() as session:
        mine = registry.maturity(session=session, model_id=model.id)
        everyone = registry.project_maturity(session=session, project_id=project.id)
    judged = f"judged on v{mine.judged.number} ({registry.status_label(mine.judged)})" if mine.judged else ""
    left, right = st.columns([1, 3])
    left.metric("MLOps level", mine.level, help="Level 0: manual process. Level 1: every principle below is met, "
                                                "so the model is retrained, checked and deployed automatically.")
    right.write(md(mine.summary))
    right.caption(f"{md(model.name)} {judged}.")
    for principle in mine.principles:
        icon = VERDICT_ICONS["passed" if principle.met else "failed"]
        st.markdown(f"{icon} **{principle.title}** — {md(principle.evidence)}")
    st.subheader("All models of the project")
    st.caption("The same principles for every registered model: a self-assessment table that fills itself.")
    st.dataframe(pd.DataFrame([{"Model": m.model_name, "Version judged": f"v{m.judged.number}" if m.judged else "—",
                                **{SHORT_PRINCIPLES[p.key]: p.met for p in m.principles}, "Level": m.level}
                               for m in everyone]), hide_index=True, key="registry_overview",
                 column_config={SHORT_PRINCIPLES[key]: st.column_config.CheckboxColumn(help=title)
                                for key, title in registry.PRINCIPLES.items()})
