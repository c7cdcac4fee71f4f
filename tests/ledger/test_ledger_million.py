"""A log of 1,000,000 entries: builds, verifies, proves, and locates tampering (slow tier)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from mesaguard.ledger import Decision, Ledger, Signer, TamperError, TamperKind, verify_log
from mesaguard.ledger._store import entries_table

pytestmark = pytest.mark.slow

N = 1_000_000


def test_million_entry_log(tmp_path: Path) -> None:
    signer = Signer.generate("million/log")
    with Ledger(tmp_path / "log.sqlite", origin=signer.name, durability="normal") as log:
        record = Decision(subject="P-1", action="set-priority", outcome="Major")
        for start in range(0, N, 50_000):
            log.append_many([("agent:triage", record)] * 50_000)
            if start == N // 2:
                log.checkpoint([signer])
        log.checkpoint([signer])
        report = verify_log(log, keys=[signer.verifier], chunk=50_000)
        assert report.tree_size == N
        assert report.checkpoints == 2
        for index in (0, 123_456, N - 1):
            assert log.inclusion_proof(index).verify()
        assert log.consistency_proof(N // 2 + 50_000, N).verify()
        assert log.consistency_proof(777_777).verify()
        with log.engine.begin() as connection:
            connection.execute(
                update(entries_table).where(entries_table.c.idx == 876_543).values(body=b"{}")
            )
        with pytest.raises(TamperError) as caught:
            verify_log(log, keys=[signer.verifier], chunk=50_000)
        assert (caught.value.kind, caught.value.index) == (TamperKind.EDITED, 876_543)
