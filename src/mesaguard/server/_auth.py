"""Users, API tokens and browser sessions of the review server, stored beside the gate's tables.

Passwords are hashed with Argon2id (``argon2-cffi``'s RFC 9106 low-memory profile). API tokens
carry 256 random bits, so a single SHA-256 of the token is what is stored and looked up: a slow
hash adds nothing against guessing a 256-bit secret and would cost every API call milliseconds.
Sessions are server-side rows (the cookie holds a random id whose SHA-256 is stored), so logging
out or disabling a user ends them at once, and several hosts on one PostgreSQL share them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    Boolean,
    Column,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..gate import Role
from ._db import make_engine
from ._errors import AuthError, ServerError, UserExistsError

__all__ = [
    "AuthStore",
    "IssuedToken",
    "Principal",
    "Session",
    "TokenInfo",
]

TOKEN_PREFIX = "mgt"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,199}$"


class Principal(BaseModel):
    """An authenticated user: who, in which tenant, with which role."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: Role
    tenant: str


class Session(BaseModel):
    """A browser session: its user, its CSRF token and when it ends."""

    model_config = ConfigDict(frozen=True)

    principal: Principal
    csrf_token: str
    """Sent with every form POST of this session and compared in constant time."""
    expires_at: float
    """Epoch seconds; the session is refused from then on."""


class IssuedToken(BaseModel):
    """A new API token; ``token`` is shown once and never stored."""

    model_config = ConfigDict(frozen=True)

    token_id: str
    user: str
    token: str


class TokenInfo(BaseModel):
    """A stored API token without its secret."""

    model_config = ConfigDict(frozen=True)

    token_id: str
    user: str
    label: str
    created_at: float
    expires_at: float | None
    revoked: bool


metadata = MetaData()

