"""The REST endpoint for online predictions, served by the same server as the app (``st.App`` routes).

``POST /api/v1/models/{name}/predict?project=P&version=N`` (or ``/api/v1/projects/{project}/models/{name}/predict``)
takes a JSON list of records and answers with one prediction per record, scored by the model's production
version (or the approved version ``N``) through :mod:`core.serving`, the same checks and the same batch record
as the Predict page. A personal API token (made on the Profile page) is sent as ``Authorization: Bearer ...``.
Every error is JSON ``{"error": {"status": ..., "message": ...}}`` with a plain message.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core import serving, tokens
from core.artifacts import ArtifactStore
from core.config import get_settings
from core.db import create_store_engine, session_scope
from core.errors import AuthenticationFailed, DomainError, IntegrityFailed, InvalidInput, NotAllowed, NotFound
from core.training import runs

PREFIX = "/api/v1"
STATUS = {NotFound: 404, serving.TooManyRecords: 413, InvalidInput: 400, NotAllowed: 403,
          AuthenticationFailed: 401, IntegrityFailed: 503}


@lru_cache(maxsize=4)
def _engine(url: str):
    # One engine (and its connection pool) per store for the life of the server, shared by every request.
    return create_store_engine(url)


_models: dict[tuple[str, int, int], Any] = {}
_models_lock = threading.Lock()


def _load(run):
    """A run's model, verified once and kept; loaded again (and so re-verified) when its file changes on disk."""
    settings = get_settings()
    store = ArtifactStore(settings.artifacts_path)
    try:
        stat = store.path_for(run.model_sha256).stat()
        key = (run.model_sha256, stat.st_mtime_ns, stat.st_size)
    except (OSError, DomainError):
        key = None
    if key is not None and key in _models:
        return _models[key]
    model = runs.load_run_model(settings=settings, run=run)
    if key is not None:
        with _models_lock:
            for old in [k for k in _models if k[0] == run.model_sha256]:
                del _models[old]
            while len(_models) >= 8:
                del _models[next(iter(_models))]
            _models[key] = model
    return model


def _error(status: int, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="steward"'} if status == 401 else None
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status, headers=headers)


