"""Users, tokens and sessions: hashed at rest, refused when wrong, revoked, expired, disabled."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from typer.testing import CliRunner

from mesaguard.cli import app
from mesaguard.gate import Role
from mesaguard.server import AuthError, AuthStore, UserExistsError
from mesaguard.server._auth import sessions_table, tokens_table, users_table

# The cheapest Argon2id parameters keep these unit tests fast; the server uses the defaults.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def store(tmp_path: Path) -> AuthStore:
    return AuthStore(tmp_path / "users.sqlite", password_hasher=FAST, token_cache_seconds=0)


def test_passwords_are_stored_as_argon2id_hashes_and_checked(store: AuthStore) -> None:
    store.add_user("alice", role=Role.REVIEWER, tenant="t1", password="s3cret-password")
    with store.engine.connect() as connection:
        stored = connection.execute(select(users_table.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and "s3cret-password" not in stored
    principal = store.check_password("alice", "s3cret-password")
    assert (principal.name, principal.role, principal.tenant) == ("alice", Role.REVIEWER, "t1")
    with pytest.raises(AuthError, match="wrong user name or password"):
        store.check_password("alice", "s3cret-passwore")
    with pytest.raises(AuthError, match="wrong user name or password"):
        store.check_password("nobody", "s3cret-password")


def test_user_names_are_unique_and_passwords_have_a_minimum_length(store: AuthStore) -> None:
    store.add_user("alice", role=Role.REVIEWER, password="long-enough")
    with pytest.raises(UserExistsError):
        store.add_user("alice", role=Role.ADMIN, tenant="other", password="long-enough")
    with pytest.raises(AuthError, match="at least 8"):
        store.add_user("bob", role=Role.REVIEWER, password="short")


def test_tokens_are_stored_hashed_and_stop_working_when_revoked(store: AuthStore) -> None:
    store.add_user("bot", role=Role.AGENT, tenant="t1")
    issued = store.add_token("bot", label="ci")
    with store.engine.connect() as connection:
        hashes = list(connection.execute(select(tokens_table.c.token_hash)).scalars())
    assert issued.token not in hashes and len(hashes[0]) == 64
    assert store.authenticate_token(issued.token).name == "bot"
    with pytest.raises(AuthError):
        store.authenticate_token(issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B"))
    store.revoke_token(issued.token_id)
    with pytest.raises(AuthError):
        store.authenticate_token(issued.token)


def test_expired_tokens_and_disabled_users_are_refused(store: AuthStore) -> None:
    store.add_user("bot", role=Role.AGENT)
    short = store.add_token("bot", ttl_seconds=0.05)
    time.sleep(0.1)
    with pytest.raises(AuthError):
        store.authenticate_token(short.token)
    lasting = store.add_token("bot")
    store.disable_user("bot")
    with pytest.raises(AuthError):
        store.authenticate_token(lasting.token)


def test_sessions_expire_end_on_logout_and_on_password_change(tmp_path: Path) -> None:
    store = AuthStore(
        tmp_path / "users.sqlite", password_hasher=FAST, session_ttl=0.2, idle_timeout=60
    )
    principal = store.add_user("alice", role=Role.REVIEWER, password="long-enough")
    raw, session = store.create_session(principal)
    with store.engine.connect() as connection:
        assert raw not in set(connection.execute(select(sessions_table.c.session_hash)).scalars())
    assert store.session(raw) == session
    time.sleep(0.3)
    assert store.session(raw) is None, "a session outlived its time to live"

    store.session_ttl = 3600
    raw, _ = store.create_session(principal)
    store.end_session(raw)
    assert store.session(raw) is None
    raw, _ = store.create_session(principal)
    store.set_password("alice", "another-password")
    assert store.session(raw) is None


def test_idle_sessions_expire(tmp_path: Path) -> None:
    store = AuthStore(tmp_path / "u.sqlite", password_hasher=FAST, idle_timeout=0.2)
    principal = store.add_user("alice", role=Role.REVIEWER, password="long-enough")
    raw, _ = store.create_session(principal)
    time.sleep(0.3)
    assert store.session(raw) is None


def test_the_signing_secret_is_created_once_and_shared(tmp_path: Path) -> None:
    first = AuthStore(tmp_path / "u.sqlite", password_hasher=FAST)
    second = AuthStore(tmp_path / "u.sqlite", password_hasher=FAST)
    assert first.secret() == second.secret() and len(first.secret()) >= 48


def test_cli_adds_users_and_tokens_that_the_store_accepts(tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "gate.sqlite")
    result = runner.invoke(
        app,
        ["serve", "user", "add", "alice", "--role", "reviewer", "--tenant", "t1", "--db", db],
        input="correct horse\ncorrect horse\n",
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["serve", "user", "add", "bot", "--role", "agent", "--db", db])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["serve", "token", "add", "bot", "--label", "ci", "--db", db])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[0]
    store = AuthStore(db)
    assert store.check_password("alice", "correct horse").tenant == "t1"
    assert store.authenticate_token(token).role is Role.AGENT
    listing = runner.invoke(app, ["serve", "user", "list", "--db", db])
    assert "alice" in listing.output and "reviewer" in listing.output
    tokens = runner.invoke(app, ["serve", "token", "list", "--db", db])
    assert token not in tokens.output and "bot" in tokens.output


def test_cli_refuses_an_unknown_role(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["serve", "user", "add", "x", "--role", "boss", "--db", str(tmp_path / "g.sqlite")],
    )
    assert result.exit_code != 0
    assert "agent, reviewer or admin" in str(result.exception)


def test_repeated_wrong_passwords_lock_the_name_for_a_while(tmp_path: Path) -> None:
    store = AuthStore(
        tmp_path / "u.sqlite", password_hasher=FAST, max_failures=3, lockout_seconds=0.5
    )
    store.add_user("alice", role=Role.REVIEWER, password="the-right-one")
    store.check_password("alice", "the-right-one")
    for _ in range(3):
        with pytest.raises(AuthError, match="wrong user name or password"):
            store.check_password("alice", "a-wrong-guess")
    with pytest.raises(AuthError, match="too many failed logins"):
        store.check_password("alice", "the-right-one")
    time.sleep(0.6)
    assert store.check_password("alice", "the-right-one").name == "alice"
    # A success clears the count: three more misses are needed to lock again.
    for _ in range(2):
        with pytest.raises(AuthError, match="wrong"):
            store.check_password("alice", "a-wrong-guess")
    assert store.check_password("alice", "the-right-one").name == "alice"
