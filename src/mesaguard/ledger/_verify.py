"""The verifier: stream the whole log, recompute every hash, check every checkpoint.

Memory stays O(log n + chunk): entries are read in index order in fixed-size chunks and folded
into a `Frontier`; each stored subtree hash is compared as the leaf that completes it passes.
The first problem found is raised as a `TamperError` naming the entry and the kind of tampering.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from ._errors import NoteError, TamperError, TamperKind
from ._ledger import Ledger
from ._merkle import EMPTY_ROOT, HASH_SIZE, Frontier, leaf_hash, verify_consistency
from ._note import Checkpoint, VerifierKey, open_note


class VerifyReport(BaseModel):
    """What a successful verification checked."""

    model_config = ConfigDict(frozen=True)

    origin: str
    tree_size: int
    root_hash: str
    """Hex root recomputed from every entry."""
    checkpoints: int
    """Signed checkpoints checked (stored and supplied)."""
    trusted_keys: tuple[str, ...]
    """The vkeys whose signatures were accepted."""
    trust: str
    """Where trust came from: ``supplied`` keys or the log's own ``stored keyring``."""


class _Head(BaseModel):
    size: int
    root: bytes
    label: str


def _open_checkpoints(
    ledger: Ledger,
    keys: Sequence[VerifierKey],
    supplied: Sequence[str],
) -> tuple[list[_Head], set[VerifierKey], str]:
    """Check every checkpoint's signature; return their heads, the trusted keys and trust."""
    keyring = ledger.trusted_keys()
    trusted: set[VerifierKey] = set(keys)
    trust = "supplied keys"
    if not trusted:
        trusted = set(keyring[:1])
        trust = "stored keyring (pass --vkey for an independent audit)"
    candidates = set(keyring) | trusted
    heads: list[_Head] = []
    notes = [(f"stored checkpoint #{c.id}", c.note) for c in ledger.checkpoints()]
    notes += [(f"supplied checkpoint {i + 1}", note) for i, note in enumerate(supplied)]
    for label, note in notes:
        try:
            opened = open_note(note, candidates)
        except NoteError as error:
            raise TamperError(TamperKind.SIGNATURE, None, f"{label}: {error}") from error
        signers = {VerifierKey.parse(vkey) for vkey in opened.verified_keys}
        if not signers & trusted:
            raise TamperError(
                TamperKind.SIGNATURE,
                None,
                f"{label} is not signed by a trusted key (signed by {', '.join(opened.verified)})",
            )
        trusted |= signers  # a trusted key co-signed these keys in (key rotation)
        try:
            checkpoint = Checkpoint.parse(opened.text)
        except NoteError as error:
            raise TamperError(TamperKind.SIGNATURE, None, f"{label}: {error}") from error
        if checkpoint.origin != ledger.origin:
            raise TamperError(
                TamperKind.SIGNATURE,
                None,
                f"{label} is for log {checkpoint.origin!r}, not {ledger.origin!r}",
            )
        heads.append(_Head(size=checkpoint.tree_size, root=checkpoint.root_hash, label=label))
    heads.sort(key=lambda head: head.size)
    for earlier, later in zip(heads, heads[1:], strict=False):
        if earlier.size == later.size and earlier.root != later.root:
            raise TamperError(
                TamperKind.FORKED,
                None,
                f"{earlier.label} and {later.label} sign different roots for size {later.size}",
            )
    return heads, trusted, trust


def _locate_misplaced(ledger: Ledger, index: int, found: Any) -> TamperError:
    """Classify an entry whose stored index field disagrees with its position."""
    for position, body, _leaf, _subtrees in ledger.rows(index + 1):
        try:
            stored = json.loads(body).get("index")
        except (ValueError, AttributeError):
            continue
        if stored == index:
            return TamperError(
                TamperKind.REORDERED,
                index,
                f"position {index} holds entry {found!r}; entry {index} is at position {position}",
            )
    if isinstance(found, int) and found > index:
        return TamperError(
            TamperKind.MISSING,
            index,
            f"entries {index}..{found - 1} were removed and later entries renumbered "
            f"(position {index} holds entry {found})",
        )
    return TamperError(
        TamperKind.REORDERED, index, f"position {index} holds an entry with index {found!r}"
    )