def _status(error: DomainError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 400


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _version_number(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise InvalidInput(f"version must be a version number such as 3, not {raw!r}.")
    return int(raw)


def _score(secret: str, body: bytes, model_name: str, project: str | None,
           version: str | None) -> tuple[dict[str, Any], int, Any]:
    """The answer, and the batch and user its monitoring report is then made for."""
    settings = get_settings()
    with session_scope(_engine(settings.resolved_database_url)) as session:
        user = tokens.user_for_token(session=session, secret=secret)
        if user is None:
            raise AuthenticationFailed("The API token is unknown or was revoked. Make a new one on your Profile page.")
        try:
            records = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InvalidInput(f"The request body is not valid JSON ({error}). Send a JSON list of records, e.g. "
                               '[{"age": 42, "region": "North"}].') from None
        owner = serving.find_project_for_model(session=session, model_name=model_name, project=project)
        result = serving.score_records(session=session, settings=settings, actor=user, project_id=owner.id,
                                       model_name=model_name, records=records,
                                       version_number=_version_number(version), channel="api",
                                       source="REST API", loader=_load, monitor=False)
        batch = result.batch
        answer = {"model": batch.model_name, "version": batch.version_number, "project": owner.name,
                  "batch_id": batch.id, "rows": batch.rows, "predictions": serving.public_predictions(result),
                  "extra_columns": result.report["extra_columns"],
                  "unseen_categories": result.report["unseen_categories"], "warnings": result.report["warnings"]}
        return answer, batch.id, user


async def predict(request: Request) -> JSONResponse:
    """Score a JSON list of records with a registered model."""
    secret = _bearer(request)
    if secret is None:
        return _error(401, "Send your API token as 'Authorization: Bearer <token>'. Make one on your Profile page.")
    settings = get_settings()
    # A rough cap on the body before it is read: each record needs at least a few bytes.
    limit = max(settings.max_upload_bytes, settings.api_max_records * 10)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return _error(413, f"The request is larger than {limit // (1024 * 1024)} MB. Send fewer records per "
                           "request, or score them as a file on the Predict page.")
    body = await request.body()
    if len(body) > limit:
        return _error(413, f"The request is larger than {limit // (1024 * 1024)} MB. Send fewer records per request.")
    params = request.path_params
    project = params.get("project", request.query_params.get("project"))
    try:
        answer, batch_id, user = await run_in_threadpool(_score, secret, body, params["name"], project,
                                                         request.query_params.get("version"))
    except DomainError as error:
        return _error(_status(error), str(error))
    except Exception as error:  # noqa: BLE001 - a client gets a plain message, the log gets the details
        logging.getLogger("steward.api").exception("prediction request failed")
        if os.environ.get("STEWARD_DEBUG"):
            raise
        return _error(500, f"Steward could not score this request because of an unexpected problem "
                           f"({type(error).__name__}). The administrator can find the details in the server log.")
    # The batch's monitoring report is made apart from the answer: the client never waits for it.
    _monitoring().submit(_monitor, batch_id, user)
    return JSONResponse(answer)


@lru_cache(maxsize=1)
def _monitoring() -> ThreadPoolExecutor:
    # One thread, in arrival order: under a burst of requests the reports queue up (a batch id each) instead of
    # each taking a database connection and CPU from the requests being answered.
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="steward-monitoring")


def _monitor(batch_id: int, user) -> None:
    from core import monitoring

    settings = get_settings()
    try:
        with session_scope(_engine(settings.resolved_database_url)) as session:
            monitoring.batch_stored(session=session, settings=settings, actor=user, batch_id=batch_id)
    except Exception:  # noqa: BLE001 - the batch is recorded; its report can be made again from the Monitoring page
        logging.getLogger("steward.api").exception("monitoring report of batch %s failed", batch_id)


def wait_for_monitoring(timeout: float = 60) -> None:
    """Return once the monitoring reports queued so far are done (tests and shutdown)."""
    _monitoring().submit(lambda: None).result(timeout=timeout)


async def openapi(_request: Request) -> JSONResponse:
    """The OpenAPI 3.1 description of this API."""
    return JSONResponse(openapi_document(get_settings().app_url))


def openapi_document(server_url: str) -> dict[str, Any]:
    error = {"$ref": "#/components/schemas/Error"}
    responses = {
        "200": {"description": "One prediction per record, in order.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Predictions"}}}},
        "400": {"description": "Malformed JSON, or records that do not fit the model's input schema (a missing "
                               "column, a value of the wrong type).",
                "content": {"application/json": {"schema": error}}},
        "401": {"description": "No API token, or an unknown or revoked one.",
                "content": {"application/json": {"schema": error}}},
        "403": {"description": "The token's owner may not score (needs the builder or admin role).",
                "content": {"application/json": {"schema": error}}},
        "404": {"description": "Unknown project or model, or the model has no production version (and no version "
                               "was chosen).", "content": {"application/json": {"schema": error}}},
        "413": {"description": "More records than STEWARD_API_MAX_RECORDS (default 10,000) in one request.",
                "content": {"application/json": {"schema": error}}},
        "503": {"description": "The model file failed its integrity check and was not used.",
                "content": {"application/json": {"schema": error}}},
    }
    body = {"required": True, "content": {"application/json": {"schema": {"oneOf": [
        {"type": "array", "items": {"$ref": "#/components/schemas/Record"}, "minItems": 1},
        {"type": "object", "required": ["records"],
         "properties": {"records": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}}}}]},
        "example": [{"age": 42, "sex": "female", "region": "North", "education": "tertiary", "hours_usual": 38.5,
                     "household_size": 3, "urban": "yes", "months_since_last_job": 4}]}}}
    name = {"name": "name", "in": "path", "required": True, "description": "The registered model's name.",
            "schema": {"type": "string"}}
    version = {"name": "version", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1},
               "description": "Score with this approved version instead of the production version."}
    operation = {"requestBody": body, "responses": responses, "security": [{"bearer": []}], "tags": ["predictions"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Steward predictions", "version": "1",
                 "description": "Online predictions from the registry: the production version of a model (or a "
                                "chosen approved version) scores a JSON list of records. The records are checked "
                                "with the model's input schema and the dataset's data contract, exactly as a file "
                                "on the Predict page, and every request is logged as a prediction batch."},
        "servers": [{"url": server_url}],
        "paths": {
            f"{PREFIX}/models/{{name}}/predict": {"post": {
                **operation, "operationId": "predict", "summary": "Score records with a model",
                "parameters": [name, {"name": "project", "in": "query", "required": False,
                                      "schema": {"type": "string"},
                                      "description": "Project name or id; needed only when several projects have a "
                                                     "model of this name."}, version]}},
            f"{PREFIX}/projects/{{project}}/models/{{name}}/predict": {"post": {
                **operation, "operationId": "predictInProject", "summary": "Score records with a model of a project",
                "parameters": [{"name": "project", "in": "path", "required": True, "schema": {"type": "string"},
                                "description": "Project name or id."}, name, version]}},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "A personal API token from the Profile page."}},
            "schemas": {
                "Record": {"type": "object", "description": "One record: the model's input columns (see its model "
                                                            "card) with single values; other fields are ignored.",
                           "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
                "Prediction": {"type": "object", "required": ["prediction"], "properties": {
                    "prediction": {"type": ["string", "number"]},
                    "probabilities": {"type": "object", "additionalProperties": {"type": "number"},
                                      "description": "Each class's probability (classification models)."},
                    "coding": {"type": "string", "enum": ["automatic", "manual"],
                               "description": "Coding models: whether the code may be used as it is."}}},
                "Predictions": {"type": "object", "properties": {
                    "model": {"type": "string"}, "version": {"type": "integer"}, "project": {"type": "string"},
                    "batch_id": {"type": "integer"}, "rows": {"type": "integer"},
                    "predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}},
                    "extra_columns": {"type": "array", "items": {"type": "string"}},
                    "unseen_categories": {"type": "object"},
                    "warnings": {"type": "array", "items": {"type": "string"}}}},
                "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                    "status": {"type": "integer"}, "message": {"type": "string"}}}}},
            },
        },
    }


ROUTES = [
    Route(f"{PREFIX}/models/{{name}}/predict", predict, methods=["POST"]),
    Route(f"{PREFIX}/projects/{{project}}/models/{{name}}/predict", predict, methods=["POST"]),
    Route(f"{PREFIX}/openapi.json", openapi, methods=["GET"]),
]
