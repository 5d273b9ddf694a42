"""The audit trail: an append-only, hash-chained record of every change.

Services call :func:`record_event` inside their own transaction, so the change and its audit event are
committed together or not at all. Each event stores the hash of the previous one; :func:`verify_chain`
recomputes every hash and names the first event that no longer matches.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from core.models import AuditEvent, AuditEventPublic, AuditHead, UserPublic, utcnow

GENESIS_HASH = "0" * 64


def _event_hash(
    *, seq: int, at: datetime, actor_name: str, action: str, entity_type: str, entity_id: str,
    details: dict[str, Any], prev_hash: str,
) -> str:
    payload = {
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor_name,
        "action": action,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "details": details,
        "prev": prev_hash,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def record_event(
    session: Session,
    *,
    actor: UserPublic | None,
    action: str,
    entity_type: str,
    entity_id: object = "",
    details: dict[str, Any] | None = None,
    actor_name: str | None = None,
) -> None:
    """Append an event to the chain in the caller's transaction (the caller commits)."""
    # Claim the next sequence number first: the UPDATE takes the write lock (SQLite) or the row lock
    # (PostgreSQL) until commit, so two transactions can never chain onto the same predecessor.
    session.execute(update(AuditHead).where(col(AuditHead.id) == 1).values(seq=AuditHead.seq + 1))
    head = session.get(AuditHead, 1, populate_existing=True)
    # Round-trip the details through JSON so the hash is computed on exactly what is stored.
    details = json.loads(json.dumps(details or {}, default=str))
    event = AuditEvent(
        seq=head.seq,
        at=utcnow(),
        actor_id=actor.id if actor and actor.id else None,  # the CLI operator has no row
        actor_name=actor_name or (actor.username if actor else "system"),
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        details=details,
        prev_hash=head.hash,
        hash="",
    )
    event.hash = _event_hash(
        seq=event.seq, at=event.at, actor_name=event.actor_name, action=event.action,
        entity_type=event.entity_type, entity_id=event.entity_id, details=event.details,
        prev_hash=event.prev_hash,
    )
    head.hash = event.hash
    session.add(event)
    session.add(head)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events_checked: int
    first_broken_seq: int | None = None
    problem: str = ""

    @property
    def summary(self) -> str:
        if self.ok:
            return f"The audit trail is intact: {self.events_checked} events checked."
        return f"The audit trail is broken at event {self.first_broken_seq}: {self.problem}"


def verify_chain(*, session: Session) -> ChainReport:
    """Recompute every hash in order; report the first event that does not match."""
    prev_hash, expected_seq, checked = GENESIS_HASH, 1, 0
    for event in session.exec(select(AuditEvent).order_by(col(AuditEvent.seq))):
        if event.seq != expected_seq:
            return ChainReport(False, checked, expected_seq, f"event {expected_seq} is missing.")
        if event.prev_hash != prev_hash:
            return ChainReport(False, checked, event.seq, "it does not point to the event before it.")
        recomputed = _event_hash(
            seq=event.seq, at=event.at, actor_name=event.actor_name, action=event.action,
            entity_type=event.entity_type, entity_id=event.entity_id, details=event.details,
            prev_hash=event.prev_hash,
        )
        if recomputed != event.hash:
            return ChainReport(False, checked, event.seq, "its content was changed after it was written.")
        prev_hash, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != checked or head.hash != prev_hash):
        return ChainReport(False, checked, checked + 1, "events after it were removed.")
    return ChainReport(True, checked)


def list_events(
    *,
    session: Session,
    actor_name: str | None = None,
    action: str | None = None,
    entity_type: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
) -> list[AuditEventPublic]:
    """Newest events first, filtered."""
    query = select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(limit)
    if actor_name:
        query = query.where(AuditEvent.actor_name == actor_name)
    if action:
        query = query.where(col(AuditEvent.action).contains(action))
    if entity_type:
        query = query.where(AuditEvent.entity_type == entity_type)
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at <= until)
    return [AuditEventPublic.model_validate(event, from_attributes=True) for event in session.exec(query)]


def distinct_values(*, session: Session) -> dict[str, list[str]]:
    """The actors, actions and entity types that occur, for filter choices."""
    return {
        "actor_name": sorted(session.exec(select(AuditEvent.actor_name).distinct()).all()),
        "action": sorted(session.exec(select(AuditEvent.action).distinct()).all()),
        "entity_type": sorted(session.exec(select(AuditEvent.entity_type).distinct()).all()),
    }
