"""Accounts, roles, passwords, login sessions and the rights checks every service relies on.

Passwords are hashed with argon2. A login is a server-side :class:`~core.models.LoginSession`; the
browser holds only a random token in an HttpOnly cookie, so ending the session in the store ends it in
every tab. Failed logins are counted per name typed, known or not, and unknown names are checked
against a dummy hash, so the answer and its timing never tell whether an account exists.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func
from sqlmodel import Session, col, delete, select

from core import audit
from core.config import Settings
from core.errors import AuthenticationFailed, Conflict, InvalidInput, NotAllowed, NotFound
from core.models import LoginSession, LoginThrottle, Role, User, UserPublic, UserRole, utcnow

MIN_PASSWORD_LENGTH = 12
TICKET_SECONDS = 60
_TOUCH_EVERY = timedelta(seconds=30)
LOGIN_REFUSED = "Wrong user name or password, or the account is locked. Check both and try again."

# The operator at the server's command line already has the store in hand; the CLI acts as this user.
OPERATOR = UserPublic(
    id=0, username="operator", display_name="Command-line operator", email=None,
    roles=[role.value for role in Role], is_active=True, locked_until=None, created_at=datetime.now(UTC),
)


@lru_cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@lru_cache
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite hands datetimes back without a zone; they are always stored as UTC.
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


# ── validation ──────────────────────────────────────────────────────────────────────────────────────


def clean_name(value: str, *, what: str, max_length: int = 64) -> str:
    """Trim a user-typed name; refuse empty, overlong or control characters. Any other text is kept."""
    value = (value or "").strip()
    if not value:
        raise InvalidInput(f"The {what} is empty. Type a {what}.")
    if len(value) > max_length:
        raise InvalidInput(f"The {what} is {len(value)} characters long; use at most {max_length}.")
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise InvalidInput(f"The {what} contains invisible control characters. Type it again by hand.")
    return value


def check_password_rules(*, username: str, password: str) -> None:
    """Refuse a password that is too short or is the user name."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"The password has {len(password)} characters; it needs at least {MIN_PASSWORD_LENGTH}. "
            "A few unrelated words make a long password that is easy to remember."
        )
    if password.strip().casefold() == username.strip().casefold():
        raise InvalidInput("The password must not be the user name. Choose something else.")


def _clean_roles(roles: Iterable[str]) -> list[str]:
    chosen = sorted({str(role) for role in roles})
    unknown = [role for role in chosen if role not in Role.__members__]
    if unknown:
        raise InvalidInput(f"Unknown role {', '.join(unknown)}. Roles are: {', '.join(Role.__members__)}.")
    if not chosen:
        raise InvalidInput("Give the user at least one role.")
    return chosen


# ── rights ──────────────────────────────────────────────────────────────────────────────────────────


def require_role(actor: UserPublic | None, *roles: Role | str) -> UserPublic:
    """Refuse unless the actor is active and holds one of ``roles``."""
    if actor is None or not actor.is_active:
        raise NotAllowed("You are not logged in. Log in and try again.")
    if not actor.has_role(*roles):
        names = " or ".join(str(role) for role in roles)
        raise NotAllowed(f"This needs the {names} role, which you do not have. Ask an administrator.")
    return actor


def ensure_not_author(actor: UserPublic, author_ids: Iterable[int | None], *, what: str) -> None:
    """The four-eyes rule: nobody reviews or approves work they authored."""
    if actor.id in {author for author in author_ids if author is not None}:
        raise NotAllowed(
            f"You worked on {what} yourself, so you cannot review or approve it (four-eyes rule). "
            "Ask a colleague."
        )


# ── users ───────────────────────────────────────────────────────────────────────────────────────────


def _roles_of(session: Session, user_id: int) -> list[str]:
    return sorted(session.exec(select(UserRole.role).where(UserRole.user_id == user_id)).all())


