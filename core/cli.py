"""The ``steward`` command: the same services as the app, for scripts, cron and the pipeline.

Every command prints a short human summary, or JSON with ``--json``. A refusal prints one plain line on
stderr and exits with code 2; no traceback reaches the user.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import Any

import click

from core import audit, auth, datasets, jobs, projects, registry
from core.config import Settings, get_settings
from core.data.reading import ReadOptions
from core.db import create_store_engine, migrate, session_scope
from core.errors import DomainError
from core.models import Role, UserPublic
from core.training import runs


class Env:
    """What every command needs: settings, a migrated store, and the output mode."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.settings: Settings = get_settings()
        self.settings.ensure_home()
        migrate(self.settings.resolved_database_url)
        self.engine = create_store_engine(self.settings.resolved_database_url)

    def session(self):
        return session_scope(self.engine)

    def actor(self, session, username: str) -> UserPublic:
        user = auth.get_user_by_name(session=session, username=username)
        if not user.is_active:
            raise DomainError(f"The account {username!r} is deactivated.")
        return user

    def emit(self, data: Any, text: str) -> None:
        click.echo(json.dumps(data, indent=2, default=str) if self.as_json else text)


def _fail(message: str) -> None:
    click.echo(f"steward: {message}", err=True)
    sys.exit(2)


def command(function: Callable) -> Callable:
    """Turn domain errors (and other expected failures) into one line on stderr and exit code 2."""

    @wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except DomainError as error:
            _fail(str(error))
        except ValueError as error:  # e.g. a setting with a bad value
            _fail(str(error).splitlines()[0])
        except OSError as error:
            _fail(f"{error.strerror or error}: {error.filename or ''}".strip(": "))
        except Exception as error:  # noqa: BLE001 - never a traceback for a user
            if os.environ.get("STEWARD_DEBUG"):
                raise
            _fail(f"unexpected problem ({type(error).__name__}: {str(error).splitlines()[0][:300]}); "
                  "run again with STEWARD_DEBUG=1 for details")

    return wrapper


pass_env = click.make_pass_decorator(Env)


@click.group()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.pass_context
def cli(ctx: click.Context, as_json: bool) -> None:
    """Steward: governed machine learning for domain experts."""
    try:
        ctx.obj = Env(as_json)
    except Exception as error:  # noqa: BLE001 - the store could not be opened: say so in one line
        _fail(f"cannot open the store ({type(error).__name__}: {str(error).splitlines()[0]})")


@cli.command("migrate")
@pass_env
@command
def migrate_command(env: Env) -> None:
    """Bring the store up to the newest schema (done automatically by every command)."""
    env.emit({"database": env.settings.resolved_database_url, "ok": True}, "The store is up to date.")


# ── users ───────────────────────────────────────────────────────────────────────────────────────────


@cli.group()
def user() -> None:
    """Manage accounts."""


def _password_from_env_or_prompt() -> str:
    password = os.environ.get("STEWARD_PASSWORD")
    if password:
        return password
    if not sys.stdin.isatty():
        raise DomainError("No password given: set STEWARD_PASSWORD or run the command in a terminal.")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@user.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice([r.value for r in Role]))
@click.option("--display-name", default="")
@click.option("--email", default=None)
@pass_env
@command
def user_add(env: Env, name: str, roles: tuple[str, ...], display_name: str, email: str | None) -> None:
    """Add a user NAME with one or more roles (password from STEWARD_PASSWORD or a prompt)."""
    password = _password_from_env_or_prompt()
    with env.session() as session:
        if not auth.has_any_user(session=session) and Role.admin in roles:
            created = auth.create_first_admin(session=session, username=name, password=password,
                                              display_name=display_name)
            if set(roles) != {Role.admin}:
                created = auth.set_roles(session=session, actor=created, user_id=created.id, roles=roles)
        else:
            created = auth.create_user(session=session, actor=auth.OPERATOR, username=name, password=password,
                                       roles=roles, display_name=display_name, email=email)
    env.emit(created.model_dump(), f"Added user {created.username} ({', '.join(created.roles)}).")


@user.command("list")
@pass_env
@command
def user_list(env: Env) -> None:
    """List users with their roles and state."""
    with env.session() as session:
        users = auth.list_users(session=session)
    lines = [
        f"{u.username:<20} {','.join(u.roles):<32} {'active' if u.is_active else 'deactivated'}"
        + (f"  locked until {u.locked_until:%H:%M}" if u.locked_until else "")
        for u in users
    ]
    env.emit([u.model_dump() for u in users], "\n".join(lines) or "No users yet.")


# ── projects ────────────────────────────────────────────────────────────────────────────────────────


@cli.group()
def project() -> None:
    """Manage projects."""


@project.command("create")
@click.argument("name")
@click.option("--user", "username", required=True, help="Who creates it (becomes the owner).")
@click.option("--description", default="")
@pass_env
@command
def project_create(env: Env, name: str, username: str, description: str) -> None:
    """Create a project NAME owned by --user."""
    with env.session() as session:
        created = projects.create_project(session=session, actor=env.actor(session, username), name=name,
                                          description=description)
    env.emit(created.model_dump(), f"Created project {created.name} (id {created.id}).")


@project.command("list")
@click.option("--all", "include_archived", is_flag=True, help="Include archived projects.")
@pass_env
@command
def project_list(env: Env, include_archived: bool) -> None:
    """List projects."""
    with env.session() as session:
        found = projects.list_projects(session=session, include_archived=include_archived)
    lines = [f"{p.id:>4}  {p.name:<30} {p.owner_name:<16} {p.status}" for p in found]
    env.emit([p.model_dump() for p in found], "\n".join(lines) or "No projects yet.")


