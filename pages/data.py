"""Data: upload a file, check its columns, and save it as a new immutable dataset version."""

import pandas as pd
import streamlit as st

from app import auth, navigation, resources, state, widgets
from core import datasets, jobs
from core.data.reading import ReadOptions
from core.data.schema import ColumnType
from core.errors import DomainError
from core.models import Role

user = auth.require_user()
project = widgets.require_project()
st.title("Data")
st.write("Upload a table (CSV, Excel or Parquet). Steward stores every upload as an immutable, numbered "
         "version with a fingerprint (SHA-256) and a profile, so every model can be traced to its data.")

job_id = state.get(state.DATA_JOB_ID)
job = None
if job_id is not None:
    with resources.db_session() as session:
        job = jobs.get_job(session=session, job_id=job_id)
if job is not None and job.project_id == project.id:  # another project's upload is not news here
    job = widgets.follow_job(job_id, user, key="data", announce_success=False)
    if job.status == "succeeded":
        result = job.result
        number, name = result["number"], job.params["dataset_name"]
        if result["duplicate"]:
            st.info(f"This content is already version {number} of {widgets.md(name)}: nothing new was stored.")
        else:
            st.success(f"Saved as version {number} of {widgets.md(name)} ({result['rows']:,} rows).")
        state.put(state.DATASET_ID, result["dataset_id"])  # the link opens this dataset, not the first one
        st.page_link(navigation.page_for("datasets.py"), label="See its profile", icon=":material/dataset:")

if not user.has_role(Role.builder, Role.admin):
    st.info("Uploading data needs the builder role. You can read versions and profiles.")
    st.stop()


def forget_previous_file() -> None:
    # The column editor, the name field and the sheet picker keep their state by key: without this, the
    # types, sensitive marks, dataset name and sheet chosen for the previous file would apply to the next one.
    for key in ("data_columns", "data_name", "data_sheet"):
        st.session_state.pop(key, None)


upload = st.file_uploader("Drop a file here", type=["csv", "tsv", "txt", "xlsx", "parquet", "pq"],
                          key="data_upload", max_upload_size=resources.settings().max_upload_mb,
                          on_change=forget_previous_file)
if upload is None:
    st.stop()

with st.expander("Reading options"):
    encoding = st.selectbox("Text encoding", ["auto", "utf-8", "cp1252", "latin-1", "utf-16"], key="data_encoding")
    delimiter = st.selectbox("Separator", ["auto", ",", ";", "\t", "|"], key="data_delimiter",
                             format_func=lambda d: {"\t": "tab"}.get(d, d))
# The sheet picker appears below once the workbook is read; its choice is read back here on the rerun.
options = ReadOptions(encoding=encoding, delimiter=delimiter, sheet=st.session_state.get("data_sheet"))
data = upload.getvalue()
try:
    preview = datasets.preview_upload(settings=resources.settings(), filename=upload.name, data=data, options=options)
except DomainError as error:
    st.error(widgets.md(error))
    st.stop()

if len(preview.raw.sheets) > 1:
    st.selectbox("Sheet", preview.raw.sheets, key="data_sheet")
for note in preview.raw.notes:
    st.caption(widgets.md(note))
st.caption(f"The first 20 rows; column types are guessed from the first {len(preview.raw.frame):,} rows.")
st.dataframe(preview.raw.frame.head(20), hide_index=True)

with resources.db_session() as session:
    existing = [d.name for d in datasets.list_datasets(session=session, project_id=project.id)]

target = st.selectbox("Save as", ["A new dataset", *existing], key="data_target",
                      help="Add this file as the next version of an existing dataset, or start a new one.")
name = target
with st.form("data_save"):
    st.subheader("Columns")
    st.caption("Check the type Steward guessed for each column; mark columns that describe people's "
               "characteristics (sex, age group, region, language…) as sensitive: they are used for fairness checks.")
    columns = st.data_editor(
        pd.DataFrame({"column": list(preview.types), "type": list(preview.types.values()), "sensitive": False}),
        column_config={"column": st.column_config.TextColumn("Column", disabled=True),
                       "type": st.column_config.SelectboxColumn("Type", options=[t.value for t in ColumnType]),
                       "sensitive": st.column_config.CheckboxColumn("Sensitive")},
        hide_index=True, key="data_columns")
    if target == "A new dataset":
        name = st.text_input("Name of the new dataset", key="data_name", value=upload.name.rsplit(".", 1)[0])
    source = st.text_area("Where does the data come from?", key="data_source")
    legal_basis = st.text_input("Legal basis for using it", key="data_legal_basis")
    owner = st.text_input("Data owner", key="data_owner")
    save = st.form_submit_button("Save version", type="primary")

if save:
    types = dict(zip(columns.column, columns.type, strict=True))
    try:
        with resources.db_session() as session:
            job = datasets.submit_upload(
                session=session, settings=resources.settings(), runner=resources.job_runner(), actor=user,
                project_id=project.id, dataset_name=name,
                filename=upload.name, data=data, options=options, types=types,
                metadata=datasets.VersionMetadata(source=source, legal_basis=legal_basis, owner=owner,
                                                  sensitive_columns=list(columns.column[columns.sensitive])))
    except DomainError as error:
        st.error(widgets.md(error))
    else:
        state.put(state.DATA_JOB_ID, job.id)
        st.rerun()