def _locked_until(session: Session, username: str) -> datetime | None:
    throttle = session.get(LoginThrottle, username.casefold())
    until = _aware(throttle.locked_until) if throttle else None
    return until if until and until > utcnow() else None


def _public(session: Session, user: User) -> UserPublic:
    return UserPublic(
        id=user.id, username=user.username, display_name=user.display_name, email=user.email,
        roles=_roles_of(session, user.id), is_active=user.is_active,
        locked_until=_locked_until(session, user.username), created_at=user.created_at,
    )


def _find_user(session: Session, username: str) -> User | None:
    return session.exec(select(User).where(func.lower(User.username) == username.strip().lower())).first()


def _get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("That user does not exist.")
    return user


def has_any_user(*, session: Session) -> bool:
    return session.exec(select(User.id).limit(1)).first() is not None


def get_user(*, session: Session, user_id: int) -> UserPublic:
    return _public(session, _get_user(session, user_id))


def get_user_by_name(*, session: Session, username: str) -> UserPublic:
    user = _find_user(session, username)
    if user is None:
        raise NotFound(f"There is no user called {username!r}. `steward user list` shows who exists.")
    return _public(session, user)


def list_users(*, session: Session) -> list[UserPublic]:
    return [_public(session, user) for user in session.exec(select(User).order_by(col(User.username)))]


def _insert_user(
    session: Session, *, username: str, password: str, roles: Iterable[str], display_name: str, email: str | None
) -> User:
    username = clean_name(username, what="user name")
    check_password_rules(username=username, password=password)
    chosen = _clean_roles(roles)
    existing = _find_user(session, username)
    if existing is not None:
        raise Conflict(f"A user called {existing.username!r} already exists. Choose another user name.")
    user = User(
        username=username,
        display_name=clean_name(display_name, what="display name", max_length=200) if display_name else "",
        email=(email or "").strip() or None,
        password_hash=hash_password(password),
    )
    session.add(user)
    session.flush()
    session.add_all(UserRole(user_id=user.id, role=role) for role in chosen)
    return user


def create_first_admin(*, session: Session, username: str, password: str, display_name: str = "") -> UserPublic:
    """Create the administrator of a new installation; refused once any user exists."""
    if has_any_user(session=session):
        raise Conflict("Steward already has users. Log in, or ask an administrator for an account.")
    user = _insert_user(
        session, username=username, password=password, roles=[Role.admin], display_name=display_name, email=None
    )
    public = _public(session, user)
    audit.record_event(session, actor=public, action="user.create_first_admin", entity_type="user",
                       entity_id=user.id, details={"username": user.username, "roles": public.roles})
    session.commit()
    return public


def create_user(
    *, session: Session, actor: UserPublic, username: str, password: str, roles: Iterable[str],
    display_name: str = "", email: str | None = None,
) -> UserPublic:
    """Add an account (administrators only)."""
    require_role(actor, Role.admin)
    user = _insert_user(
        session, username=username, password=password, roles=roles, display_name=display_name, email=email
    )
    public = _public(session, user)
    audit.record_event(session, actor=actor, action="user.create", entity_type="user", entity_id=user.id,
                       details={"username": user.username, "roles": public.roles})
    session.commit()
    return public


def _active_admin_ids(session: Session) -> set[int]:
    query = select(User.id).join(UserRole, UserRole.user_id == User.id).where(
        UserRole.role == Role.admin, col(User.is_active).is_(True)
    )
    return set(session.exec(query).all())


def set_roles(*, session: Session, actor: UserPublic, user_id: int, roles: Iterable[str]) -> UserPublic:
    """Replace a user's roles; the last active administrator keeps the admin role."""
    require_role(actor, Role.admin)
    user = _get_user(session, user_id)
    chosen = _clean_roles(roles)
    before = _roles_of(session, user_id)
    if Role.admin not in chosen and _active_admin_ids(session) == {user_id}:
        raise NotAllowed("This is the last active administrator. Make someone else an administrator first.")
    session.exec(delete(UserRole).where(col(UserRole.user_id) == user_id))
    session.add_all(UserRole(user_id=user_id, role=role) for role in chosen)
    audit.record_event(session, actor=actor, action="user.set_roles", entity_type="user", entity_id=user_id,
                       details={"username": user.username, "before": before, "after": chosen})
    session.commit()
    return _public(session, user)


