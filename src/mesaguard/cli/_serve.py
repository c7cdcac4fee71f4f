"""`mesaguard serve`: the review server, its users and API tokens, and its OpenAPI schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml
from rich.table import Table

from ._common import console

if TYPE_CHECKING:
    from ..gate import GateConfig
    from ..server import AuthStore

serve_app = typer.Typer(
    help=(
        "The review server: REST API for agents, web UI for reviewers.\n\n"
        "Start with `mesaguard serve user add alice --role reviewer`, "
        "`mesaguard serve user add triage-bot --role agent`, "
        "`mesaguard serve token add triage-bot`, then `mesaguard serve`."
    ),
    invoke_without_command=True,
)
user_app = typer.Typer(help="Reviewer, admin and agent accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (shown once, stored hashed).", no_args_is_help=True)
serve_app.add_typer(user_app, name="user")
serve_app.add_typer(token_app, name="token")

DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="MESAGUARD_SERVER_DB",
        help="Gate store, review queue and users: SQLite file or postgresql:// URL.",
    ),
]
DEFAULT_DB = "mesaguard-gate.sqlite"


def _auth(db: str) -> AuthStore:
    # Imported here so that `mesaguard --help` does not load FastAPI.
    from ..server import AuthStore

    return AuthStore(db)


@serve_app.callback()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    db: DbOption = DEFAULT_DB,
    ledger: Annotated[
        str,
        typer.Option(
            "--ledger",
            envvar="MESAGUARD_LOG_DB",
            help="The Ethics Review Log: SQLite file or postgresql:// URL.",
        ),
    ] = "mesaguard-log.sqlite",
    log_key: Annotated[
        Path | None,
        typer.Option(
            "--log-key",
            envvar="MESAGUARD_LOG_KEY",
            help="Signing key of the log; with it the server signs checkpoints.",
        ),
    ] = None,
    constitution: Annotated[
        Path | None,
        typer.Option(
            "--constitution",
            help="Constitution YAML (default: the one shipped with mesaguard).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    webhook: Annotated[
        str | None,
        typer.Option(
            "--webhook",
            envvar="MESAGUARD_WEBHOOK_URL",
            help="URL that receives approved and applied decisions (POST, JSON, retried).",
        ),
    ] = None,
    webhook_secret: Annotated[
        str | None,
        typer.Option(
            "--webhook-secret",
            envvar="MESAGUARD_WEBHOOK_SECRET",
            help="Key for the webhook's X-Mesaguard-Signature (HMAC-SHA256) header.",
        ),
    ] = None,
    gate_config: Annotated[
        Path | None,
        typer.Option(
            "--gate-config",
            help="YAML or JSON of the gate's settings: autonomy per action (e.g. "
            "{autonomy: {set_priority: 1}}), min_confidence, audit_rate, review_ttl, four_eyes.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    canary_agent: Annotated[
        str | None,
        typer.Option(
            "--canary-agent",
            help="Agent spec the gate re-asks under an observed framing (runtime canary).",
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    secure_cookies: Annotated[
        bool, typer.Option(help="Mark cookies Secure (behind HTTPS).")
    ] = False,
    session_hours: Annotated[
        float, typer.Option(min=0.01, help="Hours a reviewer's session lives.")
    ] = 8.0,
) -> None:
    """Run the review server (when no sub-command is given)."""
    if ctx.invoked_subcommand is not None:
        return
    from ..server import ServerSettings, run_server

    settings = ServerSettings(
        gate=_gate_config(gate_config),
        canary_agent=canary_agent,
        db=db,
        ledger=ledger,
        log_key=log_key,
        constitution=constitution,
        webhook_url=webhook,
        webhook_secret=webhook_secret,
        secure_cookies=secure_cookies,
        session_ttl=session_hours * 3600,
    )
    console.print(f"mesaguard review server on http://{host}:{port}/ (queue: {db}, log: {ledger})")
    run_server(settings, host=host, port=port, workers=workers)


def _gate_config(path: Path | None) -> GateConfig:
    from pydantic import ValidationError

    from ..gate import GateConfig
    from ..server import ServerConfigError

    if path is None:
        return GateConfig()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return GateConfig.model_validate(data)
    except (yaml.YAMLError, ValidationError) as error:
        raise ServerConfigError(f"--gate-config {path}: {error}") from error


@serve_app.command("openapi")
def openapi(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Print the REST API's OpenAPI schema (the checked-in copy is regenerated with -o)."""
    from ..server import openapi_schema

    text = json.dumps(openapi_schema(), indent=2, sort_keys=True) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"wrote {output}")


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User name (also the agent name for agents).")],
    role: Annotated[str, typer.Option(help="agent, reviewer or admin.")] = "reviewer",
    tenant: Annotated[str, typer.Option(help="The tenant whose queue this user sees.")] = "default",
    password: Annotated[
        str | None,
        typer.Option(
            envvar="MESAGUARD_PASSWORD",
            help="Password for the web UI (prompted for reviewers and admins when absent).",
        ),
    ] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Create a user; reviewers and admins get a password for the web UI."""
    from ..gate import Role
    from ..server._errors import ServerConfigError

    try:
        parsed = Role(role)
    except ValueError as error:
        raise ServerConfigError(f"--role must be agent, reviewer or admin, got {role!r}") from error
    if password is None and parsed is not Role.AGENT:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    store = _auth(db)
    try:
        store.add_user(name, role=parsed, tenant=tenant, password=password)
    finally:
        store.close()
    console.print(f"added {parsed} {name!r} in tenant {tenant!r}")


@user_app.command("passwd")
def user_passwd(
    name: Annotated[str, typer.Argument(help="User name.")],
    password: Annotated[
        str | None, typer.Option(envvar="MESAGUARD_PASSWORD", help="New password (prompted).")
    ] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Set a new password; the user's sessions end."""
    if password is None:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    store = _auth(db)
    try:
        store.set_password(name, password)
    finally:
        store.close()
    console.print(f"password of {name!r} changed; their sessions ended")


