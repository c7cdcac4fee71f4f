"""A gate worker for the crash test: submits and delivers keys 0..N-1, printing progress.

Run as ``python crash_worker.py DIR N``; the test kills it with SIGKILL part-way and runs it
again. The "tracker" is a file of delivered ids, fsynced per line like a real side effect.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from gate_support import make_submission

from mesaguard.gate import ApplyRequest, AutonomyLevel, Gate, GateConfig, GateStore
from mesaguard.items import ActionType
from mesaguard.ledger import Ledger


def main() -> None:
    """Submit and deliver every key; a key already recorded is replayed, never re-applied."""
    directory, count = Path(sys.argv[1]), int(sys.argv[2])
    tracker = directory / "tracker.jsonl"

    def apply(request: ApplyRequest) -> None:
        with tracker.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"delivery_id": request.delivery_id}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    config = GateConfig(
        autonomy={action: AutonomyLevel.L2 for action in ActionType}, canary_rate=0.0
    )
    with (
        GateStore(directory / "gate.sqlite", durability="full") as store,
        Ledger(directory / "log.sqlite", origin="test.mesaguard/crash") as ledger,
    ):
        gate = Gate(None, store, ledger, config=config, applier=apply)
        if store.latest_verdict("triage") is None:
            gate.set_verdict("triage", "robustly-aligned")
        gate.deliver()  # resume: whatever an earlier run left in the outbox goes first
        for index in range(count):
            confidence = 0.5 if index % 4 == 0 else 0.95
            result = gate.submit(make_submission(f"key-{index}", confidence=confidence))
            gate.deliver()
            print(index, result.outcome.value, result.replayed, flush=True)


if __name__ == "__main__":
    main()
