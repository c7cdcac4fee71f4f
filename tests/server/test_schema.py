"""schemathesis against the checked-in OpenAPI schema and a real server: no 500, no violation.

Bounded so it stays well under a minute: a few examples per operation, deterministic.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from server_harness import Server

from mesaguard.server import OPENAPI_PATH

schema = schemathesis.openapi.from_path(OPENAPI_PATH)


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_conforms_to_its_schema(case: schemathesis.Case, server: Server) -> None:
    # An admin token reaches every operation; ``ignored_auth`` also replays without it.
    case.call_and_validate(
        base_url=server.url, headers={"Authorization": f"Bearer {server.tokens['admin-a']}"}
    )
