"""`mesaguard log ...`: the Ethics Review Log from the command line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ..ledger import (
    DEFAULT_DATABASE,
    EntryError,
    Ledger,
    LedgerError,
    NoteError,
    Signer,
    TamperError,
    VerifierKey,
    verify_log,
)

log_app = typer.Typer(
    help=(
        "The Ethics Review Log: append-only, Merkle-hashed, signed checkpoints.\n\n"
        "Start with `mesaguard log key generate`, append records, then `mesaguard log checkpoint` "
        "and `mesaguard log verify`."
    ),
    no_args_is_help=True,
)
key_app = typer.Typer(help="Signing keys: generate, rotate, show the public key.")
log_app.add_typer(key_app, name="key")

console = Console()
error_console = Console(stderr=True)

DEFAULT_KEY = "mesaguard-log.key"

DbOption = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="MESAGUARD_LOG_DB",
        help="SQLite file or database URL (postgresql://...).",
    ),
]
KeyOption = Annotated[
    Path,
    typer.Option("--key", envvar="MESAGUARD_LOG_KEY", help="Private signing key file."),
]
OriginOption = Annotated[
    str | None,
    typer.Option("--origin", help="Name of the log, fixed when it is created."),
]


def _open(db: str, origin: str | None = None) -> Ledger:
    return Ledger(db, origin=origin)


def _read_key(path: Path) -> Signer:
    try:
        return Signer.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise NoteError(
            f"{path}: no signing key there; create one with `mesaguard log key generate`"
        ) from error


def _write_key(path: Path, signer: Signer, *, force: bool) -> None:
    if path.exists() and not force:
        raise NoteError(f"{path} exists; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(signer.skey() + "\n")


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


@log_app.command("init")
def init(db: DbOption = DEFAULT_DATABASE, origin: OriginOption = None) -> None:
    """Create the log (or check an existing one) and print its origin and size."""
    with _open(db, origin) as log:
        typer.echo(f"log {log.origin!r} at {db}: {log.size()} entries")


def _items_from_file(path: str, actor: str | None) -> list[tuple[str, dict[str, Any]]]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise EntryError(f"{path}, line {number}: not JSON: {error.msg}") from error
        if not isinstance(item, dict) or not isinstance(item.get("record"), dict):
            raise EntryError(f'{path}, line {number}: expected {{"actor": ..., "record": {{...}}}}')
        who = item.get("actor", actor)
        if not isinstance(who, str):
            raise EntryError(f'{path}, line {number}: field "actor" is missing; or pass --actor')
        items.append((who, item["record"]))
    return items


@log_app.command("append")
def append(
    record: Annotated[
        str | None,
        typer.Argument(help='One record as JSON, e.g. \'{"kind": "review", ...}\'.'),
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Who wrote the record(s).")] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            help='JSON lines of {"actor": ..., "record": {...}} ("-" for stdin), appended '
            "atomically as one batch.",
        ),
    ] = None,
    db: DbOption = DEFAULT_DATABASE,
    origin: OriginOption = None,
) -> None:
    """Append records; prints the index and leaf hash of each."""
    if (record is None) == (file is None):
        raise EntryError("give either one RECORD argument or --file")
    if record is not None:
        if actor is None:
            raise EntryError("--actor is required with a RECORD argument")
        try:
            parsed = json.loads(record)
        except json.JSONDecodeError as error:
            raise EntryError(f"RECORD is not JSON: {error.msg} at column {error.colno}") from error
        items: list[tuple[str, Any]] = [(actor, parsed)]
    else:
        assert file is not None
        items = list(_items_from_file(file, actor))
    with _open(db, origin) as log:
        for appended in log.append_many(items):
            typer.echo(f"{appended.index}\t{appended.leaf_hash}")


@log_app.command("show")
def show(
    index: Annotated[int | None, typer.Argument(help="Entry to show (default: a summary).")] = None,
    last: Annotated[int, typer.Option(help="Show the last N entries.")] = 0,
    db: DbOption = DEFAULT_DATABASE,
) -> None:
    """Show one entry, the last N, or a summary of the log."""
    with _open(db) as log:
        if index is not None:
            _echo_json(log.get(index).model_dump(mode="json"))
            return
        size = log.size()
        if last > 0:
            for entry in log.entries(max(size - last, 0)):
                typer.echo(entry.canonical().decode())
            return
        checkpoint = log.latest_checkpoint()
        summary = {
            "origin": log.origin,
            "database": db,
            "tree_size": size,
            "root_hash": log.root().hex(),
            "latest_checkpoint_size": None if checkpoint is None else checkpoint.tree_size,
            "keys": [k.model_dump() for k in log.keyring()],
        }
        _echo_json(summary)


@log_app.command("verify")
def verify(
    vkey: Annotated[
        list[str] | None,
        typer.Option(help="A trusted verifier key (name+id+key); repeatable."),
    ] = None,
    vkey_file: Annotated[
        list[Path] | None, typer.Option(help="File with trusted verifier keys, one a line.")
    ] = None,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(help="A signed checkpoint an auditor kept; repeatable."),
    ] = None,
    db: DbOption = DEFAULT_DATABASE,
) -> None:
    """Recompute every hash and check every checkpoint; exit 1 naming the first bad entry."""
    keys = [VerifierKey.parse(k) for k in vkey or []]
    for path in vkey_file or []:
        lines = path.read_text(encoding="utf-8").splitlines()
        keys += [VerifierKey.parse(line) for line in lines if line.strip()]
    notes = [path.read_text(encoding="utf-8") for path in checkpoint or []]
    with _open(db) as log:
        try:
            report = verify_log(log, keys=keys, checkpoints=notes)
        except TamperError as error:
            error_console.print(
                f"[bold red]mesaguard: log verification FAILED:[/] {error}",
                highlight=False,
                soft_wrap=True,
            )
            # SystemExit, not typer.Exit: the root runs click with standalone_mode=False,
            # which would turn typer.Exit into a return value and exit 0.
            raise SystemExit(1) from error
    console.print(
        f"[green]ok[/]: {report.tree_size} entries, root {report.root_hash}, "
        f"{report.checkpoints} checkpoint(s) verified; trust: {report.trust}",
        highlight=False,
        soft_wrap=True,
    )


@log_app.command("prove-inclusion")
def prove_inclusion(
    index: Annotated[int, typer.Argument(help="Entry index.")],
    size: Annotated[int | None, typer.Option(help="Tree size (default: now).")] = None,
    db: DbOption = DEFAULT_DATABASE,
) -> None:
    """Print an RFC 9162 inclusion proof (JSON) for one entry."""
    with _open(db) as log:
        proof = log.inclusion_proof(index, size)
    if not proof.verify():  # pragma: no cover - would mean a damaged tree
        raise LedgerError("the proof does not verify; run `mesaguard log verify`")
    _echo_json(proof.model_dump())


@log_app.command("prove-consistency")
def prove_consistency(
    size1: Annotated[int, typer.Argument(help="Older tree size.")],
    size2: Annotated[int | None, typer.Argument(help="Newer tree size (default: now).")] = None,
    db: DbOption = DEFAULT_DATABASE,
) -> None:
    """Print an RFC 9162 consistency proof (JSON) between two tree sizes."""
    with _open(db) as log:
        proof = log.consistency_proof(size1, size2)
    if not proof.verify():  # pragma: no cover - would mean a damaged tree
        raise LedgerError("the proof does not verify; run `mesaguard log verify`")
    _echo_json(proof.model_dump())


@log_app.command("checkpoint")
def checkpoint(
    key: KeyOption = Path(DEFAULT_KEY),
    out: Annotated[Path | None, typer.Option(help="Also write the note to this file.")] = None,
    db: DbOption = DEFAULT_DATABASE,
) -> None:
    """Sign the current tree head (C2SP checkpoint), store it and print the note."""
    signer = _read_key(key)
    with _open(db) as log:
        stored = log.checkpoint([signer])
    if out is not None:
        out.write_text(stored.note, encoding="utf-8")
    typer.echo(stored.note, nl=False)


@log_app.command("export")
def export(
    out: Annotated[Path | None, typer.Option(help="Output file (default: stdout).")] = None,
    start: Annotated[int, typer.Option(help="First index.")] = 0,
    stop: Annotated[int | None, typer.Option(help="Stop before this index.")] = None,
    db: DbOption = DEFAULT_DATABASE,
) -> None:
    """Write entries as JSON lines: each line is the exact canonical leaf data."""
    with _open(db) as log:
        handle = sys.stdout.buffer if out is None else out.open("wb")
        try:
            for _index, body, _leaf, _subtrees in log.rows(start, stop):
                handle.write(body + b"\n")
        finally:
            if out is not None:
                handle.close()
            else:
                handle.flush()


@key_app.command("generate")
def key_generate(
    key: KeyOption = Path(DEFAULT_KEY),
    name: Annotated[str | None, typer.Option(help="Key name (default: the log's origin).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing key file.")] = False,
    db: DbOption = DEFAULT_DATABASE,
) -> None:
    """Create an Ed25519 signing key (file mode 0600) and print its public verifier key."""
    if name is None:
        with _open(db) as log:
            name = log.origin
    signer = Signer.generate(name)
    _write_key(key, signer, force=force)
    typer.echo(str(signer.verifier))


@key_app.command("rotate")
def key_rotate(
    key: KeyOption = Path(DEFAULT_KEY),
    db: DbOption = DEFAULT_DATABASE,
) -> None:
    """Replace the signing key: a checkpoint signed by old and new key hands trust over.

    The old key is kept as KEY.<key id>.retired; prints the new public key.
    """
    old = _read_key(key)
    new = Signer.generate(old.name)
    with _open(db) as log:
        log.rotate_key(old, new)
    retired = key.with_name(f"{key.name}.{old.key_id.hex()}.retired")
    key.rename(retired)
    _write_key(key, new, force=True)
    typer.echo(str(new.verifier))


@key_app.command("show")
def key_show(key: KeyOption = Path(DEFAULT_KEY)) -> None:
    """Print the public verifier key for auditors (never the private key)."""
    typer.echo(str(_read_key(key).verifier))


@key_app.command("list")
def key_list(db: DbOption = DEFAULT_DATABASE) -> None:
    """List the keys that have signed this log's checkpoints."""
    with _open(db) as log:
        for entry in log.keyring():
            status = f"retired {entry.retired_at}" if entry.retired_at else "active"
            typer.echo(f"{entry.vkey}\t{status}")
