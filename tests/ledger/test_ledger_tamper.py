"""Tampering done directly in the database is detected and located (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select, update

from mesaguard.ledger import (
    Decision,
    Ledger,
    Review,
    Signer,
    TamperError,
    TamperKind,
    leaf_hash,
    verify_log,
)
from mesaguard.ledger._store import checkpoints_table, entries_table, head_table

N = 40


def _fill(log: Ledger, n: int, start: int = 0, tag: str = "v1") -> None:
    log.append_many(
        [("agent", Decision(subject=f"P-{i}", action="set", outcome=tag)) for i in range(start, n)]
    )


def _row(log: Ledger, index: int) -> dict[str, Any]:
    with log.engine.connect() as c:
        return dict(
            c.execute(select(entries_table).where(entries_table.c.idx == index)).one()._mapping
        )


def _set(log: Ledger, index: int, **values: Any) -> None:
    with log.engine.begin() as c:
        c.execute(update(entries_table).where(entries_table.c.idx == index).values(**values))


def _delete_from(log: Ledger, index: int, stop: int | None = None) -> None:
    with log.engine.begin() as c:
        query = delete(entries_table).where(entries_table.c.idx >= index)
        if stop is not None:
            query = query.where(entries_table.c.idx < stop)
        c.execute(query)


def _flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


def _fail(log: Ledger, **kwargs: Any) -> TamperError:
    with pytest.raises(TamperError) as caught:
        verify_log(log, **kwargs)
    return caught.value


@pytest.fixture
def log(any_ledger: Ledger, signer: Signer) -> Ledger:
    _fill(any_ledger, N)
    any_ledger.checkpoint([signer])
    return any_ledger


def test_untouched_log_verifies(log: Ledger, signer: Signer) -> None:
    report = verify_log(log, keys=[signer.verifier])
    assert report.tree_size == N
    assert report.root_hash == log.root().hex()
    assert report.checkpoints == 1


def test_edited_byte_is_named(log: Ledger) -> None:
    body = _row(log, 17)["body"]
    _set(log, 17, body=body.replace(b"v1", b"v2"))
    error = _fail(log)
    assert (error.kind, error.index) == (TamperKind.EDITED, 17)
    assert "entry 17: edited" in str(error)


def test_edit_with_recomputed_leaf_hash_is_caught_by_the_tree(log: Ledger) -> None:
    body = bytes(_row(log, 12)["body"]).replace(b"v1", b"v2")
    _set(log, 12, body=body, leaf_hash=leaf_hash(body))
    error = _fail(log)
    assert error.kind is TamperKind.TREE
    assert error.index == 12


def test_deleted_row_is_missing(log: Ledger) -> None:
    _delete_from(log, 9, 10)
    error = _fail(log)
    assert (error.kind, error.index) == (TamperKind.MISSING, 9)


def test_deleted_row_with_renumbering_is_missing(log: Ledger) -> None:
    _delete_from(log, 9, 10)
    with log.engine.begin() as c:
        for i in range(10, N):
            c.execute(update(entries_table).where(entries_table.c.idx == i).values(idx=i - 1))
    error = _fail(log)
    assert (error.kind, error.index) == (TamperKind.MISSING, 9)


def test_swapped_rows_are_reordered(log: Ledger) -> None:
    a, b = _row(log, 5), _row(log, 22)
    _set(log, 5, body=b["body"], leaf_hash=b["leaf_hash"], subtrees=b["subtrees"])
    _set(log, 22, body=a["body"], leaf_hash=a["leaf_hash"], subtrees=a["subtrees"])
    error = _fail(log)
    assert (error.kind, error.index) == (TamperKind.REORDERED, 5)
    assert "position 22" in str(error)


def test_deleted_last_row_is_truncated(log: Ledger) -> None:
    _delete_from(log, N - 1)
    error = _fail(log)
    assert (error.kind, error.index) == (TamperKind.TRUNCATED, N - 1)


def test_truncation_hidden_in_the_head_is_caught_by_the_checkpoint(log: Ledger) -> None:
    root = log.root(30)
    _delete_from(log, 30)
    with log.engine.begin() as c:
        c.execute(update(head_table).values(tree_size=30, root_hash=root))
    error = _fail(log)
    assert (error.kind, error.index) == (TamperKind.TRUNCATED, 30)


def _rewrite_tail(log: Ledger, start: int) -> None:
    """Replace entries from ``start`` on with different ones, keeping every hash consistent."""
    root = log.root(start)
    last = _row(log, start - 1)["body"]
    _delete_from(log, start)
    with log.engine.begin() as c:
        c.execute(
            update(head_table).values(
                tree_size=start, root_hash=root, last_timestamp=json.loads(last)["timestamp"]
            )
        )
    with Ledger(log.target, schema=_schema(log)) as forger:
        _fill(forger, N, start=start, tag="forged")


def _schema(log: Ledger) -> str | None:
    translate = log.engine.get_execution_options().get("schema_translate_map") or {}
    value = translate.get(None)
    return None if value is None else str(value)


def test_consistent_tail_rewrite_is_a_fork_from_the_checkpoint(log: Ledger, signer: Signer) -> None:
    """Rewriting the tail with every hash recomputed still disagrees with the signed head."""
    kept = log.checkpoint([signer]).note  # an auditor keeps this one
    _rewrite_tail(log, 25)
    error = _fail(log, keys=[signer.verifier])
    assert error.kind is TamperKind.FORKED
    assert error.index == 0  # no earlier checkpoint narrows it down
    # The auditor's copy catches it even when the stored checkpoints are deleted.
    with log.engine.begin() as c:
        c.execute(delete(checkpoints_table))
    error = _fail(log, keys=[signer.verifier], checkpoints=[kept])
    assert error.kind is TamperKind.FORKED


def test_fork_is_located_after_the_last_matching_checkpoint(
    any_ledger: Ledger, signer: Signer
) -> None:
    for size in (10, 20, 30, N):
        _fill(any_ledger, size, start=any_ledger.size())
        any_ledger.checkpoint([signer])
    _rewrite_tail(any_ledger, 25)
    error = _fail(any_ledger, keys=[signer.verifier])
    assert (error.kind, error.index) == (TamperKind.FORKED, 20)


def test_forged_checkpoint_signature_is_rejected(log: Ledger, signer: Signer) -> None:
    with log.engine.begin() as c:
        note = c.execute(select(checkpoints_table.c.note)).scalar_one()
        forged = note.replace(f"\n{N}\n", f"\n{N + 1}\n")
        c.execute(update(checkpoints_table).values(note=forged))
    error = _fail(log, keys=[signer.verifier])
    assert error.kind is TamperKind.SIGNATURE


def test_checkpoint_from_an_unknown_key_is_rejected(log: Ledger, signer: Signer) -> None:
    other = Signer.generate(log.origin)
    error = _fail(log, keys=[other.verifier])
    assert error.kind is TamperKind.SIGNATURE
    assert "not signed by a trusted key" in str(error)


def test_auditor_checkpoint_beyond_the_log_is_truncation(log: Ledger, signer: Signer) -> None:
    _fill(log, N + 5, start=N)
    kept = log.checkpoint([signer]).note
    _delete_from(log, N + 2)
    root = log.root(N)
    with log.engine.begin() as c:
        c.execute(delete(checkpoints_table).where(checkpoints_table.c.tree_size > N))
        c.execute(update(head_table).values(tree_size=N, root_hash=root))
    _delete_from(log, N)
    error = _fail(log, keys=[signer.verifier], checkpoints=[kept])
    assert (error.kind, error.index) == (TamperKind.TRUNCATED, N)


def test_edited_subtree_hash_is_a_tree_error(log: Ledger) -> None:
    subtrees = bytes(_row(log, 15)["subtrees"])  # entry 15 completes levels 1..4
    _set(log, 15, subtrees=_flip(subtrees, 40))  # level 2: entries 12..15
    error = _fail(log)
    assert (error.kind, error.index) == (TamperKind.TREE, 12)


TAMPERS = ["body", "leaf", "subtrees", "delete", "swap", "truncate", "head", "timestamp"]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(kind=st.sampled_from(TAMPERS), data=st.data())
def test_random_tampering_never_gets_through(
    tmp_path_factory: pytest.TempPathFactory, signer: Signer, kind: str, data: st.DataObject
) -> None:
    """Whatever single change is made in the database, verification fails at or before it."""
    path = tmp_path_factory.mktemp("t") / "log.sqlite"
    with Ledger(path, origin=signer.name) as log:
        n = data.draw(st.integers(2, 33), label="size")
        _fill(log, n)
        log.checkpoint([signer])
        i = data.draw(st.integers(0, n - 1), label="index")
        row = _row(log, i)
        if kind == "body":
            body = bytes(row["body"])
            _set(log, i, body=_flip(body, data.draw(st.integers(0, len(body) - 1))))
        elif kind == "leaf":
            _set(log, i, leaf_hash=_flip(bytes(row["leaf_hash"]), data.draw(st.integers(0, 31))))
        elif kind == "subtrees":
            subtrees = bytes(row["subtrees"])
            if not subtrees:
                return
            _set(log, i, subtrees=_flip(subtrees, data.draw(st.integers(0, len(subtrees) - 1))))
        elif kind == "delete":
            _delete_from(log, i, i + 1)
        elif kind == "swap":
            j = data.draw(st.integers(0, n - 1).filter(lambda j: j != i), label="other")
            other = _row(log, j)
            _set(log, i, body=other["body"], leaf_hash=other["leaf_hash"])
            _set(log, j, body=row["body"], leaf_hash=row["leaf_hash"])
            i = min(i, j)
        elif kind == "truncate":
            root = log.root(i)
            _delete_from(log, i)
            with log.engine.begin() as c:
                c.execute(update(head_table).values(tree_size=i, root_hash=root))
        elif kind == "head":
            with log.engine.begin() as c:
                c.execute(update(head_table).values(tree_size=data.draw(st.integers(0, n - 1))))
        elif kind == "timestamp":
            body = bytes(row["body"])
            _set(log, i, body=body.replace(b'"timestamp":"2', b'"timestamp":"1'))
        with pytest.raises(TamperError) as caught:
            verify_log(log, keys=[signer.verifier])
        if kind != "head" and caught.value.index is not None:
            assert caught.value.index <= i


def test_review_entries_verify_on_both_backends(any_ledger: Ledger, signer: Signer) -> None:
    any_ledger.append("person", Review(subject="P-1", outcome="approve"))
    any_ledger.checkpoint([signer])
    assert verify_log(any_ledger, keys=[signer.verifier]).tree_size == 1