# ── data ────────────────────────────────────────────────────────────────────────────────────────────


@cli.group()
def data() -> None:
    """Add, list and validate datasets."""


def _version_summary(version) -> dict:
    return {"dataset": version.dataset_name, "version": version.number, "id": version.id,
            "sha256": version.sha256, "rows": version.rows, "columns": version.columns}


@data.command("add")
@click.argument("project_name")
@click.argument("dataset_name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--user", "username", required=True)
@click.option("--sensitive", multiple=True, help="A sensitive column (repeat for several).")
@click.option("--source", default="", help="Where the data comes from.")
@click.option("--legal-basis", default="", help="The legal basis for using it.")
@click.option("--owner", default="", help="Who owns the data.")
@click.option("--sheet", default=None, help="Excel sheet to read.")
@click.option("--type", "type_overrides", multiple=True, metavar="COLUMN=TYPE",
              help="Set a column's type instead of the guess (numeric, categorical, text, datetime, identifier, "
                   "boolean, ignore); repeat for several.")
@pass_env
@command
def data_add(env: Env, project_name: str, dataset_name: str, file: Path, username: str, sensitive: tuple[str, ...],
             source: str, legal_basis: str, owner: str, sheet: str | None, type_overrides: tuple[str, ...]) -> None:
    """Add FILE as the next version of DATASET in PROJECT (column types are guessed unless --type is given)."""
    types = None
    if type_overrides:
        preview = datasets.preview_upload(settings=env.settings, filename=file.name, data=file.read_bytes(),
                                          options=ReadOptions(sheet=sheet))
        types = dict(preview.types)
        for item in type_overrides:
            column, _, kind = item.partition("=")
            if column not in types:
                raise DomainError(f"--type {item}: the file has no column {column!r}.")
            types[column] = kind
    with env.session() as session:
        actor = env.actor(session, username)
        target = projects.get_project_by_name(session=session, name=project_name)
        version, duplicate = datasets.ingest_file(
            session=session, settings=env.settings, actor=actor, project_id=target.id, dataset_name=dataset_name,
            path=file, filename=file.name, options=ReadOptions(sheet=sheet), types=types,
            metadata=datasets.VersionMetadata(source=source, legal_basis=legal_basis, owner=owner,
                                              sensitive_columns=list(sensitive)))
    summary = {**_version_summary(version), "duplicate": duplicate}
    text = (f"{file.name} is already version {version.number} of {version.dataset_name}; nothing stored."
            if duplicate else f"Stored version {version.number} of {version.dataset_name} (id {version.id}): "
            f"{version.rows} rows, {version.columns} columns, sha256 {version.sha256}")
    env.emit(summary, text)


@data.command("list")
@click.argument("project_name")
@pass_env
@command
def data_list(env: Env, project_name: str) -> None:
    """List the datasets of PROJECT with their versions."""
    with env.session() as session:
        target = projects.get_project_by_name(session=session, name=project_name)
        found = [(d, datasets.list_versions(session=session, dataset_id=d.id))
                 for d in datasets.list_datasets(session=session, project_id=target.id)]
    rows = [_version_summary(v) | {"created_at": v.created_at, "by": v.created_by_name} for _, vs in found for v in vs]
    lines = [f"{r['dataset']:<24} v{r['version']:<3} {r['rows']:>9} rows  {r['columns']:>4} cols  {r['sha256'][:12]}"
             for r in rows]
    env.emit(rows, "\n".join(lines) or "No datasets yet.")


@data.command("contract")
@click.argument("project_name")
@click.argument("dataset_name")
@click.option("--user", "username", required=True)
@click.option("--version", "number", type=int, default=None, help="Version to derive from (default: the newest).")
@pass_env
@command
def data_contract(env: Env, project_name: str, dataset_name: str, username: str, number: int | None) -> None:
    """Derive a new data contract for DATASET from one of its versions."""
    with env.session() as session:
        actor = env.actor(session, username)
        chosen = _find_version(session, project_name, dataset_name, number)
        saved = datasets.save_contract(session=session, settings=env.settings, actor=actor, version_id=chosen.id)
    env.emit({"dataset": chosen.dataset_name, "contract": saved.number, "based_on_version": chosen.number,
              "columns": list(saved.content["columns"])},
             f"Saved contract {saved.number} of {chosen.dataset_name}, derived from version {chosen.number}.")


