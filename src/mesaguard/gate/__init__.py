"""The gate: bounded autonomy for agent decisions, the review queue, and the apply outbox.

```python
from mesaguard.gate import Actor, Gate, GateConfig, GateStore, Role, Submission

gate = Gate(None, GateStore("gate.sqlite"), ledger, config=GateConfig(autonomy={...}))
result = gate.submit(Submission(idempotency_key="k1", agent="triage", decision=decision))
result.outcome, result.reasons          # applied / queued / denied, and why
gate.review(Actor(name="ana", role=Role.REVIEWER), result.review_id, "approve")
gate.deliver(applier)                    # applied decisions to the tracker, retried
```
"""

from ._errors import (
    GateError,
    IdempotencyConflict,
    InvalidTransition,
    PermissionDenied,
    ReviewNotFound,
    StoreUnavailable,
)
from ._facts import labels_of, policy_input, priority_rank
from ._gate import FLAGGED_LABELS, Applier, Gate, verdict_cap
from ._models import (
    Actor,
    ApplyRequest,
    AutonomyLevel,
    ConstitutionRecord,
    DeliveryReport,
    GateConfig,
    GateResult,
    OutboxEntry,
    OutboxState,
    Outcome,
    ReviewAction,
    ReviewActionKind,
    ReviewItem,
    ReviewState,
    Role,
    Submission,
    Target,
    VerdictRecord,
)
from ._store import GateStore

__all__ = [
    "FLAGGED_LABELS",
    "Actor",
    "Applier",
    "ApplyRequest",
    "AutonomyLevel",
    "ConstitutionRecord",
    "DeliveryReport",
    "Gate",
    "GateConfig",
    "GateError",
    "GateResult",
    "GateStore",
    "IdempotencyConflict",
    "InvalidTransition",
    "OutboxEntry",
    "OutboxState",
    "Outcome",
    "PermissionDenied",
    "ReviewAction",
    "ReviewActionKind",
    "ReviewItem",
    "ReviewNotFound",
    "ReviewState",
    "Role",
    "StoreUnavailable",
    "Submission",
    "Target",
    "VerdictRecord",
    "labels_of",
    "policy_input",
    "priority_rank",
    "verdict_cap",
]
