"""Datasets: upload, type, version, profile, compare, and check later files against a data contract.

Every saved upload is an immutable :class:`~core.models.DatasetVersion`: the canonical data as Parquet in
the artifact store, addressed by a SHA-256 of its content (so the same data from CSV or Parquet is the same
version). Reading and profiling a large file runs as a job (``data.ingest``); the CLI runs the same
:func:`ingest_file` directly.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import audit
from core.artifacts import ArtifactStore
from core.auth import clean_name, require_role
from core.config import Settings
from core.data import contract as contracts
from core.data import profile as profiling
from core.data.reading import RawTable, ReadLimits, ReadOptions, read_path, read_table
from core.data.schema import ColumnType, apply_types, content_hash, infer_types
from core.errors import Conflict, InvalidInput, NotFound
from core.models import (
    DataContract,
    DataContractPublic,
    Dataset,
    DatasetPublic,
    DatasetVersion,
    DatasetVersionPublic,
    JobPublic,
    Project,
    ProjectStatus,
    Role,
    User,
    UserPublic,
)

Progress = Callable[[float, str], None]
PREVIEW_ROWS = 20_000  # types are guessed from this many rows; the page shows the first few


@dataclass
class VersionMetadata:
    """What the uploader tells about the data."""

    source: str = ""
    legal_basis: str = ""
    owner: str = ""
    sensitive_columns: list[str] = field(default_factory=list)


@dataclass
class UploadPreview:
    raw: RawTable
    types: dict[str, str]


def limits(settings: Settings) -> ReadLimits:
    return ReadLimits(max_bytes=settings.max_upload_bytes)


# ── upload ──────────────────────────────────────────────────────────────────────────────────────────


def preview_upload(*, settings: Settings, filename: str, data: bytes, options: ReadOptions) -> UploadPreview:
    """Read the first rows of an upload and guess each column's type (nothing is stored)."""
    raw = read_table(data, filename, limits=limits(settings), options=ReadOptions(
        encoding=options.encoding, delimiter=options.delimiter, sheet=options.sheet, nrows=PREVIEW_ROWS))
    inferred = infer_types(raw.frame, raw.decimal)
    return UploadPreview(raw=raw, types={name: kind.value for name, kind in inferred.items()})


