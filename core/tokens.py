"""Personal API tokens for the REST endpoint: made and revoked by their owner, listed and revoked by admins.

A token is a random string shown once, when it is made; the store keeps only its SHA-256 and a short prefix
that lets people tell their tokens apart. A request presents it as ``Authorization: Bearer <token>``; it
acts as its owner, with the owner's current roles, for as long as neither the token is revoked nor the
account deactivated.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from core import audit
from core.auth import clean_name, get_user, require_role
from core.errors import InvalidInput, NotAllowed, NotFound
from core.models import ApiToken, ApiTokenPublic, Role, User, UserPublic, utcnow

TOKEN_START = "stw_"
PREFIX_LENGTH = 12
MAX_ACTIVE_TOKENS = 20
_TOUCH_EVERY = timedelta(seconds=60)  # "last used" is good to the minute; not a write per request


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _public(session: Session, token: ApiToken) -> ApiTokenPublic:
    owner = session.get(User, token.user_id)
    return ApiTokenPublic(**token.model_dump(exclude={"token_hash"}), username=owner.username if owner else "?")


def create_token(*, session: Session, actor: UserPublic, name: str) -> tuple[ApiTokenPublic, str]:
    """Make a token for the actor; returns it and its secret value, which is never shown again."""
    if actor is None or not actor.is_active or not actor.id:
        raise NotAllowed("Log in to make an API token.")
    name = clean_name(name, what="token name", max_length=120)
    active = session.exec(select(func.count()).where(ApiToken.user_id == actor.id,
                                                     col(ApiToken.revoked_at).is_(None))).one()
    if active >= MAX_ACTIVE_TOKENS:
        raise InvalidInput(f"You already have {active} active tokens. Revoke one you no longer use first.")
    secret = TOKEN_START + secrets.token_urlsafe(32)
    token = ApiToken(user_id=actor.id, name=name, token_hash=_digest(secret), prefix=secret[:PREFIX_LENGTH])
    session.add(token)
    session.flush()
    audit.record_event(session, actor=actor, action="api_token.create", entity_type="api_token", entity_id=token.id,
                       details={"name": name, "prefix": token.prefix})
    session.commit()
    return _public(session, token), secret


def list_tokens(*, session: Session, actor: UserPublic, everyone: bool = False) -> list[ApiTokenPublic]:
    """The actor's own tokens, or (administrators, ``everyone=True``) every user's; newest first."""
    query = select(ApiToken).order_by(col(ApiToken.id).desc())
    if everyone:
        require_role(actor, Role.admin)
    else:
        query = query.where(ApiToken.user_id == actor.id)
    return [_public(session, token) for token in session.exec(query)]


def revoke_token(*, session: Session, actor: UserPublic, token_id: int) -> ApiTokenPublic:
    """Stop a token from working: its owner or an administrator may."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound("That token does not exist.")
    if token.user_id != actor.id and not actor.has_role(Role.admin):
        raise NotAllowed("Only the token's owner or an administrator can revoke it.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.add(token)
        audit.record_event(session, actor=actor, action="api_token.revoke", entity_type="api_token",
                           entity_id=token.id, details={"name": token.name, "prefix": token.prefix,
                                                        "owner_id": token.user_id})
        session.commit()
    return _public(session, token)


def user_for_token(*, session: Session, secret: str) -> UserPublic | None:
    """The active owner of a live token, or None (unknown, revoked, or the account is deactivated)."""
    if not secret or not secret.startswith(TOKEN_START) or len(secret) > 200:
        return None
    token = session.exec(select(ApiToken).where(ApiToken.token_hash == _digest(secret))).first()
    if token is None or token.revoked_at is not None:
        return None
    owner = get_user(session=session, user_id=token.user_id)
    if not owner.is_active:
        return None
    now = utcnow()
    last = token.last_used_at
    if last is not None and last.tzinfo is None:  # SQLite hands datetimes back without their zone
        last = last.replace(tzinfo=UTC)
    if last is None or now - last > _TOUCH_EVERY:
        token.last_used_at = now
        session.add(token)
        session.commit()
    return owner
