"""Errors of the server: bad credentials, missing rights, a store that cannot be reached."""

from __future__ import annotations

from .._errors import ConfigError, MesaguardError

__all__ = ["AuthError", "ServerConfigError", "ServerError", "UserExistsError"]


class ServerError(MesaguardError):
    """Anything the review server raises on purpose."""


class AuthError(ServerError):
    """A credential is missing, wrong, expired or lacks the rights for what was asked."""


class UserExistsError(ServerError):
    """A user or token name is already taken (names are unique across tenants)."""


class ServerConfigError(ServerError, ConfigError):
    """A server option is invalid: names the option and what was expected."""
