"""Errors a service raises when a business rule says no.

Every message is written for the person using Steward: what went wrong and what to do next.
Pages show ``str(error)``; the CLI prints it on one line and exits with code 2.
"""


class DomainError(Exception):
    """Base class of every error whose message is meant for a user."""


class NotFound(DomainError):
    """The thing asked for does not exist (or the user may not see it)."""


class InvalidInput(DomainError):
    """What the user entered or uploaded cannot be used as it is."""


class NotAllowed(DomainError):
    """The acting user may not do this."""


class Conflict(DomainError):
    """The action clashes with the current state (a duplicate name, a stale edit)."""


class AuthenticationFailed(DomainError):
    """Login refused. One message for unknown users and wrong passwords."""


class GateFailed(DomainError):
    """A governance or validation gate refused the action."""


class IntegrityFailed(DomainError):
    """Stored content no longer matches its recorded hash."""