@data.command("validate")
@click.argument("project_name")
@click.argument("dataset_name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_env
@command
def data_validate(env: Env, project_name: str, dataset_name: str, file: Path) -> None:
    """Check FILE against the newest data contract of DATASET; exit code 1 when it fails."""
    with env.session() as session:
        target = projects.get_project_by_name(session=session, name=project_name)
        dataset = datasets.get_dataset_by_name(session=session, project_id=target.id, name=dataset_name)
        report = datasets.validate_upload(session=session, settings=env.settings, dataset_id=dataset.id,
                                          filename=file.name, data=file.read_bytes())
    problems, warnings = len(report["failures"]), len(report["warnings"])
    lines = [f"{file.name}: {'passes' if report['ok'] else 'FAILS'} contract {report['contract_number']} "
             f"({problems} problem{'s' * (problems != 1)}, {warnings} warning{'s' * (warnings != 1)})"]
    lines += [f"  problem: {item['message']}" for item in report["failures"]]
    lines += [f"  warning: {item['message']}" for item in report["warnings"]]
    env.emit(report, "\n".join(lines))
    if not report["ok"]:
        sys.exit(1)


# ── training ────────────────────────────────────────────────────────────────────────────────────────


def _run_summary(run) -> dict:
    metrics = (run.evaluation or {}).get("metrics", {})
    return {"run_id": run.id, "status": run.status, "task": run.task, "target": run.target,
            "dataset": f"{run.dataset_name} v{run.dataset_number}", "chosen_model": run.chosen_candidate,
            "primary_metric": run.primary_metric, "test_metrics": metrics, "baseline": run.baseline,
            "leaderboard": run.leaderboard, "prediction_hash": run.prediction_hash,
            "model_sha256": run.model_sha256, "error": run.error}


def _run_text(run) -> str:
    if run.status != "succeeded":
        return f"Run {run.id} {run.status}: {run.error or ''}"
    metric = run.evaluation["metrics"][run.primary_metric]
    lines = [f"Run {run.id}: {run.task} model for {run.target!r} on {run.dataset_name} v{run.dataset_number}",
             f"Chosen: {run.chosen_candidate}. Test {run.primary_metric} {metric['value']:.4f} "
             f"(95% interval {metric['low']:.4f}–{metric['high']:.4f}); "
             f"baseline {run.baseline[run.primary_metric]:.4f}",
             "Leaderboard (cross-validation mean ± std):"]
    lines += [f"  {row['candidate']:<32} {row['mean']:.4f} ± {row['std']:.4f}" for row in run.leaderboard]
    return "\n".join(lines)


def _progress(env: Env):
    if env.as_json:
        return None
    return lambda fraction, message: click.echo(f"[{fraction:>4.0%}] {message}", err=True)


@cli.command("train")
@click.argument("project_name")
@click.argument("dataset_name")
@click.option("--target", required=True, help="The column to predict.")
@click.option("--user", "username", required=True)
@click.option("--version", "number", type=int, default=None, help="Dataset version (default: the newest).")
@click.option("--budget", type=float, default=60.0, show_default=True, help="Search time budget in seconds.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--metric", default=None, help="Metric to choose the model by (default depends on the task).")
@click.option("--task", type=click.Choice(["binary", "multiclass", "regression", "text"]), default=None)
@click.option("--exclude", multiple=True, help="A column not to use (repeat for several).")
@pass_env
@command
def train(env: Env, project_name: str, dataset_name: str, target: str, username: str, number: int | None,
          budget: float, seed: int, metric: str | None, task: str | None, exclude: tuple[str, ...]) -> None:
    """Train a model for --target on DATASET with the automated search (runs here, not in the app)."""
    with env.session() as session:
        actor = env.actor(session, username)
        version = _find_version(session, project_name, dataset_name, number)
        run = runs.create_run(session=session, settings=env.settings, actor=actor, version_id=version.id,
                              target=target, task=task, budget_seconds=budget, metric=metric, excluded=exclude,
                              seed=seed)
        run = runs.run_training(session=session, settings=env.settings, run_id=run.id, actor=actor,
                                progress=_progress(env))
    env.emit(_run_summary(run), _run_text(run))


def _find_version(session, project_name: str, dataset_name: str, number: int | None):
    target = projects.get_project_by_name(session=session, name=project_name)
    dataset = datasets.get_dataset_by_name(session=session, project_id=target.id, name=dataset_name)
    versions = datasets.list_versions(session=session, dataset_id=dataset.id)
    chosen = next((v for v in versions if number in (None, v.number)), None)
    if chosen is None:
        raise DomainError(f"{dataset.name} has no version {number}.")
    return chosen


@cli.command("reproduce")
@click.argument("run_id", type=int)
@click.option("--user", "username", default=None, help="Who asks (default: the command-line operator).")
@pass_env
@command
def reproduce_command(env: Env, run_id: int, username: str | None) -> None:
    """Re-execute RUN and certify that it gives the same predictions; exit code 1 when it does not."""
    with env.session() as session:
        actor = env.actor(session, username) if username else auth.OPERATOR
        certificate = runs.start_reproduction(session=session, runner=None, actor=actor, run_id=run_id)
        certificate = runs.reproduce(session=session, settings=env.settings, certificate_id=certificate.id,
                                     actor=actor, progress=_progress(env))
    verdict = "passed: identical predictions" if certificate.status == "passed" else "FAILED"
    env.emit(certificate.model_dump(), f"Reproducibility certificate {certificate.id} for run {run_id} {verdict} "
                                       f"(prediction hash {certificate.reproduced_hash}).")
    if certificate.status != "passed":
        sys.exit(1)


@cli.command("evaluate")
@click.argument("run_id", type=int)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--user", "username", required=True)
@pass_env
@command
def evaluate_command(env: Env, run_id: int, file: Path, username: str) -> None:
    """Evaluate RUN's model on another labelled FILE (same metrics, intervals and subgroups)."""
    with env.session() as session:
        actor = env.actor(session, username)
        result = runs.evaluate_on_file(session=session, settings=env.settings, actor=actor, run_id=run_id,
                                       filename=file.name, data=file.read_bytes())
    metrics = result.result["metrics"]
    text = [f"Run {run_id} on {file.name} ({result.rows:,} rows):"]
    text += [f"  {name:<20} {m['value']:.4f} (95% interval {m['low']:.4f}–{m['high']:.4f})"
             for name, m in metrics.items() if m.get("value") is not None]
    env.emit(result.model_dump(), "\n".join(text))


@cli.command("explain")
@click.argument("run_id", type=int)
@pass_env
@command
def explain_command(env: Env, run_id: int) -> None:
    """Global explanation of RUN's model: mean |SHAP| per input column (aggregated, no records)."""
    with env.session() as session:
        found = runs.get_explanation(session=session, run_id=run_id)
    result = found.result
    summary = {"run_id": run_id, "method": found.method, "scale": found.scale, "rows_explained": found.rows_explained,
               "seed": found.seed, "additive": found.additive, "importance": result["importance"],
               "stability": {k: v for k, v in found.stability.items() if k != "rankings"}}
    lines = [f"Run {run_id}: {found.method} on {found.rows_explained} test rows (mean |SHAP|, {found.scale} scale)"]
    lines += [f"  {column:<28} {value:.4f}" for column, value in result["overall"].items()]
    overlap = found.stability.get("mean_overlap")
    if overlap is not None:
        lines.append(f"Top-{found.stability['top']} features agree across {found.stability['folds']} folds: "
                     f"{overlap:.0%} overlap")
    env.emit(summary, "\n".join(lines))


# ── predictions ─────────────────────────────────────────────────────────────────────────────────────


@cli.command("predict")
@click.argument("model_name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the predictions: a .csv or .parquet file.")
@click.option("--user", "username", required=True)
@click.option("--project", "project_name", default=None,
              help="Project name or id (needed only when several projects have a model of this name).")
@click.option("--version", "number", type=int, default=None,
              help="An approved version to score with (default: the production version).")
@click.option("--json", "json_flag", is_flag=True, help="Print JSON for scripts (same as steward --json).")
@pass_env
@command
def predict_command(env: Env, model_name: str, file: Path, out: Path, username: str, project_name: str | None,
                    number: int | None, json_flag: bool) -> None:
    """Score FILE with MODEL's production version (or --version) and write the predictions to --out."""
    from core import serving

    env.as_json = env.as_json or json_flag
    if out.resolve() == file.resolve():
        raise DomainError("--out is the input file; choose another file name for the predictions.")
    with env.session() as session:
        actor = env.actor(session, username)
        owner = serving.find_project_for_model(session=session, model_name=model_name, project=project_name)
        result = serving.score_file(session=session, settings=env.settings, actor=actor, project_id=owner.id,
                                    model_name=model_name, version_number=number, filename=file.name, path=file,
                                    channel="cli")
    out.parent.mkdir(parents=True, exist_ok=True)
    written = serving.write_export(result.output, out)
    batch, report = result.batch, result.report
    data = {"batch_id": batch.id, "project": owner.name, "model": batch.model_name, "version": batch.version_number,
            "rows": batch.rows, "out": str(out), "format": written, "input_sha256": batch.input_sha256,
            "extra_columns": report["extra_columns"], "unseen_categories": report["unseen_categories"],
            "warnings": report["warnings"], "predictions": batch.summary["predictions"]}
    lines = [f"Scored {batch.rows:,} rows of {file.name} with {batch.model_name} v{batch.version_number} "
             f"(batch {batch.id}); predictions written to {out}."]
    if report["extra_columns"]:
        lines.append(f"  Ignored columns the model does not use: {', '.join(report['extra_columns'])}")
    lines += [f"  warning: {message}" for message in report["warnings"]]
    env.emit(data, "\n".join(lines))


# ── registry ────────────────────────────────────────────────────────────────────────────────────────


def _model_in(session, model_name: str, project_name: str | None):
    """The registered model MODEL, in --project when given (a name, or an id)."""
    project_id = None
    if project_name is not None:
        try:
            project_id = projects.get_project_by_name(session=session, name=project_name).id
        except DomainError:
            if not project_name.isdigit():
                raise
            project_id = projects.get_project(session=session, project_id=int(project_name)).id
    return registry.find_model(session=session, name=model_name, project_id=project_id)


def _version_summary_line(version) -> str:
    return f"{version.label} ({registry.status_label(version)})"


@cli.command("register")
@click.argument("run_id", type=int)
@click.option("--model", "model_name", required=True, help="The model's name (created on first use).")
@click.option("--user", "username", required=True)
@click.option("--json", "json_flag", is_flag=True, help="Print JSON for scripts (same as steward --json).")
@pass_env
@command
def register_command(env: Env, run_id: int, model_name: str, username: str, json_flag: bool) -> None:
    """Register finished RUN as the next version of --model in the run's project."""
    env.as_json = env.as_json or json_flag
    with env.session() as session:
        version = registry.register_run(session=session, actor=env.actor(session, username), run_id=run_id,
                                        model_name=model_name)
    env.emit(version.model_dump(), f"Registered run {run_id} as {_version_summary_line(version)}.")


@cli.command("promote")
@click.argument("model_name")
@click.argument("number", type=int)
@click.option("--user", "username", required=True, help="A manager or administrator who did not build it.")
@click.option("--project", "project_name", default=None,
              help="Project name or id (needed only when several projects have a model of this name).")
@click.option("--reason", default="", help="Why it goes into production (kept with the status change).")
@click.option("--json", "json_flag", is_flag=True, help="Print JSON for scripts (same as steward --json).")
@pass_env
@command
def promote_command(env: Env, model_name: str, number: int, username: str, project_name: str | None, reason: str,
                    json_flag: bool) -> None:
    """Promote version NUMBER of MODEL to production once its gates pass; the previous one becomes the fallback."""
    env.as_json = env.as_json or json_flag
    with env.session() as session:
        actor = env.actor(session, username)
        model = _model_in(session, model_name, project_name)
        version = registry.find_version(session=session, model_id=model.id, number=number)
        promoted = registry.promote_version(session=session, settings=env.settings, actor=actor,
                                            version_id=version.id, reason=reason)
        report = registry.evaluate_gates(session=session, settings=env.settings, version_id=promoted.id)
        fallback = registry.get_model(session=session, model_id=model.id).fallback
    lines = [f"{promoted.label} is in production."
             + (f" {fallback.label} is kept as the fallback." if fallback else "")]
    lines += [f"  {gate.verdict:<10} {gate.title}: {gate.reason}" for gate in report.gates]
    env.emit({**promoted.model_dump(), "fallback": fallback.number if fallback else None,
              "gates": [{"gate": g.gate, "title": g.title, "verdict": g.verdict, "reason": g.reason,
                         "override": g.override.reason if g.override else None} for g in report.gates]},
             "\n".join(lines))


@cli.command("rollback")
@click.argument("model_name")
@click.option("--user", "username", required=True, help="A manager or administrator.")
@click.option("--project", "project_name", default=None,
              help="Project name or id (needed only when several projects have a model of this name).")
@click.option("--reason", default="", help="Why (kept with the status changes).")
@click.option("--json", "json_flag", is_flag=True, help="Print JSON for scripts (same as steward --json).")
@pass_env
@command
def rollback_command(env: Env, model_name: str, username: str, project_name: str | None, reason: str,
                     json_flag: bool) -> None:
    """Put MODEL's fallback version back into production in one step."""
    env.as_json = env.as_json or json_flag
    with env.session() as session:
        actor = env.actor(session, username)
        model = _model_in(session, model_name, project_name)
        before = registry.get_model(session=session, model_id=model.id).production
        restored = registry.rollback(session=session, actor=actor, model_id=model.id, reason=reason)
    env.emit({**restored.model_dump(), "retired": before.number if before else None},
             f"Rolled {model.name} back: {restored.label} is in production again"
             + (f", v{before.number} is retired." if before else "."))


@cli.group("models")
def models_group() -> None:
    """Registered models and their versions."""


@models_group.command("list")
@click.argument("project_name")
@click.option("--json", "json_flag", is_flag=True, help="Print JSON for scripts (same as steward --json).")
@pass_env
@command
def models_list(env: Env, project_name: str, json_flag: bool) -> None:
    """List PROJECT's models with every version, its status and test result."""
    env.as_json = env.as_json or json_flag
    with env.session() as session:
        target = projects.get_project_by_name(session=session, name=project_name)
        found = registry.list_models(session=session, project_id=target.id)
        scores = {v.id: runs.get_run(session=session, run_id=v.run_id) for m in found for v in m.versions}
    data, lines = [], []
    for model in found:
        lines.append(f"{model.name}: " + (f"v{model.production.number} in production" if model.production
                                           else "nothing in production"))
        versions = []
        for version in model.versions:
            run = scores[version.id]
            metric = ((run.evaluation or {}).get("metrics", {}).get(run.primary_metric) or {}).get("value")
            versions.append({"number": version.number, "status": version.status, "fallback": version.is_fallback,
                             "run_id": version.run_id, "metric": run.primary_metric, "test_value": metric,
                             "created_by": version.created_by_name, "created_at": version.created_at})
            shown = "—" if metric is None else f"{metric:.4f}"
            lines.append(f"  v{version.number:<4} {registry.status_label(version):<20} run {version.run_id:<5} "
                         f"{run.primary_metric} {shown}  by {version.created_by_name} "
                         f"{version.created_at:%Y-%m-%d}")
        data.append({"model": model.name, "production": model.production.number if model.production else None,
                     "fallback": model.fallback.number if model.fallback else None, "versions": versions})
    env.emit(data, "\n".join(lines) or f"No models registered in {target.name} yet.")


# ── monitoring ──────────────────────────────────────────────────────────────────────────────────────


def _share(value) -> str:
    return "—" if value is None else f"{value:.0%}"


def _performance_text(report) -> str:
    found = report.primary_performance()
    if not found:
        return "—"
    low, high = found.get("low"), found.get("high")
    interval = f" ({low:.3f}–{high:.3f})" if low is not None and high is not None else ""
    return f"{registry.SHORT_METRICS.get(found['metric'], found['metric'])} {found['value']:.3f}{interval}"


def _report_data(report) -> dict:
    return {"batch_id": report.batch_id, "scored_at": report.batch_created_at, "version": report.version_number,
            "channel": report.channel, "rows": report.rows, "status": report.status, "judged": report.judged,
            "method": report.method, "drift_share": report.drift_share, "drifted_columns": report.drifted_columns,
            "dataset_drift": report.dataset_drift, "columns": report.columns,
            "prediction_drift": report.prediction_drift, "quality": report.quality,
            "performance": report.performance, "html_sha256": report.html_sha256, "error": report.error,
            "notes": report.notes}


def _report_lines(report) -> list[str]:
    lines = [f"{report.model_name} v{report.version_number}, batch {report.batch_id} ({report.rows:,} rows, "
             f"{report.channel}, {report.batch_created_at:%Y-%m-%d %H:%M}): report {report.status}"
             + (f" — {report.error}" if report.error else "")]
    if not report.finished:
        return lines
    lines.append(f"  {report.method}")
    if report.judged:
        lines.append(f"  Drifted input columns: {report.drifted_columns} of {len(report.columns)} "
                     f"({_share(report.drift_share)}; the batch counts as drifted at "
                     f"{report.drift_share_threshold:.0%}): {'DRIFT' if report.dataset_drift else 'no drift'}")
    for column in report.columns:
        score = "—" if column.get("score") is None else f"{column['score']:.4f}"
        threshold = "" if column.get("threshold") is None else f" (threshold {column['threshold']:.3g})"
        lines.append(f"    {column['column']:<28} {column.get('method_name') or '—':<30} {score:>8}{threshold}  "
                     f"{column['verdict']}")
    for column in report.prediction_drift.get("columns") or []:
        score = "—" if column.get("score") is None else f"{column['score']:.4f}"
        lines.append(f"  Prediction drift, {column['column']}: {column.get('method_name') or '—'} {score}  "
                     f"{column['verdict']}")
    lines += [f"  Quality: {finding}" for finding in (report.quality.get("findings") or [])]
    if report.performance:
        perf = report.performance
        lines.append(f"  Performance on {perf['labelled_rows']:,} labelled rows ({perf['matched_by']}): "
                     f"{_performance_text(report)}")
        coding = perf.get("coding") or {}
        if coding:
            auto = coding.get("automatic") or {}
            accuracy = "—" if auto.get("accuracy") is None else f"{auto['accuracy']:.1%}"
            lines.append(f"  Automation rate {_share(coding.get('automation_rate'))}; accuracy of the automatically "
                         f"coded records {accuracy} ({auto.get('labelled', 0):,} with a true code)")
    lines += [f"  note: {note}" for note in report.notes]
    return lines


@cli.command("monitor")
@click.argument("model_name")
@click.option("--project", "project_name", default=None,
              help="Project name or id (needed only when several projects have a model of this name).")
@click.option("--batch", "batch_id", type=int, default=None, help="Show this batch's report in full.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --batch: write evidently's full HTML report to this file (made now if there is none).")
@click.option("--json", "json_flag", is_flag=True, help="Print JSON for scripts (same as steward --json).")
@pass_env
@command
def monitor_command(env: Env, model_name: str, project_name: str | None, batch_id: int | None,
                    html_out: Path | None, json_flag: bool) -> None:
    """MODEL's health and its batches' drift and performance, or one batch's report (--batch)."""
    from core import monitoring

    env.as_json = env.as_json or json_flag
    if html_out is not None and batch_id is None:
        raise DomainError("--html needs --batch: say which batch's report to write.")
    with env.session() as session:
        model = _model_in(session, model_name, project_name)
        if batch_id is not None:
            report = monitoring.get_report(session=session, batch_id=batch_id)
            if report.model_id != model.id:
                raise DomainError(f"Batch {batch_id} was not scored by {model.name}.")
            if html_out is not None:
                if not report.html_sha256:
                    if not report.finished:
                        raise DomainError(f"Batch {batch_id}'s report is {report.status}; there is nothing to render.")
                    monitoring.make_html(session=session, settings=env.settings, report_id=report.id)
                    report = monitoring.get_report(session=session, batch_id=batch_id)
                html_out.parent.mkdir(parents=True, exist_ok=True)
                html_out.write_bytes(monitoring.load_html(settings=env.settings, report=report))
            lines = _report_lines(report)
            if html_out is not None:
                lines.append(f"  Full evidently report written to {html_out}.")
            env.emit(_report_data(report), "\n".join(lines))
            return
        health = monitoring.model_health(session=session, model_id=model.id)
        reports = monitoring.list_reports(session=session, model_id=model.id, limit=50)
    lines = [f"{model.name}: {health.health.upper()}" + (f" (v{health.production} in production)"
                                                         if health.production else " (nothing in production)")]
    lines += [f"  {reason}" for reason in health.reasons]
    if reports:
        lines.append(f"  {'batch':>6}  {'scored':<16} {'ver':>4} {'rows':>9}  {'report':<9} {'drift share':>11}  "
                     "performance")
    for report in reports:
        judged = _share(report.drift_share) if report.judged else ("not judged" if report.finished else "—")
        version = f"v{report.version_number}"
        lines.append(f"  {report.batch_id:>6}  {report.batch_created_at:%Y-%m-%d %H:%M} {version:>4} "
                     f"{report.rows:>9,}  {report.status:<9} {judged:>11}  {_performance_text(report)}")
    env.emit({"model": model.name, "health": health.health, "reasons": health.reasons,
              "production": health.production, "open_alerts": health.open_alerts,
              "batches": [_report_data(r) for r in reports]}, "\n".join(lines))


@cli.command("labels")
@click.argument("model_name")
@click.argument("batch_id", type=int)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--user", "username", required=True)
@click.option("--project", "project_name", default=None,
              help="Project name or id (needed only when several projects have a model of this name).")
@click.option("--key", default=None, help="Column that identifies a row in both the file and the batch "
                                          "(default: match by row order).")
@click.option("--json", "json_flag", is_flag=True, help="Print JSON for scripts (same as steward --json).")
@pass_env
@command
def labels_command(env: Env, model_name: str, batch_id: int, file: Path, username: str, project_name: str | None,
                   key: str | None, json_flag: bool) -> None:
    """Add the true values in FILE to BATCH of MODEL; the batch's performance is computed from them."""
    from core import monitoring

    env.as_json = env.as_json or json_flag
    with env.session() as session:
        actor = env.actor(session, username)
        model = _model_in(session, model_name, project_name)
        before = monitoring.get_report(session=session, batch_id=batch_id)
        if before.model_id != model.id:
            raise DomainError(f"Batch {batch_id} was not scored by {model.name}.")
        report = monitoring.attach_labels(session=session, settings=env.settings, actor=actor, batch_id=batch_id,
                                          filename=file.name, data=file.read_bytes(), key=key)
    perf = report.performance
    lines = [f"Batch {batch_id}: {perf['labelled_rows']:,} of {perf['rows']:,} rows labelled from {file.name} "
             f"(matched by {perf['matched_by']})."]
    if perf.get("unmatched_keys"):
        lines.append(f"  {perf['unmatched_keys']:,} row(s) of the file match no row of the batch.")
    lines += [f"  {name:<20} {m['value']:.4f}" + (f" (95% interval {m['low']:.4f}–{m['high']:.4f})"
                                                  if m.get("low") is not None else "")
              for name, m in perf["metrics"].items() if m.get("value") is not None]
    coding = perf.get("coding") or {}
    if coding:
        auto = coding.get("automatic") or {}
        accuracy = "—" if auto.get("accuracy") is None else f"{auto['accuracy']:.1%}"
        lines.append(f"  Automation rate {_share(coding.get('automation_rate'))}; accuracy of the automatically coded "
                     f"records {accuracy}")
    env.emit({"batch_id": batch_id, "model": model.name, **perf}, "\n".join(lines))


# ── retraining pipeline ─────────────────────────────────────────────────────────────────────────────


def _pipeline_lines(done) -> list[str]:
    lines = [f"Pipeline run {done.id} of {done.model_name} ({done.trigger_label}): {done.status}. {done.outcome}"]
    for entry in done.steps:
        seconds = f"{entry['seconds']:.1f} s" if entry.get("seconds") is not None else ""
        lines.append(f"  {entry['status']:<10} {entry['title']} {seconds}".rstrip()
                     + (f": {entry['message']}" if entry.get("message") else ""))
    return lines


@cli.group("pipeline")
def pipeline_group() -> None:
    """The retraining pipeline (validate, train, compare, register, document)."""


@pipeline_group.command("run")
@click.argument("project_name")
@click.argument("model_name")
@click.option("--dataset-version", "number", type=int, default=None,
              help="Version of the production model's dataset to train on (default: the newest).")
@click.option("--user", "username", required=True, help="A builder; the run acts as them.")
@click.option("--json", "json_flag", is_flag=True, help="Print JSON for scripts (same as steward --json).")
@pass_env
@command
def pipeline_run(env: Env, project_name: str, model_name: str, number: int | None, username: str,
                 json_flag: bool) -> None:
    """Retrain MODEL of PROJECT on new data with its production configuration, here and now; exit code 1 when a
    check stopped the run or it failed."""
    from core import pipelines

    env.as_json = env.as_json or json_flag
    with env.session() as session:
        actor = env.actor(session, username)
        target = projects.get_project_by_name(session=session, name=project_name)
        model = registry.find_model(session=session, name=model_name, project_id=target.id)
        version_id = (pipelines.find_dataset_version(session=session, model_id=model.id, number=number).id
                      if number is not None else None)
        requested = pipelines.request_run(session=session, settings=env.settings, model_id=model.id,
                                          trigger="manual", dataset_version_id=version_id, actor=actor)
    if not env.as_json:
        click.echo(f"Pipeline run {requested.id}: retraining {model.name}…", err=True)
    done = pipelines.run_here(engine=env.engine, settings=env.settings, pipeline_run_id=requested.id, actor=actor)
    env.emit({"pipeline_run_id": done.id, "model": done.model_name, "trigger": done.trigger, "status": done.status,
              "outcome": done.outcome, "dataset": done.dataset_label, "run_id": done.run_id,
              "candidate": done.candidate_label, "candidate_version_id": done.candidate_version_id,
              "steps": done.steps}, "\n".join(_pipeline_lines(done)))
    if done.status != "succeeded":
        sys.exit(1)


@cli.command("scheduler")
@click.option("--once", is_flag=True, help="One pass, then stop (for cron or a systemd timer).")
@click.option("--interval", type=click.IntRange(min=5), default=60, show_default=True,
              help="Seconds between passes when running on.")
@pass_env
@command
def scheduler_command(env: Env, once: bool, interval: int) -> None:
    """Run due scheduled and requested retraining pipelines and retry due alert deliveries."""
    import time

    from core import pipelines

    say = None if env.as_json else (lambda message: click.echo(message, err=True))
    while True:
        done = pipelines.scheduler_pass(engine=env.engine, settings=env.settings, say=say)
        sent = sum(d.status == "sent" for d in done.deliveries)
        lines = [f"Deliveries attempted: {len(done.deliveries)} ({sent} sent). Schedules due: {len(done.scheduled)}. "
                 f"Pipeline runs: {len(done.ran)}."]
        for ran in done.ran:
            lines.append(f"  run {ran.id} {ran.model_name} ({ran.trigger_label}): {ran.status}. {ran.outcome}")
        lines += [f"  problem: {problem}" for problem in done.problems]
        env.emit({"deliveries": [d.__dict__ for d in done.deliveries], "scheduled_models": done.scheduled,
                  "runs": [{"pipeline_run_id": r.id, "model": r.model_name, "trigger": r.trigger, "status": r.status,
                            "outcome": r.outcome, "candidate": r.candidate_label} for r in done.ran],
                  "problems": done.problems}, "\n".join(lines))
        if once:
            return
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            return


# ── audit and jobs ──────────────────────────────────────────────────────────────────────────────────


@cli.group("audit")
def audit_group() -> None:
    """Inspect the audit trail."""


@audit_group.command("verify")
@pass_env
@command
def audit_verify(env: Env) -> None:
    """Check the hash chain; exit code 1 and the first broken event when it was tampered with."""
    with env.session() as session:
        report = audit.verify_chain(session=session)
    env.emit(report.__dict__, report.summary)
    if not report.ok:
        sys.exit(1)


@cli.group("jobs")
def jobs_group() -> None:
    """Follow long-running jobs."""


@jobs_group.command("list")
@click.option("--limit", default=30, show_default=True)
@pass_env
@command
def jobs_list(env: Env, limit: int) -> None:
    """List the newest jobs with their state."""
    with env.session() as session:
        found = jobs.list_jobs(session=session, limit=limit)
        for job in found:  # a job whose worker went silent shows as failed
            if job.status == "running":
                jobs.get_job(session=session, job_id=job.id,
                             stale_after=timedelta(seconds=env.settings.job_stale_seconds))
        found = jobs.list_jobs(session=session, limit=limit)
    lines = [
        f"{j.id:>5}  {j.kind:<22} {j.status:<10} {j.progress:>4.0%}  {j.error or j.message}" for j in found
    ]
    env.emit([j.model_dump() for j in found], "\n".join(lines) or "No jobs yet.")


# ── reports ─────────────────────────────────────────────────────────────────────────────────────────


@cli.group("report")
def report_group() -> None:
    """Write a PDF report: model-card, review, monitoring or portfolio."""


_OUT = click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
                    help="Where to write the PDF.")