users_table = Table(
    "server_users",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("tenant", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("password_hash", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

tokens_table = Table(
    "server_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_name", String(200), ForeignKey("server_users.name"), nullable=False),
    Column("label", String(200), nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
)

sessions_table = Table(
    "server_sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("user_name", String(200), ForeignKey("server_users.name"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
)

failures_table = Table(
    "server_login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, index=True),
    Column("at", Float, nullable=False),
)

secrets_table = Table(
    "server_secrets",
    metadata,
    Column("name", String(50), primary_key=True),
    Column("value", String(200), nullable=False),
)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class AuthStore:
    """Users, API tokens and sessions in SQLite (default) or PostgreSQL.

    ``target`` is a SQLite path or a SQLAlchemy URL; the tables are created when missing.
    ``session_ttl`` bounds a session's life from login, ``idle_timeout`` from its last request.
    ``max_failures`` wrong passwords within ``lockout_seconds`` lock a user name for the rest of
    that window.
    """

    def __init__(
        self,
        target: str | Path,
        *,
        session_ttl: float = 8 * 3600,
        idle_timeout: float = 30 * 60,
        token_cache_seconds: float = 2.0,
        password_hasher: PasswordHasher | None = None,
        max_failures: int = 10,
        lockout_seconds: float = 15 * 60,
    ) -> None:
        self.target = str(target)
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self.session_ttl = session_ttl
        self.idle_timeout = idle_timeout
        self._engine: Engine = make_engine(target)
        try:
            metadata.create_all(self._engine)
        except SQLAlchemyError as error:
            self._engine.dispose()
            raise ServerError(f"cannot open the user store {target}: {error}") from error
        self._hasher = password_hasher or PasswordHasher()
        # Verified against when the user is unknown, so a miss costs as long as a wrong password.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        # API calls come in bursts from a few agents: a short-lived cache of token lookups saves
        # a database round trip per call; revocation takes effect within this many seconds.
        self._token_cache_seconds = token_cache_seconds
        self._token_cache: dict[str, tuple[float, Principal]] = {}
        self._cache_lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for tools and tests)."""
        return self._engine

    def close(self) -> None:
        """Release database connections."""
        self._engine.dispose()

    # --- users -----------------------------------------------------------------------------

    def add_user(
        self, name: str, *, role: Role, tenant: str = "default", password: str | None = None
    ) -> Principal:
        """Create a user; reviewers and admins need a password to log in to the web UI."""
        principal = Principal(name=name, role=role, tenant=tenant)
        if password is not None and len(password) < 8:
            raise AuthError(f"user {name!r}: a password needs at least 8 characters")
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    insert(users_table),
                    {
                        "name": name,
                        "tenant": tenant,
                        "role": str(role),
                        "password_hash": None if password is None else self._hasher.hash(password),
                        "created_at": time.time(),
                        "disabled": False,
                    },
                )
        except IntegrityError as error:
            raise UserExistsError(f"user {name!r} exists already") from error
        return principal

    def set_password(self, name: str, password: str) -> None:
        """Replace a user's password and end all of their sessions."""
        if len(password) < 8:
            raise AuthError(f"user {name!r}: a password needs at least 8 characters")
        with self._engine.begin() as connection:
            changed = connection.execute(
                update(users_table)
                .where(users_table.c.name == name)
                .values(password_hash=self._hasher.hash(password))
            ).rowcount
            connection.execute(delete(sessions_table).where(sessions_table.c.user_name == name))
        if not changed:
            raise AuthError(f"no user {name!r}")

    def disable_user(self, name: str) -> None:
        """Lock a user out: their sessions end and their tokens stop working."""
        with self._engine.begin() as connection:
            changed = connection.execute(
                update(users_table).where(users_table.c.name == name).values(disabled=True)
            ).rowcount
            connection.execute(delete(sessions_table).where(sessions_table.c.user_name == name))
        with self._cache_lock:
            self._token_cache.clear()
        if not changed:
            raise AuthError(f"no user {name!r}")

    def users(self) -> list[tuple[Principal, bool]]:
        """Every user with whether it is disabled, by name."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(
                    users_table.c.name,
                    users_table.c.role,
                    users_table.c.tenant,
                    users_table.c.disabled,
                ).order_by(users_table.c.name)
            ).all()
        return [(Principal(name=n, role=Role(r), tenant=t), bool(d)) for n, r, t, d in rows]

    def user(self, name: str) -> Principal | None:
        """The active user called ``name``, if any."""
        with self._engine.connect() as connection:
            row = connection.execute(
                select(users_table.c.role, users_table.c.tenant).where(
                    users_table.c.name == name, users_table.c.disabled.is_(False)
                )
            ).one_or_none()
        return None if row is None else Principal(name=name, role=Role(row[0]), tenant=row[1])

    def check_password(self, name: str, password: str) -> Principal:
        """The user if ``password`` is theirs; `AuthError` (one message for every miss) if not.

        After ``max_failures`` wrong passwords for one user name within ``lockout_seconds`` the
        name is refused without checking until the window has passed, so an online guesser gets
        a handful of tries per window, whoever the name belongs to.
        """
        now = time.time()
        with self._engine.connect() as connection:
            recent = connection.execute(
                select(func.count())
                .select_from(failures_table)
                .where(
                    failures_table.c.name == name,
                    failures_table.c.at > now - self.lockout_seconds,
                )
            ).scalar_one()
        if recent >= self.max_failures:
            raise AuthError(
                f"too many failed logins for {name!r}; try again in "
                f"{max(1, round(self.lockout_seconds / 60))} minutes"
            )
        try:
            return self._check_password(name, password)
        except AuthError:
            with self._engine.begin() as connection:
                connection.execute(
                    delete(failures_table).where(failures_table.c.at < now - self.lockout_seconds)
                )
                connection.execute(insert(failures_table), {"name": name, "at": now})
            raise

    def _check_password(self, name: str, password: str) -> Principal:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(users_table.c.role, users_table.c.tenant, users_table.c.password_hash).where(
                    users_table.c.name == name, users_table.c.disabled.is_(False)
                )
            ).one_or_none()
        stored = None if row is None else row[2]
        try:
            self._hasher.verify(stored or self._dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            raise AuthError("wrong user name or password") from None
        if row is None or stored is None:
            raise AuthError("wrong user name or password")
        if self._hasher.check_needs_rehash(stored):
            with self._engine.begin() as connection:
                connection.execute(
                    update(users_table)
                    .where(users_table.c.name == name)
                    .values(password_hash=self._hasher.hash(password))
                )
        with self._engine.begin() as connection:
            connection.execute(delete(failures_table).where(failures_table.c.name == name))
        return Principal(name=name, role=Role(row[0]), tenant=row[1])

    # --- API tokens ------------------------------------------------------------------------

    def add_token(
        self, user: str, *, label: str = "", ttl_seconds: float | None = None
    ) -> IssuedToken:
        """Issue an API token for ``user``; the secret is returned once and only its hash kept."""
        if self.user(user) is None:
            raise AuthError(
                f"no active user {user!r}; add it first with `mesaguard serve user add`"
            )
        token_id = secrets.token_hex(6)
        token = f"{TOKEN_PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"
        now = time.time()
        with self._engine.begin() as connection:
            connection.execute(
                insert(tokens_table),
                {
                    "token_id": token_id,
                    "token_hash": _sha256(token),
                    "user_name": user,
                    "label": label,
                    "created_at": now,
                    "expires_at": None if ttl_seconds is None else now + ttl_seconds,
                    "revoked_at": None,
                },
            )
        return IssuedToken(token_id=token_id, user=user, token=token)

    def revoke_token(self, token_id: str) -> None:
        """Revoke a token by its id (the middle part of the token)."""
        with self._engine.begin() as connection:
            changed = connection.execute(
                update(tokens_table)
                .where(tokens_table.c.token_id == token_id)
                .values(revoked_at=time.time())
            ).rowcount
        with self._cache_lock:
            self._token_cache.clear()
        if not changed:
            raise AuthError(f"no token with id {token_id!r}")

    def tokens(self, user: str | None = None) -> list[TokenInfo]:
        """Stored tokens (never their secrets), optionally of one user."""
        query = select(
            tokens_table.c.token_id,
            tokens_table.c.user_name,
            tokens_table.c.label,
            tokens_table.c.created_at,
            tokens_table.c.expires_at,
            tokens_table.c.revoked_at,
        ).order_by(tokens_table.c.created_at)
        if user is not None:
            query = query.where(tokens_table.c.user_name == user)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            TokenInfo(
                token_id=i, user=u, label=lab, created_at=c, expires_at=e, revoked=r is not None
            )
            for i, u, lab, c, e, r in rows
        ]

    def authenticate_token(self, token: str) -> Principal:
        """The user a bearer token belongs to; `AuthError` if it is unknown, revoked or expired."""
        if not token.startswith(TOKEN_PREFIX + "_") or len(token) > 200:
            raise AuthError("invalid API token")
        digest = _sha256(token)
        now = time.monotonic()
        with self._cache_lock:
            cached = self._token_cache.get(digest)
        if cached is not None and now - cached[0] < self._token_cache_seconds:
            return cached[1]
        with self._engine.connect() as connection:
            row = connection.execute(
                select(
                    users_table.c.name,
                    users_table.c.role,
                    users_table.c.tenant,
                    tokens_table.c.expires_at,
                )
                .join(users_table, users_table.c.name == tokens_table.c.user_name)
                .where(
                    tokens_table.c.token_hash == digest,
                    tokens_table.c.revoked_at.is_(None),
                    users_table.c.disabled.is_(False),
                )
            ).one_or_none()
        if row is None or (row[3] is not None and row[3] <= time.time()):
            raise AuthError("invalid API token")
        principal = Principal(name=row[0], role=Role(row[1]), tenant=row[2])
        with self._cache_lock:
            if len(self._token_cache) > 10_000:
                self._token_cache.clear()
            self._token_cache[digest] = (now, principal)
        return principal

    # --- sessions --------------------------------------------------------------------------

    def create_session(self, principal: Principal) -> tuple[str, Session]:
        """Start a session; returns the cookie value (kept only as a hash) and the session."""
        raw = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = time.time()
        expires = now + self.session_ttl
        with self._engine.begin() as connection:
            # Expired rows are swept as new sessions start, so the table stays small.
            connection.execute(delete(sessions_table).where(sessions_table.c.expires_at < now))
            connection.execute(
                insert(sessions_table),
                {
                    "session_hash": _sha256(raw),
                    "user_name": principal.name,
                    "csrf_token": csrf,
                    "created_at": now,
                    "expires_at": expires,
                    "last_seen": now,
                },
            )
        return raw, Session(principal=principal, csrf_token=csrf, expires_at=expires)

    def session(self, raw: str) -> Session | None:
        """The live session for a cookie value; None if unknown, expired, idle or disabled."""
        if not raw or len(raw) > 200:
            return None
        digest = _sha256(raw)
        now = time.time()
        with self._engine.connect() as connection:
            row = connection.execute(
                select(
                    users_table.c.name,
                    users_table.c.role,
                    users_table.c.tenant,
                    sessions_table.c.csrf_token,
                    sessions_table.c.expires_at,
                    sessions_table.c.last_seen,
                )
                .join(users_table, users_table.c.name == sessions_table.c.user_name)
                .where(
                    sessions_table.c.session_hash == digest,
                    users_table.c.disabled.is_(False),
                )
            ).one_or_none()
        if row is None:
            return None
        name, role, tenant, csrf, expires, last_seen = row
        if expires <= now or now - last_seen > self.idle_timeout:
            self.end_session(raw)
            return None
        if now - last_seen > 30:  # record activity at most twice a minute
            with self._engine.begin() as connection:
                connection.execute(
                    update(sessions_table)
                    .where(sessions_table.c.session_hash == digest)
                    .values(last_seen=now)
                )
        return Session(
            principal=Principal(name=name, role=Role(role), tenant=tenant),
            csrf_token=csrf,
            expires_at=expires,
        )

    def end_session(self, raw: str) -> None:
        """Log out: the session row is deleted."""
        with self._engine.begin() as connection:
            connection.execute(
                delete(sessions_table).where(sessions_table.c.session_hash == _sha256(raw))
            )

    # --- server secret ---------------------------------------------------------------------

    def secret(self) -> str:
        """The key that signs pre-login CSRF tokens; created once and shared by every host."""
        with self._engine.begin() as connection:
            value = connection.execute(
                select(secrets_table.c.value).where(secrets_table.c.name == "signing")
            ).scalar_one_or_none()
            if value is not None:
                return str(value)
        candidate = secrets.token_urlsafe(48)
        try:
            with self._engine.begin() as connection:
                connection.execute(insert(secrets_table), {"name": "signing", "value": candidate})
        except IntegrityError:  # another host created it first: use theirs
            pass
        with self._engine.connect() as connection:
            return str(
                connection.execute(
                    select(secrets_table.c.value).where(secrets_table.c.name == "signing")
                ).scalar_one()
            )


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of two tokens."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


NameField = Field(pattern=NAME_PATTERN)
"""Constraint for user, agent and tenant names in API bodies."""
