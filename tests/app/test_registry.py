"""Model registry page: register, gates with reasons, override, promote, four-eyes, rollback, lineage, maturity."""

from types import SimpleNamespace

import pytest
from sqlmodel import select

from app import state
from core import auth, datasets, registry
from core.models import GateOverride, ModelVersion
from tests.app.conftest import button, open_page, page_links, page_title, plain, sample_head, texts
from tests.core.test_registry import WEAK, complete_card, ready
from tests.factories import make_dataset_version, make_project, make_trained_run, make_user


@pytest.fixture
def team(db):
    with db() as session:
        bea = make_user(session, "bea")
        return SimpleNamespace(bea=bea, rita=make_user(session, "rita", roles=("reviewer",)),
                               mo=make_user(session, "mo", roles=("manager",)),
                               admin=auth.get_user_by_name(session=session, username="admin"),
                               project=make_project(session, bea))


@pytest.fixture
def trained(db, sqlite_settings, team, tmp_path):
    """Two finished runs of bea's on 300 survey rows: a good one and one without its informative columns."""
    with db() as session:
        data = make_dataset_version(session, sqlite_settings, team.bea, team.project,
                                    sample_head(tmp_path, "labour_force.csv", 300),
                                    metadata=datasets.VersionMetadata(sensitive_columns=["sex"]))
        return (make_trained_run(session, sqlite_settings, team.bea, data),
                make_trained_run(session, sqlite_settings, team.bea, data, excluded=WEAK))


@pytest.fixture
def versions(db, team, trained):
    with db() as session:
        return [registry.register_run(session=session, actor=team.bea, run_id=run.id, model_name="employment")
                for run in trained]


def stored(db, version_id: int) -> ModelVersion:
    with db() as session:
        return session.get(ModelVersion, version_id)


def table(block, column: str):
    """The first table in ``block`` with ``column`` (AppTest cannot find a dataframe by its key)."""
    found = [frame.value for frame in block.dataframe if column in frame.value.columns]
    assert found, f"no table with a {column!r} column"
    return found[0]


def gate_lines(at) -> list[str]:
    return [line for line in plain(at.tabs[0].markdown) if " — " in line]


def test_the_registry_needs_an_open_project(app_test, team):
    at = open_page(app_test(), team.mo, "registry.py")

    assert not at.exception
    assert page_links(at) == [("Go to Projects", "home")]


def test_a_builder_registers_a_run_and_a_reviewer_only_reads(app_test, db, team, trained):
    at = open_page(app_test(), team.rita, "registry.py", team.project)
    assert not at.exception and page_title(at) == "Model registry"
    assert texts(at.info) == ["No model is registered in this project yet. A builder registers a trained run here."]
    assert not at.expander

    at = open_page(app_test(), team.bea, "registry.py", team.project)
    at.selectbox(key="registry_run").select(trained[0].id)
    at.text_input(key="registry_new_name").input("employment")
    at = button(at, "Register").click().run()

    assert not at.exception
    with db() as session:
        [version] = session.exec(select(ModelVersion)).all()
    assert (version.run_id, version.number, version.status) == (trained[0].id, 1, "candidate")
    assert plain(at.success)[0].startswith(f"Registered run {trained[0].id} as employment v1 (candidate).")
    assert at.selectbox(key="registry_model").options == ["employment"]
    versions_table = table(at, "Registered by")
    assert list(versions_table["Version"]) == ["v1"] and list(versions_table["Status"]) == ["candidate"]


def test_gates_show_their_reasons_and_a_manager_cannot_promote_while_they_fail(app_test, team, versions):
    at = open_page(app_test(), team.mo, "registry.py", team.project)
    at.selectbox(key="registry_version").select(versions[0].id).run()

    assert not at.exception
    assert plain(at.tabs[0].error) == ["3 of 6 gates fail, so employment v1 cannot be promoted yet."]
    lines = gate_lines(at)
    assert len(lines) == 6
    assert any(line.startswith(":red[:material/cancel:] **Model card complete** — The card is 0% complete.")
               for line in lines)
    assert any("**Beats the dummy baseline** — ROC AUC 0.779 against 0.500" in line for line in lines)
    links = [(link.value, link.proto.page, link.proto.query_string) for link in at.tabs[0].get("page_link")]
    assert ("Write the model card", "model_card", f"run={versions[0].run_id}") in links
    assert ("Self-assessment and review", "checklist", f"version={versions[0].id}") in links
    assert button(at, "Promote employment v1 to production").disabled
    assert not [e for e in at.expander if e.label.startswith("Override")]  # managers do not override


def test_an_admin_overrides_a_failed_gate_with_a_reason_shown_beside_it(app_test, db, team, versions):
    at = open_page(app_test(), team.admin, "registry.py", team.project)
    at.selectbox(key="registry_version").select(versions[0].id).run()

    at.selectbox(key="registry_override_gate").select("model_card")
    at.text_area(key="registry_override_reason").input("too short")
    at = button(at, "Override this gate").click().run()
    assert plain(at.error)[1:] == ["Write why the gate “Model card complete” may be passed over in a sentence (at "
                                   "least 10 characters): it goes into the audit trail and the reports."]

    at.text_area(key="registry_override_reason").input("The card lives in the unit's wiki for this pilot.")
    at = button(at, "Override this gate").click().run()

    assert not at.exception
    with db() as session:
        row = session.exec(select(GateOverride)).one()
    assert (row.gate, row.reason) == ("model_card", "The card lives in the unit's wiki for this pilot.")
    assert any(line.startswith(":orange[:material/gpp_maybe:] **Model card complete**") for line in gate_lines(at))
    assert any("Overridden by admin on" in caption and "wiki for this pilot" in caption
               for caption in plain(at.tabs[0].caption))
    assert list(table(at.tabs[1], "Gate")["Gate"]) == ["Model card complete"]


