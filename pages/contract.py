"""Data contract: the rules later files must meet, and a check of a file against them."""

import streamlit as st

from app import auth, resources, state, widgets
from core import datasets
from core.errors import DomainError
from core.models import Role

user = auth.require_user()
project = widgets.require_project()
st.title("Data contract")
st.write("A data contract says what later files for this dataset must look like: which columns, of which "
         "type, with which categories and ranges. New batches for scoring and retraining are checked against it.")

found = widgets.require_datasets(project)

dataset = st.selectbox("Dataset", found, format_func=lambda d: d.name, key="contract_dataset")
with resources.db_session() as session:
    contract = datasets.latest_contract(session=session, dataset_id=dataset.id)
    versions = datasets.list_versions(session=session, dataset_id=dataset.id)


def attempt(**kwargs) -> None:
    try:
        with resources.db_session() as session:
            saved = datasets.save_contract(session=session, settings=resources.settings(), actor=user, **kwargs)
    except DomainError as error:
        st.error(widgets.md(error))
    else:
        state.put(state.NOTICE, f"Saved contract {saved.number}.")  # shown after the rerun that reads it back
        st.rerun()


if notice := state.pop(state.NOTICE):
    st.success(notice)

can_edit = user.has_role(Role.builder, Role.admin)
if can_edit:
    base = st.selectbox("Derive from", versions, format_func=lambda v: f"version {v.number}", key="contract_base")
    if st.button("Derive a contract from this version", key="contract_derive"):
        attempt(version_id=base.id)

if contract is None:
    st.info("No contract yet." + (" Derive one from a version above." if can_edit else ""))
    st.stop()

st.subheader(f"Contract {contract.number}")
st.caption(f"Saved by {widgets.md(contract.created_by_name)} on {contract.created_at:%Y-%m-%d %H:%M} UTC")
# One editor per contract: edits made to one contract are not carried over to the next or to another dataset.
edited = widgets.contract_editor(contract.content, key=f"contract_rules_{contract.id}", disabled=not can_edit)
if can_edit and st.button("Save the edited contract", key="contract_save"):
    attempt(version_id=contract.based_on_version_id, content=edited)

st.subheader("Check a file against the contract")
upload = st.file_uploader("File to check", type=["csv", "tsv", "txt", "xlsx", "parquet", "pq"],
                          key="contract_upload", max_upload_size=resources.settings().max_upload_mb)
if upload is not None:
    try:
        with resources.db_session() as session:
            report = datasets.validate_upload(session=session, settings=resources.settings(), dataset_id=dataset.id,
                                              filename=upload.name, data=upload.getvalue())
    except DomainError as error:
        st.error(widgets.md(error))
    else:
        widgets.validation_report(report)