def verify_log(
    ledger: Ledger,
    *,
    keys: Iterable[VerifierKey] = (),
    checkpoints: Iterable[str] = (),
    chunk: int = 20_000,
) -> VerifyReport:
    """Verify the whole log; raise `TamperError` at the first problem.

    ``keys`` are the verifier keys the auditor trusts (default: the first key of the log's own
    keyring, plus keys it co-signed in). ``checkpoints`` are signed notes an auditor kept; each
    must agree with the log (a log shorter than one is *truncated*, a different root *forked*).
    Checks, in stream order: no index is missing, every entry's stored index and position agree,
    time never runs backwards, every entry's bytes hash to its stored leaf hash, every stored
    subtree hash matches the recomputed one, and at each checkpoint size the recomputed root
    equals the signed root. Successive checkpoints are also checked with a consistency proof
    built from the stored tree, and the stored head must match the end of the stream.
    """
    heads, trusted, trust = _open_checkpoints(ledger, list(keys), list(checkpoints))
    # Read after the checkpoints, so that no checkpoint can be newer than the head; the entries
    # below the head never change once the head covers them, so no snapshot is needed.
    head_size, head_root, _head_time = ledger.head()
    for head in heads:
        if head.size == 0 and head.root != EMPTY_ROOT:
            raise TamperError(TamperKind.FORKED, 0, f"{head.label} signs a wrong empty root")
    heads = [head for head in heads if head.size > 0]
    frontier = Frontier()
    decode = json.JSONDecoder().decode
    last_time = ""
    next_head = 0
    last_good = 0  # size of the last checkpoint that matched
    for index, body, stored_leaf, subtrees in ledger.rows(stop=head_size, chunk=chunk):
        expected = frontier.size
        if index != expected:
            raise TamperError(
                TamperKind.MISSING,
                expected,
                f"no entry at index {expected} (the next stored entry is {index})",
            )
        leaf = leaf_hash(body)
        if leaf != stored_leaf:
            raise TamperError(
                TamperKind.EDITED,
                index,
                "the entry's bytes do not hash to its stored leaf hash",
            )
        try:
            fields = decode(body.decode("utf-8"))
            found, when = fields["index"], fields["timestamp"]
        except (ValueError, KeyError, TypeError) as error:
            raise TamperError(
                TamperKind.MALFORMED, index, f"the stored bytes are not an entry: {error}"
            ) from error
        if found != index:
            raise _locate_misplaced(ledger, index, found)
        if not isinstance(when, str) or when < last_time:
            raise TamperError(
                TamperKind.REORDERED,
                index,
                f"timestamp {when!r} is earlier than the previous entry's {last_time!r}",
            )
        last_time = when
        completed = frontier.push(leaf)
        if b"".join(completed) != subtrees:
            for level, recomputed in enumerate(completed, start=1):
                if subtrees[(level - 1) * HASH_SIZE : level * HASH_SIZE] != recomputed:
                    break
            else:
                level = len(completed) + 1
            first = max(index + 1 - (1 << level), 0)
            raise TamperError(
                TamperKind.TREE,
                first,
                f"the subtree hash stored with entry {index} (level {level}, entries "
                f"{first}..{index}) differs from the hash of the entries: an entry in "
                "that range was edited together with its leaf hash, or the stored hash was",
            )
        while next_head < len(heads) and heads[next_head].size == frontier.size:
            head = heads[next_head]
            if frontier.root() != head.root:
                raise TamperError(
                    TamperKind.FORKED,
                    last_good,
                    f"entries {last_good}..{head.size - 1} hash to a root that differs from "
                    f"{head.label} (size {head.size}): the log was rewritten at or after "
                    f"entry {last_good}",
                )
            last_good = head.size
            next_head += 1
    size = frontier.size
    root = frontier.root()
    if next_head < len(heads):
        head = heads[next_head]
        raise TamperError(
            TamperKind.TRUNCATED,
            size,
            f"the log has {size} entries but {head.label} covers {head.size}; entries "
            f"{size}..{head.size - 1} are missing",
        )
    if head_size > size:
        raise TamperError(
            TamperKind.TRUNCATED,
            size,
            f"the log has {size} entries but its head records {head_size}; entries "
            f"{size}..{head_size - 1} are missing",
        )
    if head_root != root:
        raise TamperError(
            TamperKind.TREE,
            size - 1 if size else None,
            f"the stored head root does not match the root of the {size} entries",
        )
    for earlier, later in zip(heads, heads[1:], strict=False):
        if earlier.size == later.size:
            continue
        proof = ledger.consistency_proof(earlier.size, later.size)
        hashes = [bytes.fromhex(h) for h in proof.proof]
        if not verify_consistency(earlier.size, later.size, earlier.root, later.root, hashes):
            raise TamperError(
                TamperKind.FORKED,
                earlier.size,
                f"{later.label} is not consistent with {earlier.label}",
            )
    return VerifyReport(
        origin=ledger.origin,
        tree_size=size,
        root_hash=root.hex(),
        checkpoints=len(heads),
        trusted_keys=tuple(sorted(str(k) for k in trusted)),
        trust=trust,
    )
