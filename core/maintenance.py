"""Housekeeping the administrator can run as a job."""

from __future__ import annotations

from typing import Any

from core.artifacts import ArtifactStore
from core.config import get_settings
from core.errors import IntegrityFailed
from core.jobs import JobContext


def verify_artifacts_job(ctx: JobContext) -> dict[str, Any]:
    """Re-hash every file in the artifact store and list those that no longer match their name."""
    store = ArtifactStore(get_settings().artifacts_path)
    hashes = list(store.iter_hashes())
    damaged: list[str] = []
    for index, sha256 in enumerate(hashes, start=1):
        try:
            store.verified_path(sha256)
        except IntegrityFailed:
            damaged.append(sha256)
        ctx.progress(index / len(hashes), f"Checked {index} of {len(hashes)} files")
    return {"checked": len(hashes), "damaged": damaged}


def remove_leftovers(settings) -> int:
    """At start-up, after orphaned jobs are failed: delete staged uploads and half-written artifacts."""
    removed = ArtifactStore(settings.artifacts_path).remove_leftovers()
    staging = settings.home / "staging"
    if staging.exists():
        for path in staging.iterdir():
            path.unlink(missing_ok=True)
            removed += 1
    return removed
