"""What every report does besides its content: rights, the Steward version, storing the PDF, the audit event."""

from __future__ import annotations

import hashlib
import re
import subprocess
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlmodel import Session

from core import audit
from core.artifacts import ArtifactStore
from core.auth import require_role
from core.config import Settings
from core.models import AuditHead, Role, UserPublic

KINDS = {"model-card": "Model card report", "review": "Review report", "monitoring": "Monitoring report",
         "portfolio": "Portfolio report"}
ACTION = "report.generate"  # the audit event of every generated report

# A review decision as the past tense a manager reads: "approved with conditions by Rita on …".
DECIDED = {"approve": "approved", "approve_with_conditions": "approved with conditions",
           "request_changes": "changes requested", "reject": "rejected"}


@dataclass(frozen=True)
class Report:
    """A generated PDF: its bytes, a file name to save it under, and what identifies it."""

    kind: str
    title: str
    subject: str
    filename: str
    data: bytes
    sha256: str
    pages: int
    generated_at: datetime

    @property
    def size(self) -> int:
        return len(self.data)


def require_viewer(actor: UserPublic | None) -> UserPublic:
    """Reports are for anyone logged in who can see the project: every active user sees every project."""
    return require_role(actor, *Role)


@lru_cache
def steward_version() -> str:
    """The package version and, when the code is a git checkout, its commit."""
    try:
        version = metadata.version("steward")
    except metadata.PackageNotFoundError:
        version = "unknown"
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
        commit = out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{version} @ {commit}" if commit else version


def audit_position(session: Session) -> tuple[int, str]:
    """The newest audit event's number and hash: the state of the store the report was made from."""
    head = session.get(AuditHead, 1)
    return (head.seq, head.hash) if head else (0, "0" * 64)


def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-").lower()[:60] or "report"


def filename(kind: str, subject: str, at: datetime) -> str:
    return f"{kind}-{slug(subject)}-{at:%Y%m%d-%H%M}.pdf"


def finish(*, session: Session, settings: Settings, actor: UserPublic, kind: str, subject: str, data: bytes,
           pages: int, generated_at: datetime, entity_type: str, entity_id: Any, project_id: int | None,
           details: dict[str, Any] | None = None) -> Report:
    """Keep the PDF in the artifact store and record who generated which report of what."""
    stored = ArtifactStore(settings.artifacts_path).put_bytes(data)
    name = filename(kind, subject, generated_at)
    audit.record_event(session, actor=actor, action=ACTION, entity_type=entity_type,
                       entity_id=entity_id, details={"kind": kind, "subject": subject, "project_id": project_id,
                                                     "sha256": stored.sha256, "bytes": len(data), "pages": pages,
                                                     "filename": name, **(details or {})})
    session.commit()
    return Report(kind=kind, title=KINDS[kind], subject=subject, filename=name, data=data,
                  sha256=hashlib.sha256(data).hexdigest(), pages=pages, generated_at=generated_at)