_USER = click.option("--user", "username", required=True, help="Who generates it (recorded in the audit trail).")
_PROJECT = click.option("--project", "project_name", default=None,
                        help="Project name (needed only when several projects have a model of this name).")
_REPORT_JSON = click.option("--json", "json_flag", is_flag=True,
                            help="Print JSON for scripts (same as steward --json).")


def _report_model(session, model_name: str, project_name: str | None):
    from core import registry

    project_id = projects.get_project_by_name(session=session, name=project_name).id if project_name else None
    return registry.find_model(session=session, name=model_name, project_id=project_id)


def _write_report(env: Env, username: str, out: Path, json_flag: bool, make: Callable) -> None:
    """Generate a report as --user with ``make(session, actor)`` and write it to --out."""
    env.as_json = env.as_json or json_flag
    with env.session() as session:
        written = make(session, env.actor(session, username))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    tmp.write_bytes(written.data)
    tmp.replace(out)
    env.emit({"kind": written.kind, "subject": written.subject, "out": str(out), "pages": written.pages,
              "bytes": written.size, "sha256": written.sha256},
             f"Wrote the {written.title.lower()} of {written.subject} ({written.pages} pages, "
             f"{written.size / 1024:,.0f} KB) to {out}.\nSHA-256 {written.sha256}")


