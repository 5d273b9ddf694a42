"""The only module that knows session-state keys. Session state holds ids, never rows or frames."""

import streamlit as st

LOGIN_ID = "login_id"
PROJECT_ID = "project_id"
ENDED_LOGIN_REASON = "ended_login_reason"
PENDING_REDIRECT = "pending_redirect"  # a browser redirect the next run sends (see auth.log_in)
DATA_JOB_ID = "data_job_id"
DATASET_ID = "dataset_id"
RUN_ID = "run_id"  # the training run shown on the results page
TRAIN_RUN_ID = "train_run_id"  # the run started from the Train page
VERSION_ID = "version_id"  # the model version shown on the governance pages
PREDICT_JOB_ID = "predict_job_id"  # the file being scored on the Predict page
PREDICT_BATCH_ID = "predict_batch_id"  # the scored file shown on the Predict page
PREDICT_RECORD_BATCH_ID = "predict_record_batch_id"  # the typed-in record scored on the Predict page
PREDICT_UPLOADS = "predict_uploads"  # files submitted so far: a new uploader key empties it after each
DEMO_JOB_ID = "demo_job_id"  # the sample project being loaded
DEMO_ACCOUNTS = "demo_accounts"  # demo passwords, kept only until the admin has noted them
NOTICE = "notice"  # a success message to show once, after the rerun that re-reads what changed
REGISTRY_FOLLOW = "registry_follow"  # after an action, the Registry page's pickers move to VERSION_ID
REPORT_SHA256 = "report_sha256"  # the PDF just generated on the Reports page (its artifact hash)


def get(key: str, default=None):
    return st.session_state.get(key, default)


def put(key: str, value) -> None:
    st.session_state[key] = value


def pop(key: str, default=None):
    return st.session_state.pop(key, default)


def clear_all() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


# A link to another page (st.page_link(..., query_params={"run": "3"})) says what that page should show.
LINK_PARAMS = {"run": RUN_ID, "version": VERSION_ID}


def take_link_params() -> None:
    """Ids in the address become the page's choice, then leave the address (the page's own pickers take over)."""
    for param, key in LINK_PARAMS.items():
        value = st.query_params.get(param)
        if value is None:
            continue
        if value.isdigit():
            st.session_state[key] = int(value)
        del st.query_params[param]
