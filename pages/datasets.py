"""Versions and profiles: each dataset's history, one version's profile, and what changed between two."""

import streamlit as st

from app import auth, resources, state, widgets
from core import charts, datasets
from core.errors import DomainError

auth.require_user()
project = widgets.require_project()
st.title("Versions and profiles")
st.write("Every upload is kept as a numbered version. Read a version's profile to spot problems before "
         "training, or compare two versions to see what changed.")

found = widgets.require_datasets(project)

ids = [d.id for d in found]
current = state.get(state.DATASET_ID)
dataset = st.selectbox("Dataset", found,
                       format_func=lambda d: f"{d.name} ({d.versions} version{'' if d.versions == 1 else 's'})",
                       index=ids.index(current) if current in ids else 0, key="datasets_dataset")
state.put(state.DATASET_ID, dataset.id)
with resources.db_session() as session:
    versions = datasets.list_versions(session=session, dataset_id=dataset.id)

st.dataframe([{"Version": v.number, "Rows": v.rows, "Columns": v.columns, "File": v.source_filename,
               "By": v.created_by_name, "When (UTC)": f"{v.created_at:%Y-%m-%d %H:%M}", "SHA-256": v.sha256}
              for v in versions], hide_index=True)

profile_tab, compare_tab = st.tabs(["Profile", "Compare two versions"])
with profile_tab:
    version = st.selectbox("Version", versions, format_func=lambda v: f"version {v.number}", key="datasets_version")
    widgets.dataset_version_summary(version)
    profiles = version.profile["columns_profile"]
    charted = [name for name in profiles if profiles[name].get("type") != "identifier"]
    column = st.selectbox("Column", charted + [n for n in profiles if n not in charted],  # identifiers last
                          key="datasets_column")
    column_profile = profiles[column]
    chart = charts.column_chart(column, column_profile)
    if chart is not None:
        st.altair_chart(chart, width="stretch")
    else:
        st.caption("No chart for this column: an identifier has a different value in every row.")
    with st.expander(f"All figures for {widgets.md(column)}"):
        st.json(column_profile)

with compare_tab:
    if len(versions) < 2:
        st.info("Upload a second version of this dataset to compare versions.")
    else:
        left, right, key_col = st.columns(3)
        old = left.selectbox("Older", versions[1:], format_func=lambda v: f"version {v.number}", key="datasets_old")
        new = right.selectbox("Newer", versions, format_func=lambda v: f"version {v.number}", key="datasets_new")
        key = key_col.selectbox("Match rows by (optional)", [None, *new.types], key="datasets_key",
                                format_func=lambda name: name or "(do not match rows)")
        if old.number >= new.number:
            st.info("Choose an older version on the left than on the right.")
        else:
            try:
                comparison = resources.compare_versions(old.id, new.id, key)
            except DomainError as error:
                st.error(widgets.md(error))
            else:
                widgets.comparison_summary(comparison)
