"""The Ethics Review Log: an append-only RFC 9162 Merkle log with signed C2SP checkpoints.

Every decision, escalation, review, red-team report and constitution change is appended as a
typed `Entry` (canonical RFC 8785 JSON). The entries form an RFC 9162 Merkle tree; `Ledger`
stores them in SQLite (default) or PostgreSQL with the subtree hashes, so inclusion and
consistency proofs cost O(log n) reads. Checkpoints are C2SP signed notes (Ed25519), and
`verify_log` streams the whole log and names the first bad entry and what is wrong with it.

```python
from mesaguard.ledger import Decision, Ledger, Signer, verify_log

with Ledger("review-log.sqlite", origin="example.org/ethics-log") as log:
    log.append("agent:triage", Decision(subject="PROJ-7", action="set-priority", outcome="Major"))
    key = Signer.generate("example.org/ethics-log")
    log.checkpoint([key])
    verify_log(log, keys=[key.verifier])
```
"""

from ._entries import (
    CheckpointReference,
    ConstitutionChange,
    Decision,
    Entry,
    Escalation,
    Record,
    RedTeamReport,
    Review,
    canonical_json,
    parse_entry,
    parse_record,
)
from ._errors import EntryError, LedgerError, NoteError, TamperError, TamperKind
from ._ledger import (
    DEFAULT_DATABASE,
    AppendedEntry,
    ConsistencyProof,
    InclusionProof,
    KeyringEntry,
    Ledger,
    StoredCheckpoint,
)
from ._merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    source_from_leaves,
    verify_consistency,
    verify_inclusion,
)
from ._note import (
    Checkpoint,
    Cosignature,
    Note,
    NoteSignature,
    OpenedNote,
    SignatureType,
    Signer,
    VerifierKey,
    open_checkpoint,
    open_note,
    parse_cosignature,
    parse_note,
    sign_note,
)
from ._verify import VerifyReport, verify_log

__all__ = [
    "DEFAULT_DATABASE",
    "EMPTY_ROOT",
    "AppendedEntry",
    "Checkpoint",
    "CheckpointReference",
    "ConsistencyProof",
    "ConstitutionChange",
    "Cosignature",
    "Decision",
    "Entry",
    "EntryError",
    "Escalation",
    "Frontier",
    "InclusionProof",
    "KeyringEntry",
    "Ledger",
    "LedgerError",
    "Note",
    "NoteError",
    "NoteSignature",
    "OpenedNote",
    "Record",
    "RedTeamReport",
    "Review",
    "SignatureType",
    "Signer",
    "StoredCheckpoint",
    "TamperError",
    "TamperKind",
    "VerifierKey",
    "VerifyReport",
    "canonical_json",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "parse_cosignature",
    "parse_entry",
    "parse_note",
    "parse_record",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "sign_note",
    "source_from_leaves",
    "verify_consistency",
    "verify_inclusion",
    "verify_log",
]