@user_app.command("disable")
def user_disable(
    name: Annotated[str, typer.Argument(help="User name.")], db: DbOption = DEFAULT_DB
) -> None:
    """Lock a user out: sessions end, tokens stop working."""
    store = _auth(db)
    try:
        store.disable_user(name)
    finally:
        store.close()
    console.print(f"disabled {name!r}")


@user_app.command("list")
def user_list(db: DbOption = DEFAULT_DB) -> None:
    """List users with role and tenant."""
    store = _auth(db)
    try:
        users = store.users()
    finally:
        store.close()
    table = Table(title="users")
    for column in ("name", "role", "tenant", "status"):
        table.add_column(column)
    for principal, disabled in users:
        table.add_row(
            principal.name, str(principal.role), principal.tenant, "disabled" if disabled else ""
        )
    console.print(table)


@token_app.command("add")
def token_add(
    user: Annotated[str, typer.Argument(help="The user the token acts as.")],
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    days: Annotated[
        float | None, typer.Option(min=0.001, help="Expire after this many days (default: never).")
    ] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """Issue an API token; it is printed once (stdout) and stored only as a hash."""
    store = _auth(db)
    try:
        issued = store.add_token(
            user, label=label, ttl_seconds=None if days is None else days * 86400
        )
    finally:
        store.close()
    typer.echo(issued.token)
    typer.echo(f"token {issued.token_id} for {user!r}: keep it secret", err=True)


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
    db: DbOption = DEFAULT_DB,
) -> None:
    """List tokens (ids and owners, never secrets)."""
    store = _auth(db)
    try:
        tokens = store.tokens(user)
    finally:
        store.close()
    table = Table(title="API tokens")
    for column in ("id", "user", "label", "status"):
        table.add_column(column)
    for token in tokens:
        table.add_row(token.token_id, token.user, token.label, "revoked" if token.revoked else "")
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="Token id (the part after `mgt_`).")],
    db: DbOption = DEFAULT_DB,
) -> None:
    """Revoke a token."""
    store = _auth(db)
    try:
        store.revoke_token(token_id)
    finally:
        store.close()
    console.print(f"revoked token {token_id}")