@report_group.command("model-card")
@click.argument("run_id", type=int)
@_OUT
@_USER
@_REPORT_JSON
@pass_env
@command
def report_model_card(env: Env, run_id: int, out: Path, username: str, json_flag: bool) -> None:
    """The model card of training RUN_ID: every section, figures with intervals, groups, lineage and hashes."""
    from core import reports

    _write_report(env, username, out, json_flag, lambda session, actor: reports.render_model_card_report(
        session=session, settings=env.settings, actor=actor, run_id=run_id))


@report_group.command("review")
@click.argument("model_name")
@click.argument("number", type=int)
@_PROJECT
@_OUT
@_USER
@_REPORT_JSON
@pass_env
@command
def report_review(env: Env, model_name: str, number: int, project_name: str | None, out: Path, username: str,
                  json_flag: bool) -> None:
    """The responsible-ML assessment and peer review of version NUMBER of MODEL."""
    from core import registry, reports

    def make(session, actor):
        model = _report_model(session, model_name, project_name)
        version = registry.find_version(session=session, model_id=model.id, number=number)
        return reports.render_review_report(session=session, settings=env.settings, actor=actor, version_id=version.id)

    _write_report(env, username, out, json_flag, make)


@report_group.command("monitoring")
@click.argument("model_name")
@_PROJECT
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="First day (YYYY-MM-DD, UTC) of the period; default: the first batch.")
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Last day (YYYY-MM-DD, UTC) of the period, included; default: today.")
@_OUT
@_USER
@_REPORT_JSON
@pass_env
@command
def report_monitoring(env: Env, model_name: str, project_name: str | None, since, until, out: Path, username: str,
                      json_flag: bool) -> None:
    """MODEL's monitoring for a period: health, drift and quality over time, alerts, retraining, promotions."""
    from core import reports

    def make(session, actor):
        model = _report_model(session, model_name, project_name)
        return reports.render_monitoring_report(session=session, settings=env.settings, actor=actor,
                                                model_id=model.id, since=since.date() if since else None,
                                                until=until.date() if until else None)

    _write_report(env, username, out, json_flag, make)


