"""Appending, reading, proofs from stored subtrees, checkpoints, keys (SQLite, some PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert

import mesaguard.ledger as ledger_api
from mesaguard.ledger import (
    CheckpointReference,
    ConstitutionChange,
    Decision,
    EntryError,
    Escalation,
    Ledger,
    LedgerError,
    NoteError,
    RedTeamReport,
    Review,
    Signer,
    consistency_proof,
    inclusion_proof,
    open_checkpoint,
    root_from_leaf_hashes,
    source_from_leaves,
    verify_log,
)
from mesaguard.ledger._store import entries_table

ORIGIN = "test.mesaguard/ethics-log"  # as in conftest.py


def test_all_lists_exactly_the_public_names() -> None:
    """The front door cannot drift: __all__ is every public name the package exports."""
    public = {n for n in vars(ledger_api) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(ledger_api, n)).__name__ == "module"}
    assert set(ledger_api.__all__) == public - modules


def _one_of_each() -> list[tuple[str, object]]:
    digest = "ab" * 32
    return [
        ("agent:triage", Decision(subject="P-1", action="set-priority", outcome="Major")),
        ("gate", Escalation(subject="P-1", reason="low confidence", assignee="alice")),
        ("person:alice", Review(subject="P-1", outcome="approve", comment="ok")),
        ("redteam", RedTeamReport(subject="agent:triage", verdict="robust", report_sha256=digest)),
        ("pmo", ConstitutionChange(version="2", document_sha256=digest, summary="art. 3")),
        ("auditor", CheckpointReference(origin="x", tree_size=1, root_hash=digest)),
    ]


def test_every_record_kind_round_trips(ledger: Ledger) -> None:
    """Each record kind is stored as canonical JSON and read back equal."""
    appended = ledger.append_many(_one_of_each())  # type: ignore[arg-type]
    assert [a.index for a in appended] == list(range(6))
    for (actor, record), entry in zip(_one_of_each(), ledger.entries(), strict=True):
        assert entry.actor == actor
        assert entry.record == record
        assert entry.timestamp.tzinfo is not None
    for _index, body, leaf, _subtrees in ledger.rows():
        assert rfc8785.dumps(json.loads(body)) == body  # stored bytes are RFC 8785 canonical
        assert ledger_api.leaf_hash(body) == leaf


def test_dict_records_are_validated_like_models(ledger: Ledger) -> None:
    """A record may be a dict whose "kind" picks the model."""
    ledger.append("a", {"kind": "review", "subject": "P-2", "outcome": "reject"})
    assert ledger.get(0).record == Review(subject="P-2", outcome="reject")


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"kind": "decision", "subject": "", "action": "x"}, 'field "subject"'),
        ({"kind": "decision", "subject": "s", "action": "x", "colour": 1}, 'field "colour"'),
        ({"kind": "no-such-kind"}, 'field "kind"'),
        (
            {"kind": "decision", "subject": "s", "action": "x", "details": {"f": float("nan")}},
            "nan",
        ),
        ({"kind": "decision", "subject": "s", "action": "x", "details": {"n": 2**60}}, "item 1"),
        ("not an object", "expected a JSON object"),
    ],
)
def test_malformed_records_are_rejected_and_nothing_changes(
    ledger: Ledger, record: object, message: str
) -> None:
    """A bad record in a batch names its position and field; the log is unchanged."""
    ledger.append("a", Review(subject="P-0", outcome="approve"))
    before = (ledger.size(), ledger.root())
    good = ("a", Review(subject="P-1", outcome="approve"))
    with pytest.raises(EntryError, match=message):
        ledger.append_many([good, ("a", record)])  # type: ignore[list-item]
    assert (ledger.size(), ledger.root()) == before
    ledger.append(*good)  # type: ignore[arg-type]
    verify_log(ledger)


def test_empty_actor_is_rejected(ledger: Ledger) -> None:
    with pytest.raises(EntryError, match='field "actor"'):
        ledger.append("  ", Review(subject="P-1", outcome="approve"))


def test_timestamps_never_decrease_and_indexes_have_no_gaps(ledger: Ledger) -> None:
    for i in range(5):
        ledger.append("a", Review(subject=f"P-{i}", outcome="approve"))
    entries = list(ledger.entries())
    assert [e.index for e in entries] == list(range(5))
    assert all(a.timestamp <= b.timestamp for a, b in zip(entries, entries[1:], strict=False))


def _fill(ledger: Ledger, n: int) -> list[bytes]:
    ledger.append_many(
        [("a", Decision(subject=f"P-{i}", action="set", outcome=str(i))) for i in range(n)]
    )
    return [leaf for _i, _b, leaf, _s in ledger.rows()]


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 70), data=st.data())
def test_stored_proofs_equal_reference_proofs(
    tmp_path_factory: pytest.TempPathFactory, n: int, data: st.DataObject
) -> None:
    """Proofs read from stored subtrees equal the RFC 9162 reference at every size."""
    path = tmp_path_factory.mktemp("p") / "log.sqlite"
    with Ledger(path) as log:
        leaves = _fill(log, n)
        source = source_from_leaves(leaves)
        size = data.draw(st.integers(1, n))
        index = data.draw(st.integers(0, size - 1))
        proof = log.inclusion_proof(index, size)
        assert [bytes.fromhex(h) for h in proof.proof] == inclusion_proof(index, size, source)
        assert bytes.fromhex(proof.root_hash) == root_from_leaf_hashes(leaves[:size])
        assert proof.verify()
        size1 = data.draw(st.integers(1, size))
        cons = log.consistency_proof(size1, size)
        want = consistency_proof(size1, size, source) if size1 < size else []
        assert [bytes.fromhex(h) for h in cons.proof] == want
        assert cons.verify()


def test_proof_arguments_out_of_range(ledger: Ledger) -> None:
    _fill(ledger, 3)
    with pytest.raises(LedgerError, match="entry 3"):
        ledger.inclusion_proof(3)
    with pytest.raises(LedgerError, match="outside"):
        ledger.inclusion_proof(0, 4)
    with pytest.raises(LedgerError, match="consistency"):
        ledger.consistency_proof(0, 3)
    with pytest.raises(LedgerError, match="no entry 7"):
        ledger.get(7)


def test_checkpoint_is_a_signed_c2sp_note(ledger: Ledger, signer: Signer) -> None:
    leaves = _fill(ledger, 5)
    stored = ledger.checkpoint([signer])
    checkpoint, opened = open_checkpoint(stored.note, [signer.verifier], origin=ORIGIN)
    assert checkpoint.tree_size == 5
    assert checkpoint.root_hash == root_from_leaf_hashes(leaves)
    assert opened.verified == (ORIGIN,)
    assert [k.vkey for k in ledger.keyring()] == [str(signer.verifier)]


def test_checkpoint_key_must_belong_to_the_log(ledger: Ledger) -> None:
    with pytest.raises(NoteError, match="does not belong"):
        ledger.checkpoint([Signer.generate("someone.else/log")])


def test_origin_is_fixed_at_creation(log_path: Path) -> None:
    Ledger(log_path, origin=ORIGIN).close()
    with pytest.raises(LedgerError, match="origin"):
        Ledger(log_path, origin="other/log")
    with Ledger(log_path) as log:
        assert log.origin == ORIGIN


def test_key_rotation_keeps_verification_anchored_on_the_old_key(
    ledger: Ledger, signer: Signer
) -> None:
    """After rotation, an auditor who only knew the old key still verifies new checkpoints."""
    _fill(ledger, 3)
    ledger.checkpoint([signer])
    new = Signer.generate(ORIGIN)
    ledger.rotate_key(signer, new)
    _fill(ledger, 4)
    ledger.checkpoint([new])
    report = verify_log(ledger, keys=[signer.verifier])
    assert str(new.verifier) in report.trusted_keys
    assert report.checkpoints == 3
    retired = {k.vkey: k.retired_at for k in ledger.keyring()}
    assert retired[str(signer.verifier)] is not None
    assert retired[str(new.verifier)] is None


def test_two_ledgers_on_one_file_interleave_without_fork(log_path: Path) -> None:
    """A second writer's appends are seen: the cached right edge is reloaded."""
    with Ledger(log_path) as first, Ledger(log_path) as second:
        first.append("a", Review(subject="1", outcome="approve"))
        second.append("b", Review(subject="2", outcome="approve"))
        first.append("a", Review(subject="3", outcome="approve"))
        assert first.size() == 3
        verify_log(first)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_writers_with_a_stale_head_rebuild_on_the_stored_one(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """An append whose cached head is stale changes nothing, then builds on the stored head."""
    if backend == "sqlite":
        target, schema = str(tmp_path / "log.sqlite"), None
    else:
        target = request.getfixturevalue("pg_available")
        schema = request.getfixturevalue("pg_schema")
    with Ledger(target, schema=schema) as first, Ledger(target, schema=schema) as second:
        for step in range(5):
            batch = [("a", Review(subject=f"a{step}.{j}", outcome="ok")) for j in range(3)]
            acked = first.append_many(batch)
            single = second.append("b", Review(subject=f"b{step}", outcome="ok"))
            assert single.index == acked[-1].index + 1
        assert first.append("a", Review(subject="last", outcome="ok")).index == 20
        assert first.size() == second.size() == 21
        assert first.root() == second.root()
        assert [e.index for e in first.entries()] == list(range(21))
        verify_log(first)


def test_a_failed_append_stores_nothing_and_the_next_one_succeeds(any_ledger: Ledger) -> None:
    """A statement failing inside an append rolls the whole append back, head included."""
    any_ledger.append("a", Review(subject="1", outcome="ok"))
    head = any_ledger.head()
    row = {"idx": 1, "body": b"x", "leaf_hash": b"\0" * 32, "subtrees": b""}
    with any_ledger.engine.begin() as connection:  # a row squatting on the next index
        connection.execute(insert(entries_table), row)
    with pytest.raises(LedgerError, match="nothing stored"):
        any_ledger.append("a", Review(subject="2", outcome="ok"))
    assert any_ledger.head() == head
    with any_ledger.engine.begin() as connection:
        connection.execute(delete(entries_table).where(entries_table.c.idx == 1))
    assert any_ledger.append("a", Review(subject="2", outcome="ok")).index == 1
    verify_log(any_ledger)


def test_postgres_style_url_is_accepted_for_sqlite_paths(tmp_path: Path) -> None:
    with Ledger(f"sqlite:///{tmp_path / 'x.sqlite'}") as log:
        log.append("a", Review(subject="1", outcome="approve"))
        assert log.size() == 1