def reset_password(*, session: Session, actor: UserPublic, user_id: int, new_password: str) -> UserPublic:
    """Set a new password for someone (administrators); unlocks the account and ends its logins."""
    require_role(actor, Role.admin)
    user = _get_user(session, user_id)
    check_password_rules(username=user.username, password=new_password)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    session.add(user)
    session.exec(delete(LoginThrottle).where(col(LoginThrottle.username_key) == user.username.casefold()))
    _end_all_logins(session, user_id, reason="password reset")
    audit.record_event(session, actor=actor, action="user.reset_password", entity_type="user",
                       entity_id=user_id, details={"username": user.username})
    session.commit()
    return _public(session, user)


def change_own_password(
    *, session: Session, actor: UserPublic, current_password: str, new_password: str
) -> UserPublic:
    """A user changes their own password; their other logins end."""
    user = _get_user(session, actor.id)
    if not _password_matches(user.password_hash, current_password):
        raise InvalidInput("The current password is not right. Type it again.")
    check_password_rules(username=user.username, password=new_password)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    session.add(user)
    audit.record_event(session, actor=actor, action="user.change_password", entity_type="user",
                       entity_id=user.id, details={"username": user.username})
    session.commit()
    return _public(session, user)


def set_active(*, session: Session, actor: UserPublic, user_id: int, active: bool) -> UserPublic:
    """Deactivate or reactivate an account. Accounts are never deleted: the audit trail keeps names."""
    require_role(actor, Role.admin)
    user = _get_user(session, user_id)
    if not active:
        if user_id == actor.id:
            raise NotAllowed("You cannot deactivate your own account. Ask another administrator.")
        if _active_admin_ids(session) == {user_id}:
            raise NotAllowed("This is the last active administrator and cannot be deactivated.")
        _end_all_logins(session, user_id, reason="deactivated")
    user.is_active = active
    session.add(user)
    audit.record_event(session, actor=actor, action="user.activate" if active else "user.deactivate",
                       entity_type="user", entity_id=user_id, details={"username": user.username})
    session.commit()
    return _public(session, user)


# ── login ───────────────────────────────────────────────────────────────────────────────────────────


def authenticate(*, session: Session, settings: Settings, username: str, password: str) -> UserPublic:
    """Check a user name and password; count failures and lock after too many."""
    key = (username or "").strip().casefold()[:64]
    user = _find_user(session, username or "") if key else None
    # Always run one argon2 verification, so every refusal takes the same time.
    matches = _password_matches(user.password_hash if user else _dummy_hash(), password or "")
    existing = session.get(LoginThrottle, key)
    throttle = existing or LoginThrottle(username_key=key)
    locked = _aware(throttle.locked_until) is not None and _aware(throttle.locked_until) > utcnow()
    if user is None or not user.is_active or not matches or locked:
        if not locked:
            throttle.failed_attempts += 1
            if throttle.failed_attempts >= settings.lockout_attempts:
                throttle.locked_until = utcnow() + timedelta(minutes=settings.lockout_minutes)
                throttle.failed_attempts = 0
        session.add(throttle)
        audit.record_event(session, actor=None, actor_name=key or "(empty)", action="login.failed",
                           entity_type="user", entity_id=user.id if user else "",
                           details={"locked": throttle.locked_until is not None})
        session.commit()
        raise AuthenticationFailed(LOGIN_REFUSED)
    if existing is not None:
        session.delete(existing)
        session.commit()
    return _public(session, user)


