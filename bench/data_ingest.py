"""Benchmark: upload-to-profiled-version of a mixed CSV, from 10k to 1M rows (issue: data).

Run: ``.venv/bin/python bench/data_ingest.py [ROWS ...]`` (default 10000 100000 1000000). Each size runs in a
fresh process so peak memory (ru_maxrss) is that of one ingest. Prints a Markdown table for bench/README.md.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def make_csv(rows: int, path: Path) -> None:
    """20 columns: 10 numeric (some missing), 6 categorical, 2 booleans, 1 date, 1 short text."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({f"num_{i}": rng.normal(i, 1 + i, rows).round(3) for i in range(10)})
    for i in range(3):
        frame.loc[rng.random(rows) < 0.05, f"num_{i}"] = np.nan
    for i in range(6):
        frame[f"cat_{i}"] = rng.choice([f"level_{k}" for k in range(3 + 4 * i)], rows)
    frame["flag_a"] = rng.choice(["yes", "no"], rows)
    frame["flag_b"] = rng.choice(["true", "false"], rows)
    frame["date"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, rows), unit="D")
    frame["note"] = rng.choice(["part time work in retail", "full time office clerk", "seasonal farm worker",
                                "self employed carpenter"], rows)
    frame.to_csv(path, index=False)


def run_one(csv: Path) -> dict:
    """Ingest one file in this process, through the same service the app and the CLI use."""
    from core import auth, datasets, projects
    from core.config import get_settings
    from core.db import create_store_engine, migrate, session_scope

    home = Path(tempfile.mkdtemp(prefix="steward-bench-"))
    os.environ["STEWARD_HOME"] = str(home)
    get_settings.cache_clear()
    settings = get_settings()
    settings.ensure_home()
    migrate(settings.resolved_database_url)
    engine = create_store_engine(settings.resolved_database_url)
    with session_scope(engine) as session:
        admin = auth.create_first_admin(session=session, username="bench", password="benchmark password")
        project = projects.create_project(session=session, actor=admin, name="bench")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        version, _ = datasets.ingest_file(session=session, settings=settings, actor=admin, project_id=project.id,
                                          dataset_name="bench", path=csv, filename="input.csv")
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"rows": version.rows, "csv_mb": round(csv.stat().st_size / 1e6, 1), "seconds": round(seconds, 2),
            "peak_rss_mb": round(peak / 1024), "rss_before_mb": round(before / 1024), "columns": version.columns}


def main(sizes: list[int]) -> None:
    print("| rows | CSV size | upload → profiled version | peak memory (process) |")
    print("| ---: | ---: | ---: | ---: |")
    for rows in sizes:
        csv = Path(tempfile.mkdtemp(prefix="steward-bench-csv-")) / "input.csv"
        make_csv(rows, csv)  # made here, so the child's peak memory is the ingest's alone
        out = subprocess.run([sys.executable, __file__, "--one", str(csv)], capture_output=True, text=True,
                             cwd=ROOT, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {rows:,} | {result['csv_mb']} MB | {result['seconds']} s | {result['peak_rss_mb']} MiB |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(run_one(Path(sys.argv[2]))))
    else:
        main([int(arg) for arg in sys.argv[1:]] or [10_000, 100_000, 1_000_000])
