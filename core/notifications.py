"""In-app notifications: a short message to one user, with the page it is about."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from core.models import Notification, NotificationPublic, UserPublic, utcnow

MAX_MESSAGE = 500


def notify(session: Session, *, user_ids: Iterable[int], message: str, page: str = "") -> None:
    """Queue a message for each user in the caller's transaction (the caller commits)."""
    for user_id in sorted(set(user_ids)):
        session.add(Notification(user_id=user_id, message=message[:MAX_MESSAGE], page=page))


def list_notifications(*, session: Session, actor: UserPublic, unread_only: bool = False,
                       limit: int = 50) -> list[NotificationPublic]:
    query = select(Notification).where(Notification.user_id == actor.id)
    if unread_only:
        query = query.where(col(Notification.read_at).is_(None))
    rows = session.exec(query.order_by(col(Notification.id).desc()).limit(limit))
    return [NotificationPublic(**row.model_dump()) for row in rows]


def unread_count(*, session: Session, actor: UserPublic) -> int:
    return len(session.exec(select(Notification.id).where(Notification.user_id == actor.id,
                                                         col(Notification.read_at).is_(None))).all())


def mark_read(*, session: Session, actor: UserPublic, notification_ids: Iterable[int] | None = None) -> None:
    """Mark the user's own notifications read (all unread ones when no ids are given)."""
    query = select(Notification).where(Notification.user_id == actor.id, col(Notification.read_at).is_(None))
    if notification_ids is not None:
        query = query.where(col(Notification.id).in_(list(notification_ids)))
    now = utcnow()
    for row in session.exec(query):
        row.read_at = now
        session.add(row)
    session.commit()