def _project(session: Session, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound("That project does not exist. Choose one on the Projects page.")
    if project.status != ProjectStatus.active:
        raise InvalidInput(f"The project {project.name!r} is archived. Restore it before adding data.")
    return project


def _check_request(types: dict[str, str], metadata: VersionMetadata) -> None:
    kept = [name for name, kind in types.items() if kind != ColumnType.ignore]
    if not kept:
        raise InvalidInput("Every column is set to 'ignore'. Keep at least one column.")
    unknown = [name for name in metadata.sensitive_columns if name not in kept]
    if unknown:
        raise InvalidInput(f"Sensitive columns must be columns that are kept: {', '.join(unknown)}.")
    known = {kind.value for kind in ColumnType}
    for name, kind in types.items():
        if kind not in known:
            raise InvalidInput(f"{kind!r} is not a column type (column {name!r}). Use one of {', '.join(known)}.")


def submit_upload(
    *, session: Session, settings: Settings, runner, actor: UserPublic, project_id: int, dataset_name: str,
    filename: str, data: bytes, options: ReadOptions, types: dict[str, str], metadata: VersionMetadata,
) -> JobPublic:
    """Save an upload as a new dataset version, in a job (reading and profiling a big file takes a while)."""
    from core import jobs

    require_role(actor, Role.builder, Role.admin)
    _project(session, project_id)
    dataset_name = clean_name(dataset_name, what="dataset name", max_length=120)
    if len(data) > settings.max_upload_bytes:
        raise InvalidInput(f"The file is {len(data) / 1e6:.1f} MB; the limit is {settings.max_upload_mb} MB.")
    _check_request(types, metadata)
    staging = settings.home / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    path = staging / f"{uuid.uuid4().hex}{Path(filename).suffix.lower()}"
    path.write_bytes(data)
    params = {"project_id": project_id, "dataset_name": dataset_name, "path": str(path), "filename": filename,
              "options": asdict(options), "types": types, "metadata": asdict(metadata)}
    try:
        job = jobs.create_job(session=session, actor=actor, kind="data.ingest", params=params,
                              title=f"Saving {filename} as {dataset_name}", project_id=project_id)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    runner.start(job.id)
    return job


def ingest_job(ctx) -> dict[str, Any]:
    """Job ``data.ingest``: read the staged file, then :func:`ingest_file`; the staged copy is always removed."""
    from core.config import get_settings

    params = ctx.params
    path = Path(params["path"])
    try:
        with ctx.session() as session:
            version, duplicate = ingest_file(
                session=session, settings=get_settings(), actor=ctx.actor, project_id=params["project_id"],
                dataset_name=params["dataset_name"], path=path, filename=params["filename"],
                options=ReadOptions(**params["options"]), types=params["types"],
                metadata=VersionMetadata(**params["metadata"]), progress=ctx.progress,
            )
        return {"version_id": version.id, "number": version.number, "dataset_id": version.dataset_id,
                "duplicate": duplicate, "sha256": version.sha256, "rows": version.rows}
    finally:
        path.unlink(missing_ok=True)


def ingest_file(
    *, session: Session, settings: Settings, actor: UserPublic, project_id: int, dataset_name: str, path: Path,
    filename: str, options: ReadOptions = ReadOptions(), types: dict[str, str] | None = None,
    metadata: VersionMetadata | None = None, progress: Progress | None = None,
) -> tuple[DatasetVersionPublic, bool]:
    """Read, type, hash, store and profile a file as the next version of a dataset.

    Returns the version and whether it already existed (the same content uploaded again is not stored twice).
    """
    require_role(actor, Role.builder, Role.admin)
    report = progress or (lambda _fraction, _message: None)
    metadata = metadata or VersionMetadata()
    _project(session, project_id)
    dataset_name = clean_name(dataset_name, what="dataset name", max_length=120)

    report(0.05, "Reading the file")
    raw = read_path(path, filename, limits=limits(settings), options=options)
    chosen = types or {name: kind.value for name, kind in infer_types(raw.frame, raw.decimal).items()}
    _check_request(chosen, metadata)
    report(0.35, "Converting column types")
    frame = apply_types(raw.frame, chosen, raw.decimal)
    kept = {name: chosen[name] for name in frame.columns}
    sha256 = content_hash(frame, kept)

    dataset = session.exec(select(Dataset).where(
        Dataset.project_id == project_id, func.lower(Dataset.name) == dataset_name.lower())).first()
    if dataset is not None:
        existing = session.exec(select(DatasetVersion).where(
            DatasetVersion.dataset_id == dataset.id, DatasetVersion.sha256 == sha256)).first()
        if existing is not None:
            return _version_public(session, existing), True

    report(0.5, "Storing the data")
    store = ArtifactStore(settings.artifacts_path)
    parquet = store.write_with(lambda target: frame.to_parquet(target, index=False), suffix=".parquet")
    report(0.65, "Profiling the columns")
    profile = profiling.profile_frame(frame, kept)
    report(0.95, "Recording the version")
    source_sha256 = ArtifactStore._hash_file(path)
    try:
        if dataset is None:
            dataset = Dataset(project_id=project_id, name=dataset_name, created_by_id=actor.id)
            session.add(dataset)
            session.flush()
        latest = _latest_version(session, dataset.id)
        version = DatasetVersion(
            dataset_id=dataset.id, number=(latest.number + 1) if latest else 1, sha256=sha256,
            parquet_sha256=parquet.sha256, parquet_bytes=parquet.size, rows=len(frame), columns=frame.shape[1],
            schema_=[{"name": name, "type": kind} for name, kind in kept.items()],
            sensitive_columns=list(metadata.sensitive_columns),
            meta={"source": metadata.source, "legal_basis": metadata.legal_basis, "owner": metadata.owner,
                  "ignored_columns": [n for n, k in chosen.items() if k == ColumnType.ignore]},
            profile=json.loads(json.dumps(profile, default=str)), source_filename=Path(filename).name[:255],
            source_format=raw.file_format, source_sha256=source_sha256, read_notes=list(raw.notes),
            parent_id=latest.id if latest else None, created_by_id=actor.id,
        )
        session.add(version)
        session.flush()
        audit.record_event(session, actor=actor, action="dataset.version.create", entity_type="dataset_version",
                           entity_id=version.id, details={"dataset": dataset.name, "number": version.number,
                                                          "sha256": sha256, "rows": version.rows})
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise Conflict("Someone saved a version of this dataset at the same moment. Try again.") from error
    from core import pipelines  # models retrained on each new version of their data (when their pipeline says so)

    pipelines.on_new_data(session=session, settings=settings, dataset_version_id=version.id)
    return _version_public(session, version), False


# ── reading back ────────────────────────────────────────────────────────────────────────────────────


def _latest_version(session: Session, dataset_id: int) -> DatasetVersion | None:
    return session.exec(select(DatasetVersion).where(DatasetVersion.dataset_id == dataset_id)
                        .order_by(col(DatasetVersion.number).desc())).first()


def _version_public(session: Session, version: DatasetVersion) -> DatasetVersionPublic:
    dataset = session.get(Dataset, version.dataset_id)
    creator = session.get(User, version.created_by_id)
    return DatasetVersionPublic(**version.model_dump(), dataset_name=dataset.name,
                                created_by_name=creator.username if creator else "?")


def list_datasets(*, session: Session, project_id: int) -> list[DatasetPublic]:
    found = []
    for dataset in session.exec(select(Dataset).where(Dataset.project_id == project_id).order_by(col(Dataset.name))):
        latest = _latest_version(session, dataset.id)
        count = session.exec(select(func.count()).where(DatasetVersion.dataset_id == dataset.id)).one()
        found.append(DatasetPublic(id=dataset.id, project_id=dataset.project_id, name=dataset.name,
                                   created_at=dataset.created_at, versions=count,
                                   latest_version_id=latest.id if latest else None,
                                   latest_number=latest.number if latest else None))
    return found


def get_dataset_by_name(*, session: Session, project_id: int, name: str) -> DatasetPublic:
    for dataset in list_datasets(session=session, project_id=project_id):
        if dataset.name.lower() == name.strip().lower():
            return dataset
    raise NotFound(f"There is no dataset called {name!r} in this project.")


def list_versions(*, session: Session, dataset_id: int) -> list[DatasetVersionPublic]:
    query = select(DatasetVersion).where(DatasetVersion.dataset_id == dataset_id).order_by(
        col(DatasetVersion.number).desc())
    return [_version_public(session, version) for version in session.exec(query)]


def get_version(*, session: Session, version_id: int) -> DatasetVersionPublic:
    version = session.get(DatasetVersion, version_id)
    if version is None:
        raise NotFound("That dataset version does not exist.")
    return _version_public(session, version)


def load_frame(*, settings: Settings, version: DatasetVersionPublic) -> pd.DataFrame:
    """The version's canonical data, read from the artifact store after its hash is checked."""
    path = ArtifactStore(settings.artifacts_path).verified_path(version.parquet_sha256)
    return pd.read_parquet(path)


def compare_versions(
    *, session: Session, settings: Settings, old_version_id: int, new_version_id: int, key: str | None = None
) -> dict[str, Any]:
    """What changed between two versions: columns, rows (by a key column), and each column's distribution."""
    old = get_version(session=session, version_id=old_version_id)
    new = get_version(session=session, version_id=new_version_id)
    return profiling.compare_versions(load_frame(settings=settings, version=old), old.types,
                                      load_frame(settings=settings, version=new), new.types, key=key or None)


# ── contracts ───────────────────────────────────────────────────────────────────────────────────────


def _contract_public(session: Session, contract: DataContract) -> DataContractPublic:
    creator = session.get(User, contract.created_by_id)
    return DataContractPublic(**contract.model_dump(), created_by_name=creator.username if creator else "?")


def save_contract(
    *, session: Session, settings: Settings, actor: UserPublic, version_id: int,
    content: dict[str, Any] | None = None,
) -> DataContractPublic:
    """Store a new contract number for the version's dataset: derived from the version, or as edited."""
    require_role(actor, Role.builder, Role.admin)
    version = get_version(session=session, version_id=version_id)
    if content is None:
        content = contracts.derive_contract(load_frame(settings=settings, version=version), version.types,
                                            version.profile)
    content = contracts.check_contract(content)
    latest = latest_contract(session=session, dataset_id=version.dataset_id)
    contract = DataContract(dataset_id=version.dataset_id, number=(latest.number + 1) if latest else 1,
                            content=json.loads(json.dumps(content, default=str)), based_on_version_id=version.id,
                            created_by_id=actor.id)
    session.add(contract)
    session.flush()
    audit.record_event(session, actor=actor, action="dataset.contract.save", entity_type="data_contract",
                       entity_id=contract.id, details={"dataset": version.dataset_name, "number": contract.number,
                                                       "based_on_version": version.number})
    session.commit()
    return _contract_public(session, contract)


def latest_contract(*, session: Session, dataset_id: int) -> DataContractPublic | None:
    contract = session.exec(select(DataContract).where(DataContract.dataset_id == dataset_id)
                            .order_by(col(DataContract.number).desc())).first()
    return _contract_public(session, contract) if contract else None


def validate_upload(
    *, session: Session, settings: Settings, dataset_id: int, filename: str, data: bytes,
    options: ReadOptions = ReadOptions(),
) -> dict[str, Any]:
    """Check a file against the dataset's newest contract: schema problems fail, shifts warn."""
    contract = latest_contract(session=session, dataset_id=dataset_id)
    if contract is None:
        raise InvalidInput("This dataset has no data contract yet. Derive one from a version first.")
    raw = read_table(data, filename, limits=limits(settings), options=options)
    report = contracts.validate_frame(raw.frame, contract.content, raw.decimal)
    return {**report, "contract_number": contract.number, "filename": Path(filename).name}