def start_login(*, session: Session, user: UserPublic) -> tuple[int, str]:
    """Open a login session; returns its id and a one-time ticket the browser trades for its cookie."""
    ticket = secrets.token_urlsafe(32)
    login = LoginSession(
        user_id=user.id,
        token_hash=_digest(secrets.token_urlsafe(32)),  # replaced when the ticket is claimed
        ticket_hash=_digest(ticket),
        ticket_expires_at=utcnow() + timedelta(seconds=TICKET_SECONDS),
    )
    session.add(login)
    session.flush()
    audit.record_event(session, actor=user, action="login.success", entity_type="login", entity_id=login.id)
    session.commit()
    return login.id, ticket


def claim_ticket(*, session: Session, ticket: str) -> str | None:
    """Trade a fresh one-time ticket for the login's cookie token (None when unknown, used or late)."""
    if not ticket:
        return None
    login = session.exec(select(LoginSession).where(LoginSession.ticket_hash == _digest(ticket))).first()
    if login is None or login.ended_at is not None or _aware(login.ticket_expires_at) < utcnow():
        return None
    token = secrets.token_urlsafe(32)
    login.token_hash, login.ticket_hash, login.ticket_expires_at = _digest(token), None, None
    session.add(login)
    session.commit()
    return token


def _live_login(session: Session, settings: Settings, login: LoginSession | None) -> UserPublic | None:
    if login is None or login.ended_at is not None:
        return None
    now = utcnow()
    if now - _aware(login.last_seen_at) > timedelta(minutes=settings.session_idle_minutes):
        login.ended_at, login.ended_reason = now, "idle timeout"
        session.add(login)
        session.commit()
        return None
    user = session.get(User, login.user_id)
    if user is None or not user.is_active:
        return None
    if now - _aware(login.last_seen_at) > _TOUCH_EVERY:
        login.last_seen_at = now
        session.add(login)
        session.commit()
    return _public(session, user)


def resolve_login(*, session: Session, settings: Settings, login_id: int) -> UserPublic | None:
    """The user of a live login session, or None when it ended or sat idle too long."""
    return _live_login(session, settings, session.get(LoginSession, login_id))


def resolve_token(*, session: Session, settings: Settings, token: str) -> tuple[int, UserPublic] | None:
    """The login id and user a cookie token belongs to, or None."""
    if not token:
        return None
    login = session.exec(select(LoginSession).where(LoginSession.token_hash == _digest(token))).first()
    user = _live_login(session, settings, login)
    return (login.id, user) if user else None


def end_login(*, session: Session, login_id: int, reason: str = "logout") -> None:
    """End a login session; every tab using it is logged out at its next action."""
    login = session.get(LoginSession, login_id)
    if login is None or login.ended_at is not None:
        return
    login.ended_at, login.ended_reason = utcnow(), reason
    session.add(login)
    user = session.get(User, login.user_id)
    audit.record_event(session, actor=None, actor_name=user.username if user else "unknown",
                       action="login.end", entity_type="login", entity_id=login_id, details={"reason": reason})
    session.commit()


def _end_all_logins(session: Session, user_id: int, *, reason: str) -> None:
    for login in session.exec(
        select(LoginSession).where(LoginSession.user_id == user_id, col(LoginSession.ended_at).is_(None))
    ):
        login.ended_at, login.ended_reason = utcnow(), reason
        session.add(login)


def login_end_reason(*, session: Session, login_id: int) -> str | None:
    """Why a login session ended ("logout", "idle timeout", ...), or None if it is live or unknown."""
    login = session.get(LoginSession, login_id)
    return login.ended_reason if login is not None else None


def remember_project(*, session: Session, login_id: int, project_id: int | None) -> None:
    """Keep the project a user opened with their login, so a refresh or a new tab opens it again."""
    login = session.get(LoginSession, login_id)
    if login is not None:
        login.project_id = project_id
        session.add(login)
        session.commit()


def remembered_project(*, session: Session, login_id: int) -> int | None:
    login = session.get(LoginSession, login_id)
    return login.project_id if login is not None else None
