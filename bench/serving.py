"""Benchmark: scoring with the registry's production version (issue 7, "Performance").

1. Batch: a 1,000,000-row CSV scored by a tree model (histogram gradient boosting) exactly as ``steward predict``
   does it: read with the Data page's reader, check against the model's inputs and the data contract, predict,
   record the batch with its rows kept for monitoring, and write the predictions as CSV. Target: at most 20 s.
2. REST: the real app server (``streamlit run app/server.py``) answering ``POST /api/v1/models/{name}/predict``
   with one record per request: median latency (target: at most 50 ms), then the throughput of 8 concurrent
   clients.

Run: ``.venv/bin/python bench/serving.py [--rows N] [--skip-batch] [--skip-rest] [--seconds S]``. Everything
happens in a temporary STEWARD_HOME; prints Markdown for bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REGIONS = ["North", "South", "East", "West", "Capital", "Islands"]
EDUCATION = ["primary", "lower_secondary", "upper_secondary", "tertiary"]
RECORD = {"age": 42, "sex": "female", "region": "North", "education": "tertiary", "hours_usual": 38.5,
          "household_size": 3, "urban": "yes", "months_since_last_job": 4}


def make_frame(rows: int, seed: int) -> pd.DataFrame:
    """Survey-like rows: an identifier, 8 inputs (4 numeric with missing values, 3 categorical, 1 yes/no), target."""
    rng = np.random.default_rng(seed)
    age = rng.integers(16, 75, rows)
    hours = rng.normal(34, 9, rows).round(1)
    months = rng.exponential(18, rows).round(1)
    education = rng.choice(EDUCATION, rows, p=[0.15, 0.25, 0.35, 0.25])
    region = rng.choice(REGIONS, rows)
    score = (0.03 * (45 - abs(age - 40)) + 0.04 * (hours - 30) - 0.02 * months
             + pd.Series(education).map({"primary": -0.8, "lower_secondary": -0.3, "upper_secondary": 0.2,
                                         "tertiary": 0.7}).to_numpy() + rng.normal(0, 1, rows))
    frame = pd.DataFrame({
        "person_id": [f"P{i:07d}" for i in range(rows)], "age": age, "sex": rng.choice(["male", "female"], rows),
        "region": region, "education": education, "hours_usual": hours,
        "household_size": rng.integers(1, 7, rows), "urban": rng.choice(["yes", "no"], rows),
        "months_since_last_job": months, "employed": np.where(score > 0, "yes", "no")})
    for column, share in (("hours_usual", 0.1), ("months_since_last_job", 0.05)):
        frame.loc[rng.random(rows) < share, column] = np.nan
    return frame


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(home: Path) -> dict:
    """A store with ``employment`` v1 in production: gradient boosting trained on 20,000 rows, a data contract."""
    os.environ["STEWARD_HOME"] = str(home)
    os.environ["STEWARD_MAX_UPLOAD_MB"] = "2048"
    from core import auth, datasets, projects, registry, tokens
    from core.config import get_settings
    from core.db import create_store_engine, migrate, session_scope
    from core.models import VersionStatus
    from core.training import runs

    get_settings.cache_clear()
    settings = get_settings()
    settings.ensure_home()
    migrate(settings.resolved_database_url)
    engine = create_store_engine(settings.resolved_database_url)
    train_csv = home / "train.csv"
    make_frame(20_000, seed=1).to_csv(train_csv, index=False)
    with session_scope(engine) as session:
        admin = auth.create_first_admin(session=session, username="bench", password="benchmark password")
        project = projects.create_project(session=session, actor=admin, name="bench")
        version, _ = datasets.ingest_file(session=session, settings=settings, actor=admin, project_id=project.id,
                                          dataset_name="survey", path=train_csv, filename="train.csv")
        datasets.save_contract(session=session, settings=settings, actor=admin, version_id=version.id)
        run = runs.create_run(session=session, settings=settings, actor=admin, version_id=version.id,
                              target="employed", budget_seconds=60)
        # Only the tree model: the benchmark is about scoring with one, not about the search.
        outcome = runs.execute_run(session=session, settings=settings, run_id=run.id, only=["gradient_boosting"])
        runs.finish_run(session=session, run_id=run.id, outcome=outcome, actor=admin)
        registered = registry.register_run(session=session, actor=admin, run_id=run.id, model_name="employment")
        for status in (VersionStatus.approved, VersionStatus.production):
            registry.change_status(session=session, actor=admin, version_id=registered.id, to_status=status,
                                   reason="benchmark")
        session.commit()
        _token, secret = tokens.create_token(session=session, actor=admin, name="benchmark")
        chosen = runs.get_run(session=session, run_id=run.id).chosen_candidate
    engine.dispose()
    return {"token": secret, "chosen": chosen}


STAGES = {"Reading": "find the version, load and verify the model", "Checking": "read the CSV",
          "Scoring": "check against inputs and contract", "Storing": "predict",
          "Comparing": "record the batch (rows kept as Parquet)", "Done": "monitoring report (drift)"}


def batch(home: Path, rows: int) -> dict:
    """Score a ``rows``-row CSV as ``steward predict`` does, stage by stage (run in a fresh process)."""
    os.environ["STEWARD_HOME"] = str(home)
    os.environ["STEWARD_MAX_UPLOAD_MB"] = "2048"
    csv = home / f"batch_{rows}.csv"
    if not csv.exists():
        make_frame(rows, seed=2).drop(columns=["employed"]).to_csv(csv, index=False)
    out = home / "predictions.csv"
    from core import auth, serving
    from core.config import get_settings
    from core.db import create_store_engine, session_scope

    settings = get_settings()
    engine = create_store_engine(settings.resolved_database_url)
    # (wall, CPU, message): CPU seconds of this process and its threads show what a busy machine hides.
    marks: list[tuple[float, float, str]] = [(time.perf_counter(), time.process_time(), "start")]
    with session_scope(engine) as session:
        actor = auth.get_user_by_name(session=session, username="bench")
        result = serving.score_file(
            session=session, settings=settings, actor=actor, project_id=1, model_name="employment",
            filename=csv.name, path=csv, channel="cli",
            progress=lambda _f, message: marks.append((time.perf_counter(), time.process_time(), message)))
        serving.write_export(result.output, out)
        marks.append((time.perf_counter(), time.process_time(), "written"))
    engine.dispose()
    stages = []
    for (wall0, cpu0, _), (wall1, cpu1, message) in zip(marks, marks[1:], strict=False):
        label = STAGES.get(message.split(" ")[0], "write the predictions as CSV" if message == "written" else message)
        stages.append({"stage": label, "wall": round(wall1 - wall0, 2), "cpu": round(cpu1 - cpu0, 2)})
    monitoring = [s for s in stages if s["stage"] == STAGES["Done"]]
    total_wall, total_cpu = marks[-1][0] - marks[0][0], marks[-1][1] - marks[0][1]
    return {"rows": result.batch.rows, "csv_mb": round(csv.stat().st_size / 1e6, 1),
            "out_mb": round(out.stat().st_size / 1e6, 1), "stages": stages,
            "total_wall": round(total_wall, 2), "total_cpu": round(total_cpu, 2),
            "scoring_wall": round(total_wall - sum(s["wall"] for s in monitoring), 2),
            "scoring_cpu": round(total_cpu - sum(s["cpu"] for s in monitoring), 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def _post(url: str, token: str, body: bytes) -> float:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
    return time.perf_counter() - start


def rest(home: Path, token: str, seconds: float) -> dict:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEWARD_")}
    env |= {"STEWARD_HOME": str(home), "STEWARD_APP_URL": f"http://127.0.0.1:{port}"}
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/server.py", "--server.headless=true",
         "--server.address=127.0.0.1", f"--server.port={port}", "--browser.gatherUsageStats=false",
         "--server.fileWatcherType=none", "--server.runOnSave=false", "--logger.level=error"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300  # a loaded machine takes its time to start a Streamlit server
        while True:
            try:
                with urllib.request.urlopen(base + "/_stcore/health", timeout=1) as answer:
                    if answer.read() == b"ok":
                        break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"server did not start; see {home / 'server.log'}") from None
                time.sleep(0.2)
        url = f"{base}/api/v1/models/employment/predict"
        body = json.dumps([RECORD]).encode()
        for _ in range(20):  # warm-up: the model is loaded and verified on the first request
            _post(url, token, body)
        single = [_post(url, token, body) for _ in range(200)]

        latencies: list[float] = []
        errors: list[str] = []
        stop = time.monotonic() + seconds
        lock = threading.Lock()

        def client() -> None:
            while time.monotonic() < stop:
                try:
                    took = _post(url, token, body)
                except (OSError, RuntimeError) as error:
                    with lock:
                        errors.append(str(error))
                    continue
                with lock:
                    latencies.append(took)

        threads = [threading.Thread(target=client) for _ in range(8)]
        begun = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - begun
        return {"single_median_ms": round(statistics.median(single) * 1000, 1),
                "single_p95_ms": round(float(np.percentile(single, 95)) * 1000, 1),
                "single_min_ms": round(min(single) * 1000, 1), "concurrent_requests": len(latencies),
                "concurrent_errors": len(errors), "concurrent_seconds": round(elapsed, 1),
                "throughput_per_s": round(len(latencies) / elapsed, 1),
                "concurrent_median_ms": round(statistics.median(latencies) * 1000, 1),
                "concurrent_p95_ms": round(float(np.percentile(latencies, 95)) * 1000, 1)}
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="How long the 8 concurrent clients run.")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--skip-rest", action="store_true")
    parser.add_argument("--home", type=Path, default=None,
                        help="Reuse the store a previous run prepared (it prints its home) instead of training again.")
    parser.add_argument("--one", nargs=3, metavar=("STEP", "HOME", "ARG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a step in a fresh process, so its time and memory are its own
        step, home, arg = args.one
        result = prepare(Path(home)) if step == "prepare" else batch(Path(home), int(arg))
        print(json.dumps(result))
        return

    home = args.home or Path(tempfile.mkdtemp(prefix="steward-bench-serving-"))
    print(f"home {home}; load average {os.getloadavg()[0]:.1f} / {os.getloadavg()[1]:.1f} / "
          f"{os.getloadavg()[2]:.1f}", file=sys.stderr)

    def step(name: str, arg: str = "0") -> dict:
        out = subprocess.run([sys.executable, __file__, "--one", name, str(home), arg], capture_output=True,
                             text=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": os.environ.get(
                                 "OMP_NUM_THREADS", "2")})
        if out.returncode:
            raise SystemExit(out.stderr[-3000:])
        return json.loads(out.stdout.strip().splitlines()[-1])

    saved = home / "prepared.json"
    if saved.exists():
        prepared = json.loads(saved.read_text())
    else:
        prepared = step("prepare")
        saved.write_text(json.dumps(prepared))
    print(f"model: {prepared['chosen']} (employment v1, in production)\n")
    if not args.skip_batch:
        found = step("batch", str(args.rows))
        print(f"{found['rows']:,} rows, CSV in {found['csv_mb']} MB, predictions out {found['out_mb']} MB, "
              f"peak memory {found['peak_rss_mb']:,} MiB\n")
        print("| stage | wall | CPU |")
        print("| --- | ---: | ---: |")
        for stage in found["stages"]:
            print(f"| {stage['stage']} | {stage['wall']} s | {stage['cpu']} s |")
        verdict = "met" if found["scoring_wall"] <= 20 else "NOT met"
        print(f"| **read, check, predict, record, write CSV** (the issue's steps) | **{found['scoring_wall']} s** "
              f"| {found['scoring_cpu']} s |")
        print(f"| everything, with the monitoring report | {found['total_wall']} s | {found['total_cpu']} s |")
        print(f"\ntarget ≤ 20 s for the issue's steps: {verdict}\n")
    if not args.skip_rest:
        found = rest(home, prepared["token"], args.seconds)
        print("| 1 record, sequential: median | p95 | min | target | 8 clients: throughput | median | p95 | errors |")
        print("| ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
        print(f"| **{found['single_median_ms']} ms** | {found['single_p95_ms']} ms | {found['single_min_ms']} ms | "
              f"≤ 50 ms: {'met' if found['single_median_ms'] <= 50 else 'NOT met'} | "
              f"**{found['throughput_per_s']} requests/s** ({found['concurrent_requests']:,} in "
              f"{found['concurrent_seconds']} s) | {found['concurrent_median_ms']} ms | "
              f"{found['concurrent_p95_ms']} ms | {found['concurrent_errors']} |")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
