"""E-mail through the SMTP server an administrator sets up on the admin page.

The settings live in the store (``AppSetting`` ``"smtp"``), so every process (the app, job workers, the
scheduler) sends the same way. The password is kept encrypted with a key derived from Steward's secret key and
is never handed back: readers only learn whether one is set.
"""

from __future__ import annotations

import base64
import hashlib
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from sqlmodel import Session

from core import audit
from core.auth import require_role
from core.config import Settings
from core.errors import DomainError, InvalidInput
from core.models import AppSetting, Role, User, UserPublic, utcnow

SETTING_KEY = "smtp"
DEFAULT_TIMEOUT = 10.0


class DeliveryError(DomainError):
    """A message could not be handed to the SMTP server or the webhook; the text says why."""


@dataclass(frozen=True)
class SmtpSettings:
    """What the admin page shows of the SMTP settings: everything except the password."""

    host: str = ""
    port: int = 587
    sender: str = ""
    username: str = ""
    starttls: bool = True
    use_ssl: bool = False
    timeout: float = DEFAULT_TIMEOUT
    password_set: bool = False
    updated_by: str | None = None
    updated_at: datetime | None = None

    @property
    def configured(self) -> bool:
        return bool(self.host and self.sender)


def _fernet(settings: Settings):
    from cryptography.fernet import Fernet

    key = hashlib.sha256(f"steward-smtp:{settings.resolved_secret_key()}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _seal(settings: Settings, password: str) -> str:
    return _fernet(settings).encrypt(password.encode()).decode()


def _unseal(settings: Settings, sealed: str) -> str:
    from cryptography.fernet import InvalidToken

    try:
        return _fernet(settings).decrypt(sealed.encode()).decode()
    except InvalidToken as error:
        raise DeliveryError("The stored SMTP password cannot be read (Steward's secret key changed since it was "
                            "saved). An administrator must enter it again on the Users page, tab E-mail.") from error


def _row(session: Session) -> AppSetting | None:
    return session.get(AppSetting, SETTING_KEY)


def get_smtp(*, session: Session) -> SmtpSettings:
    """The SMTP settings without the password (defaults when none are saved)."""
    row = _row(session)
    if row is None:
        return SmtpSettings()
    value = row.value
    who = session.get(User, row.updated_by_id) if row.updated_by_id else None
    return SmtpSettings(host=value.get("host", ""), port=int(value.get("port", 587)), sender=value.get("sender", ""),
                        username=value.get("username", ""), starttls=bool(value.get("starttls", True)),
                        use_ssl=bool(value.get("use_ssl", False)),
                        timeout=float(value.get("timeout", DEFAULT_TIMEOUT)),
                        password_set=bool(value.get("password")),
                        updated_by=(who.display_name or who.username) if who else None, updated_at=row.updated_at)


def check_address(address: str, what: str) -> str:
    """The address, trimmed; refused in plain words when it is not an e-mail address."""
    address = (address or "").strip()
    name, parsed = parseaddr(address)
    if not parsed or "@" not in parsed or parsed.startswith("@") or parsed.endswith("@") or " " in parsed:
        raise InvalidInput(f"{what} {address!r} is not an e-mail address (like statistics@example.org).")
    return address


def save_smtp(*, session: Session, settings: Settings, actor: UserPublic, host: str, port: int, sender: str,
              username: str = "", password: str | None = None, clear_password: bool = False, starttls: bool = True,
              use_ssl: bool = False, timeout: float = DEFAULT_TIMEOUT) -> SmtpSettings:
    """Store the SMTP settings (administrators). An empty ``password`` keeps the stored one."""
    require_role(actor, Role.admin)
    host = (host or "").strip()
    if not host or any(ch.isspace() for ch in host):
        raise InvalidInput("Type the SMTP server's host name, e.g. smtp.example.org.")
    if not 0 < int(port) < 65536:
        raise InvalidInput("The port is a number from 1 to 65535 (usually 587 with STARTTLS, 465 with SSL, 25).")
    if starttls and use_ssl:
        raise InvalidInput("Choose either STARTTLS or SSL from the start, not both.")
    if not 1 <= float(timeout) <= 120:
        raise InvalidInput("The timeout is between 1 and 120 seconds.")
    sender = check_address(sender, "The sender address")
    row = _row(session) or AppSetting(key=SETTING_KEY, value={})
    sealed = row.value.get("password") or ""
    if clear_password:
        sealed = ""
    elif password:
        sealed = _seal(settings, password)
    row.value = {"host": host, "port": int(port), "sender": sender, "username": (username or "").strip(),
                 "password": sealed, "starttls": bool(starttls), "use_ssl": bool(use_ssl), "timeout": float(timeout)}
    row.updated_by_id, row.updated_at = actor.id or None, utcnow()
    session.add(row)
    audit.record_event(session, actor=actor, action="settings.smtp", entity_type="app_setting", entity_id=SETTING_KEY,
                       details={"host": host, "port": int(port), "sender": sender, "username": row.value["username"],
                                "starttls": bool(starttls), "use_ssl": bool(use_ssl),
                                "password": "changed" if password else "removed" if clear_password else "kept"})
    session.commit()
    return get_smtp(session=session)


def send_email(*, session: Session, settings: Settings, to: list[str], subject: str, body: str) -> None:
    """Hand one message to the SMTP server; raises :class:`DeliveryError` with the reason when it fails."""
    row = _row(session)
    public = get_smtp(session=session)
    if not public.configured:
        raise DeliveryError("No SMTP server is set up: an administrator enters it on the Users page, tab E-mail.")
    password = _unseal(settings, row.value["password"]) if row.value.get("password") else ""
    message = EmailMessage()
    message["From"] = public.sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=public.sender.rpartition("@")[2].strip(">") or None)
    message.set_content(body)
    try:
        client_class = smtplib.SMTP_SSL if public.use_ssl else smtplib.SMTP
        kwargs = {"context": ssl.create_default_context()} if public.use_ssl else {}
        with client_class(public.host, public.port, timeout=public.timeout, **kwargs) as client:
            client.ehlo()
            if public.starttls:
                if not client.has_extn("starttls"):
                    raise DeliveryError(f"The SMTP server {public.host}:{public.port} does not offer STARTTLS; turn "
                                        "it off or use SSL from the start.")
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if public.username:
                if not client.has_extn("auth"):
                    raise DeliveryError(f"The SMTP server {public.host}:{public.port} does not accept a login"
                                        + ("" if public.starttls or public.use_ssl else " without encryption (try "
                                           "STARTTLS)") + "; remove the user name or change the server.")
                client.login(public.username, password)
            refused = client.send_message(message)
    except smtplib.SMTPAuthenticationError as error:
        raise DeliveryError(f"The SMTP server refused the user name or password ({error.smtp_code}).") from error
    except (smtplib.SMTPException, OSError, ssl.SSLError) as error:
        raise DeliveryError(f"Sending through {public.host}:{public.port} failed: {type(error).__name__}: "
                            f"{error}".strip()) from error
    if refused:
        raise DeliveryError(f"The SMTP server refused these recipients: {', '.join(refused)}.")


def send_test_email(*, session: Session, settings: Settings, actor: UserPublic, to: str) -> str:
    """Send a short test message (administrators); returns what happened in words."""
    require_role(actor, Role.admin)
    address = check_address(to, "The test address")
    error: DeliveryError | None = None
    try:
        send_email(session=session, settings=settings, to=[address], subject="Steward: test message",
                   body=f"This is a test message from Steward ({settings.app_url}), sent by {actor.label}.\n"
                        "If you can read it, alerts can be e-mailed.")
    except DeliveryError as failed:
        error = failed
    audit.record_event(session, actor=actor, action="settings.smtp.test", entity_type="app_setting",
                       entity_id=SETTING_KEY, details={"to": address, "error": str(error) if error else None})
    session.commit()
    if error is not None:
        raise error
    return f"A test message was handed to {get_smtp(session=session).host} for {address}."