def test_a_manager_promotes_a_ready_version_and_rolls_back_in_one_step(app_test, db, sqlite_settings, team,
                                                                       versions):
    first, second = versions
    with db() as session:
        ready(session, sqlite_settings, team, first)
    at = open_page(app_test(), team.mo, "registry.py", team.project)
    at.selectbox(key="registry_version").select(first.id).run()
    assert plain(at.tabs[0].success) == ["Every gate of employment v1 passes."]
    at.text_area(key="registry_promote_reason").input("First release for the quarterly estimates.")
    at = button(at, "Promote employment v1 to production").click().run()

    assert not at.exception
    assert stored(db, first.id).status == "production"
    assert plain(at.success) == ["employment v1 is in production."]

    with db() as session:  # an administrator waives what the weak v2 fails, and promotes it
        for gate in registry.evaluate_gates(session=session, settings=sqlite_settings, version_id=second.id).failed:
            registry.override_gate(session=session, settings=sqlite_settings, actor=team.admin, version_id=second.id,
                                   gate=gate.gate, reason="Trial of the reduced model for two weeks.")
        registry.promote_version(session=session, settings=sqlite_settings, actor=team.admin, version_id=second.id)
    at = open_page(app_test(), team.mo, "registry.py", team.project)
    assert "**v2** is in production; **v1** is kept as the fallback." in plain(at.markdown)[1]
    at.text_area(key="registry_rollback_reason").input("Too many complaints")
    at = button(at, "Roll back to v1").click().run()

    assert not at.exception
    assert (stored(db, first.id).status, stored(db, second.id).status) == ("production", "retired")
    assert plain(at.success) == ["Rolled back: employment v1 is in production again."]
    history = table(at.tabs[1], "To")
    assert list(history["To"])[-1] == "production" and list(history["Why"])[-1] == \
        "Restored by a rollback from v2: Too many complaints"


def test_a_manager_who_built_the_version_is_told_a_colleague_must_promote_it(app_test, db, sqlite_settings, team,
                                                                             trained):
    with db() as session:
        both = auth.set_roles(session=session, actor=team.admin, user_id=team.bea.id, roles=["builder", "manager"])
        version = registry.register_run(session=session, actor=both, run_id=trained[0].id, model_name="employment")
    at = open_page(app_test(), both, "registry.py", team.project)

    assert not at.exception
    assert any("so a colleague must promote it (four-eyes rule)" in text for text in plain(at.tabs[0].info))
    assert not [b for b in at.button if b.label.startswith("Promote")]
    assert stored(db, version.id).status == "candidate"


def test_lineage_links_to_the_run_and_the_link_opens_that_run(app_test, db, team, trained, versions):
    with db() as session:
        complete_card(session, team.bea, versions[1].run_id)
    at = open_page(app_test(), team.rita, "registry.py", team.project)
    at.selectbox(key="registry_version").select(versions[1].id).run()

    lineage = at.tabs[2]
    titles = [line for line in plain(lineage.markdown) if line.startswith(":material")]
    assert [title.split("**")[1] for title in titles] == [
        "Dataset labour_force version 1", f"Training run {trained[1].id}: employed (binary)", "Model artifact",
        "Model card revision 1", "Self-assessment and peer review", "Scoring batches"]
    links = [(link.value, link.proto.page, link.proto.query_string) for link in lineage.get("page_link")]
    assert ("Open in Model results", "run", f"run={trained[1].id}") in links
    assert not [link for link in links if link[1] == "predict"]  # reviewers cannot open Predict: no dead link

    at.query_params["run"] = str(trained[1].id)  # what following the link does
    at = at.switch_page("../pages/run.py").run()
    assert not at.exception
    assert at.selectbox(key="run_choice").value.id == trained[1].id
    assert at.session_state[state.RUN_ID] == trained[1].id


def test_compare_and_maturity_tabs(app_test, team, versions):
    at = open_page(app_test(), team.mo, "registry.py", team.project)

    compared = table(at.tabs[3], "Metric")
    auc = compared[(compared["Metric"] == "ROC AUC (higher is better)") & compared["Test data"].str.startswith("v1")]
    assert auc.iloc[0]["v1"] == pytest.approx(0.779, abs=1e-3) and auc.iloc[0]["v2"] == pytest.approx(0.479, abs=1e-3)
    assert "v1 on v2's test data: age, education" in " ".join(plain(at.tabs[3].caption))

    lines = plain(at.tabs[4].markdown)
    assert ":red[:material/cancel:] **Monitoring configured** — Not met: no monitoring configured." in lines
    assert any(line.startswith(":green[:material/check_circle:] **Data, code and model versioned** — v2: data")
               for line in lines)
    assert at.metric[0].value == "0"
    overview = table(at.tabs[4], "Model")
    assert list(overview["Model"]) == ["employment"] and list(overview["Level"]) == [0]
    assert list(overview["Versioned"]) == [True] and list(overview["Monitored"]) == [False]
