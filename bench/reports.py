"""Benchmark: PDF reports for a model with 50 scored batches (issue 9). Target: any report in at most 3 s.

1. A temporary store (STEWARD_HOME in a temp folder) is filled through the real services: a model trained on 1,000
   labour-force rows (sex and region sensitive), its card, checklist and two review rounds, a reproduction
   certificate, promotion by a manager, then ``--batches`` scoring batches of 150 rows (every fourth one drifted,
   every fifth one too small to judge, every third one labelled), which raise alerts and a retraining request; one
   alert is resolved. Batch, report and alert times are then spread one day apart (as in real use), so the charts
   over time look as they would.
2. Each report (model card, review, monitoring for the whole period, portfolio of the project) is generated with
   ``core.reports.render_report`` — the service the page, the download buttons and the CLI call, including the
   audit event and the stored copy — first in this process (cold: fonts, vl-convert's engine, imports), then three
   more times (warm: what a long-running app server pays). ``--cold`` also times each report once in a fresh process
   running ``steward report``.

Run: ``.venv/bin/python bench/reports.py [--batches 50] [--cold] [--keep DIR]`` (``--keep`` writes the PDFs there,
to look at them: ``pdftoppm -r 80 -png DIR/monitoring.pdf DIR/monitoring``). Prints Markdown for bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLES = ROOT / "sample_data"
TARGET = 3.0


def rows_file(folder: Path, source: str, first: int, count: int, name: str) -> Path:
    lines = (SAMPLES / source).read_text(encoding="utf-8").splitlines()
    body = [lines[1 + (first + i) % (len(lines) - 1)] for i in range(count)]
    path = folder / name
    path.write_text("\n".join([lines[0], *body]) + "\n", encoding="utf-8")
    return path


def build(folder: Path, batches: int) -> dict:
    """Fill the store; returns the ids the reports need."""
    from sqlmodel import col, select

    from core import alerts, auth, checklist, datasets, model_card, monitoring, registry, review, serving
    from core.config import get_settings
    from core.db import create_store_engine, migrate, session_scope
    from core.models import Alert, MonitoringReport, PredictionBatch, StageTransition, utcnow
    from core.training import runs
    from tests.factories import (
        COMPLETE_CARD,
        make_dataset_version,
        make_project,
        make_trained_run,
        make_user,
    )

    settings = get_settings()
    settings.ensure_home()
    migrate(settings.resolved_database_url)
    engine = create_store_engine(settings.resolved_database_url)
    with session_scope(engine) as session:
        bea = make_user(session, "bea")
        rita = make_user(session, "rita", roles=("reviewer",))
        mo = make_user(session, "mo", roles=("manager",))
        project = make_project(session, bea, name="Labour force survey")
        data = make_dataset_version(session, settings, bea, project,
                                    rows_file(folder, "labour_force.csv", 0, 1000, "training.csv"),
                                    metadata=datasets.VersionMetadata(sensitive_columns=["sex", "region"],
                                                                      legal_basis="Statistics Act, section 12"))
        run = make_trained_run(session, settings, bea, data, budget_seconds=5)
        model_card.save_card(session=session, actor=bea, run_id=run.id, based_on=0, content=dict(
            COMPLETE_CARD, overview="Predicts whether a respondent of the labour force survey is employed, to edit "
                                    "and impute employment status before the quarterly release."))
        version = registry.register_run(session=session, actor=bea, run_id=run.id, model_name="employment")
        view = checklist.start_assessment(session=session, actor=bea, version_id=version.id)
        for code, item in view.items.items():
            checklist.save_answer(session=session, actor=bea, assessment_id=view.id, code=code, answer="yes",
                                  justification=f"Checked the evidence for {code}.", expected_revision=item.revision)
        review.submit(session=session, settings=settings, actor=bea, version_id=version.id)
        review.save_verdict(session=session, actor=rita, version_id=version.id, code="RP-05", verdict="needs_work",
                            comment="Explain why region may be used.", expected_revision=0)
        review.decide(session=session, settings=settings, actor=rita, version_id=version.id,
                      decision="request_changes", comment="See RP-05.")
        view = checklist.get_assessment(session=session, version_id=version.id)
        checklist.save_answer(session=session, actor=bea, assessment_id=view.id, code="RP-05", answer="partly",
                              justification="Region is needed for regional estimates; gaps are monitored.",
                              expected_revision=view.items["RP-05"].revision)
        submitted = review.submit(session=session, settings=settings, actor=bea, version_id=version.id)
        for code in submitted.snapshot["items"]:
            review.save_verdict(session=session, actor=rita, version_id=version.id, code=code, verdict="agree",
                                comment="", expected_revision=0)
        review.decide(session=session, settings=settings, actor=rita, version_id=version.id,
                      decision="approve_with_conditions", conditions="Recheck the regional gaps every quarter.")
        certificate = runs.start_reproduction(session=session, runner=None, actor=bea, run_id=run.id)
        runs.reproduce(session=session, settings=settings, certificate_id=certificate.id, actor=bea)
        admin = auth.get_user_by_name(session=session, username="admin")
        for gate in registry.evaluate_gates(session=session, settings=settings, version_id=version.id).failed:
            registry.override_gate(session=session, settings=settings, actor=admin, version_id=version.id,
                                   gate=gate.gate, reason="Accepted for the benchmark by the board.")
        registry.promote_version(session=session, settings=settings, actor=mo, version_id=version.id,
                                 reason="First production version.")
        started = time.perf_counter()
        for index in range(batches):
            drifted = index % 4 == 3
            source = "labour_force_batch_drifted.csv" if drifted else "labour_force_batch_similar.csv"
            path = rows_file(folder, source, index * 37, 40 if index % 5 == 4 else 150, f"batch_{index}.csv")
            scored = serving.score_file(session=session, settings=settings, actor=bea, project_id=project.id,
                                        model_name="employment", filename=path.name, path=path)
            if index % 3 == 0:
                lines = path.read_text(encoding="utf-8").splitlines()
                column = lines[0].split(",").index("employed")
                labels = "employed\n" + "\n".join(line.split(",")[column] for line in lines[1:]) + "\n"
                monitoring.attach_labels(session=session, settings=settings, actor=bea, batch_id=scored.batch.id,
                                         filename="labels.csv", data=labels.encode())
        print(f"scored {batches} batches in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        raised = alerts.list_alerts(session=session, project_id=project.id)
        if raised:
            alerts.acknowledge(session=session, actor=mo, alert_id=raised[-1].id, note="Looking into it.")
            alerts.resolve(session=session, actor=bea, alert_id=raised[-1].id,
                           note="The batch came from a test extract; the source was corrected.")
        # One batch a day, ending today, as in real use (the services stamp everything "now").
        now = utcnow()
        found = session.exec(select(PredictionBatch).order_by(col(PredictionBatch.id))).all()
        moved = {}
        for index, batch in enumerate(found):
            batch.created_at = now - timedelta(days=len(found) - index)
            moved[batch.id] = batch.created_at
            session.add(batch)
        for report in session.exec(select(MonitoringReport)).all():
            report.created_at = report.finished_at = moved[report.batch_id] + timedelta(minutes=2)
            session.add(report)
        for alert in session.exec(select(Alert)).all():
            report = session.get(MonitoringReport, alert.report_id) if alert.report_id else None
            if report is not None:
                alert.created_at = report.created_at + timedelta(minutes=1)
                session.add(alert)
        promotion = session.exec(select(StageTransition).where(StageTransition.to_status == "production")).first()
        promotion.created_at = now - timedelta(days=len(found) + 1)
        session.add(promotion)
        session.commit()
        model = registry.find_model(session=session, name="employment", project_id=project.id)
        return {"run_id": run.id, "version_id": version.id, "model_id": model.id, "project_id": project.id}


def subjects(ids: dict) -> dict[str, dict]:
    return {"model-card": {"run_id": ids["run_id"]}, "review": {"version_id": ids["version_id"]},
            "monitoring": {"model_id": ids["model_id"]}, "portfolio": {"project_id": ids["project_id"]}}


def time_in_process(ids: dict, keep: Path | None, repeats: int = 3) -> dict[str, tuple[float, float, float, int]]:
    from core import auth, reports
    from core.config import get_settings
    from core.db import create_store_engine, session_scope

    settings = get_settings()
    engine = create_store_engine(settings.resolved_database_url)
    found = {}
    with session_scope(engine) as session:
        manager = auth.get_user_by_name(session=session, username="mo")
        for kind, subject in subjects(ids).items():
            times, cpu = [], []
            for _ in range(1 + repeats):
                started, started_cpu = time.perf_counter(), time.process_time()
                made = reports.render_report(session=session, settings=settings, actor=manager, kind=kind,
                                             **subject)
                times.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
            found[kind] = (times[0], statistics.median(times[1:]), statistics.median(cpu[1:]), made.pages)
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                (keep / f"{kind}.pdf").write_bytes(made.data)
    return found


def time_cli(ids: dict, folder: Path) -> dict[str, float]:
    commands = {"model-card": [str(ids["run_id"])], "review": ["employment", "1"], "monitoring": ["employment"],
                "portfolio": ["Labour force survey"]}
    found = {}
    for kind, arguments in commands.items():
        started = time.perf_counter()
        subprocess.run([str(ROOT / ".venv" / "bin" / "steward"), "report", kind, *arguments, "--out",
                        str(folder / f"cli-{kind}.pdf"), "--user", "mo"], check=True, capture_output=True)
        found[kind] = time.perf_counter() - started
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--cold", action="store_true", help="also time `steward report` in a fresh process")
    parser.add_argument("--keep", type=Path, default=None, help="write the PDFs to this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="steward-bench-reports-") as tmp:
        folder = Path(tmp)
        os.environ.update({"STEWARD_HOME": str(folder / "home"), "STEWARD_SECRET_KEY": "b" * 40,
                           "STEWARD_EXPLAIN_ROWS": "200"})
        os.environ.pop("STEWARD_DATABASE_URL", None)
        ids = build(folder, args.batches)
        timings = time_in_process(ids, args.keep)
        cli = time_cli(ids, folder) if args.cold else {}
    load = os.getloadavg()[0]
    print(f"\n{args.batches} batches; load average {load:.1f} on {os.cpu_count()} cores\n")
    header = "| report | pages | first in the process | warm (median of 3) | warm CPU time |" + (
        " `steward report` (fresh process) |" if cli else "")
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    for kind, (first, warm, cpu, pages) in timings.items():
        line = f"| {kind} | {pages} | {first:.2f} s | {warm:.2f} s | {cpu:.2f} s |"
        if cli:
            line += f" {cli[kind]:.2f} s |"
        print(line)
    worst = max(warm for _first, warm, _cpu, _pages in timings.values())
    print(f"\nTarget: any report in at most {TARGET:.0f} s: {'met' if worst <= TARGET else 'NOT met'} "
          f"(slowest warm {worst:.2f} s).")


if __name__ == "__main__":
    main()
