"""Errors of the gate and its review queue.

```
MesaguardError
└── GateError                 the gate refused or could not do what was asked
    ├── PermissionDenied      the actor's role or tenant does not allow the action
    ├── InvalidTransition     the review is not in a state that allows the action
    ├── ReviewNotFound        no such review in the actor's tenant
    ├── IdempotencyConflict   a key was reused for a different submission
    └── StoreUnavailable      the gate's database failed; nothing was applied
```
"""

from __future__ import annotations

from .._errors import MesaguardError


class GateError(MesaguardError):
    """The gate refused or could not do what was asked."""


class PermissionDenied(GateError):
    """The actor may not do this (an agent reviewing, a reviewer managing, another tenant)."""


class InvalidTransition(GateError):
    """The review's state does not allow the action (or it changed concurrently)."""


class ReviewNotFound(GateError):
    """No review with this id in this tenant (other tenants' reviews are not visible)."""


class IdempotencyConflict(GateError):
    """An idempotency key already names a different submission in this tenant."""


class StoreUnavailable(GateError):
    """The gate's database could not be read or written; the decision was not applied.

    The caller may resubmit with the same idempotency key once the store is back: the key
    guarantees the decision is recorded (and applied) at most once.
    """
