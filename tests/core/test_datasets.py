"""Dataset versions through the services: immutable, content-addressed, profiled, compared, contracted."""

from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import select

from core import audit, datasets, jobs
from core.artifacts import ArtifactStore
from core.data.reading import ReadOptions
from core.errors import InvalidInput, NotAllowed
from core.models import DatasetVersion
from tests.factories import make_project, make_user

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
LABOUR = SAMPLES / "labour_force.csv"


@pytest.fixture
def builder(session):
    return make_user(session, "bea")


@pytest.fixture
def project(session, builder):
    return make_project(session, builder)


def ingest(session, settings, actor, project, path, dataset="labour", **kwargs):
    return datasets.ingest_file(session=session, settings=settings, actor=actor, project_id=project.id,
                                dataset_name=dataset, path=path, filename=path.name, **kwargs)


def test_a_saved_version_holds_hash_schema_profile_and_parquet(session, settings, builder, project):
    meta = datasets.VersionMetadata(source="LFS 2025", legal_basis="Statistics Act §4", owner="Unit B",
                                    sensitive_columns=["sex", "region"])
    version, duplicate = ingest(session, settings, builder, project, LABOUR, metadata=meta)
    assert not duplicate and version.number == 1 and version.rows == 5000 and version.columns == 10
    assert version.types["person_id"] == "identifier" and version.types["age"] == "numeric"
    assert version.sensitive_columns == ["sex", "region"] and version.meta["legal_basis"] == "Statistics Act §4"
    assert any(w["column"] == "person_id" for w in version.profile["warnings"])
    frame = datasets.load_frame(settings=settings, version=version)
    assert len(frame) == 5000 and frame["age"].dtype == "float64"
    assert audit.list_events(session=session, action="dataset.version.create")[0].details["sha256"] == version.sha256


def test_the_same_content_is_not_stored_twice_even_from_parquet(session, settings, builder, project, tmp_path):
    first, _ = ingest(session, settings, builder, project, LABOUR)
    as_parquet = tmp_path / "labour.parquet"
    datasets.load_frame(settings=settings, version=first).to_parquet(as_parquet)
    again, duplicate = ingest(session, settings, builder, project, as_parquet, types=first.types)
    assert duplicate and again.id == first.id
    assert len(session.exec(select(DatasetVersion)).all()) == 1


def test_a_new_version_points_to_its_parent(session, settings, builder, project):
    first, _ = ingest(session, settings, builder, project, LABOUR)
    second, _ = ingest(session, settings, builder, project, SAMPLES / "labour_force_batch_similar.csv")
    assert (second.number, second.parent_id) == (2, first.id)
    assert [v.number for v in datasets.list_versions(session=session, dataset_id=first.dataset_id)] == [2, 1]
    comparison = datasets.compare_versions(session=session, settings=settings, old_version_id=first.id,
                                           new_version_id=second.id, key="person_id")
    assert comparison["rows"] == {"old": 5000, "new": 1000}
    assert comparison["keyed_rows"]["added"] == 1000 and comparison["keyed_rows"]["removed"] == 5000


def test_bad_files_store_nothing(session, settings, builder, project, tmp_path):
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(InvalidInput, match="Line 3"):
        ingest(session, settings, builder, project, ragged)
    with pytest.raises(InvalidInput, match="not numbers"):
        ingest(session, settings, builder, project, LABOUR, types={"sex": "numeric"})
    assert session.exec(select(DatasetVersion)).all() == []
    assert list(ArtifactStore(settings.artifacts_path).iter_hashes()) == []


def test_reviewers_cannot_add_data(session, settings, project):
    reviewer = make_user(session, "rex", roles=("reviewer",))
    with pytest.raises(NotAllowed):
        ingest(session, settings, reviewer, project, LABOUR)