@report_group.command("portfolio")
@click.argument("project_name", required=False)
@_OUT
@_USER
@_REPORT_JSON
@pass_env
@command
def report_portfolio(env: Env, project_name: str | None, out: Path, username: str, json_flag: bool) -> None:
    """Every model of PROJECT (default: of every project): status, maturity, reviews, reassessments, alerts."""
    from core import reports

    def make(session, actor):
        project_id = projects.get_project_by_name(session=session, name=project_name).id if project_name else None
        return reports.render_portfolio_report(session=session, settings=env.settings, actor=actor,
                                               project_id=project_id)

    _write_report(env, username, out, json_flag, make)


# ── sample project ──────────────────────────────────────────────────────────────────────────────────


@cli.command("demo")
@click.option("--user", "username", default=None, help="The administrator who loads it (default: the operator).")
@pass_env
@command
def demo_command(env: Env, username: str | None) -> None:
    """Load the sample project: demo accounts (passwords printed once), data, a model through review and
    production, scored batches with a drift alert, and a retrained candidate waiting for review."""
    from core import demo

    with env.session() as session:
        actor = env.actor(session, username) if username else auth.OPERATOR
    result = demo.load_sample_project(engine=env.engine, settings=env.settings, actor=actor,
                                      progress=_progress(env))
    accounts = [{"username": a.username, "role": a.role, "password": a.password} for a in result.accounts]
    lines = [f"Sample project “{demo.PROJECT_NAME}” is ready. Demo accounts (passwords shown only now):"]
    lines += [f"  {a['username']:<14} {a['role']:<9} {a['password']}" for a in accounts]
    env.emit({"project_id": result.project_id, "accounts": accounts, "steps": result.steps}, "\n".join(lines))


def main() -> None:
    cli(prog_name="steward")