def test_the_upload_job_saves_the_version_and_removes_the_staged_file(session, settings, builder, project):
    runner = jobs.JobRunner(database_url=settings.resolved_database_url)
    try:
        job = datasets.submit_upload(
            session=session, settings=settings, runner=runner, actor=builder, project_id=project.id,
            dataset_name="labour", filename="labour_force.csv", data=LABOUR.read_bytes(), options=ReadOptions(),
            types=datasets.preview_upload(settings=settings, filename="labour_force.csv", data=LABOUR.read_bytes(),
                                          options=ReadOptions()).types,
            metadata=datasets.VersionMetadata(sensitive_columns=["sex"]))
        runner.shutdown(wait=True)
    finally:
        runner.shutdown()
    done = jobs.get_job(session=session, job_id=job.id)
    assert done.status == "succeeded", done.error
    assert done.result["number"] == 1 and done.result["rows"] == 5000
    assert list((settings.home / "staging").iterdir()) == []


def test_a_contract_passes_similar_data_and_fails_drifted_data(session, settings, builder, project):
    version, _ = ingest(session, settings, builder, project, LABOUR)
    contract = datasets.save_contract(session=session, settings=settings, actor=builder, version_id=version.id)
    assert contract.number == 1 and "age" in contract.content["columns"]

    def check(name):
        return datasets.validate_upload(session=session, settings=settings, dataset_id=version.dataset_id,
                                        filename=name, data=(SAMPLES / name).read_bytes())

    assert check("labour_force_batch_similar.csv")["ok"]
    drifted = check("labour_force_batch_drifted.csv")
    assert not drifted["ok"] and {w["column"] for w in drifted["warnings"]} >= {"age"}


def test_an_edited_contract_is_a_new_number(session, settings, builder, project):
    version, _ = ingest(session, settings, builder, project, LABOUR)
    first = datasets.save_contract(session=session, settings=settings, actor=builder, version_id=version.id)
    edited = {**first.content, "columns": {**first.content["columns"]}}
    edited["columns"]["age"] = {**edited["columns"]["age"], "max": 30}
    second = datasets.save_contract(session=session, settings=settings, actor=builder, version_id=version.id,
                                    content=edited)
    assert second.number == 2 and second.content["columns"]["age"]["max"] == 30
    report = datasets.validate_upload(session=session, settings=settings, dataset_id=version.dataset_id,
                                      filename="b.csv", data=(SAMPLES / "labour_force_batch_similar.csv").read_bytes())
    assert any(f["kind"] == "out_of_range" and f["column"] == "age" for f in report["failures"])


def test_a_damaged_parquet_is_refused_when_read(session, settings, builder, project):
    version, _ = ingest(session, settings, builder, project, LABOUR)
    path = ArtifactStore(settings.artifacts_path).path_for(version.parquet_sha256)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(Exception, match="changed or damaged"):
        datasets.load_frame(settings=settings, version=version)


def test_the_cli_adds_lists_and_validates(settings, monkeypatch):
    from click.testing import CliRunner

    from core.cli import cli

    monkeypatch.setenv("STEWARD_PASSWORD", "a long enough password")
    runner = CliRunner()

    def steward(*args):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    steward("user", "add", "ada", "--role", "admin", "--role", "builder")
    steward("project", "create", "LFS", "--user", "ada")
    added = steward("--json", "data", "add", "LFS", "labour", str(LABOUR), "--user", "ada", "--sensitive", "sex")
    assert added.exit_code == 0, added.stderr
    assert '"rows": 5000' in added.stdout and '"version": 1' in added.stdout
    assert "labour" in steward("data", "list", "LFS").stdout
    assert steward("data", "validate", "LFS", "labour", str(LABOUR)).exit_code == 2  # no contract yet
    assert steward("data", "contract", "LFS", "labour", "--user", "ada").exit_code == 0
    assert steward("data", "validate", "LFS", "labour", str(SAMPLES / "labour_force_batch_similar.csv")).exit_code == 0
    failed = steward("data", "validate", "LFS", "labour", str(SAMPLES / "labour_force_batch_drifted.csv"))
    assert failed.exit_code == 1 and "hours_usual" in failed.stdout
    assert pd.read_csv(LABOUR).shape == (5000, 10)
