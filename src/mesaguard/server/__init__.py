"""The review server: a REST API for agents and a web UI for reviewers, over the gate.

Agents submit decisions with an API token; the gate applies, queues or denies them under the
constitution in force; reviewers log in (Argon2id passwords, server-side sessions, CSRF-checked
forms) and approve, modify, reject or escalate queued decisions within their own tenant; every
step lands in the Ethics Review Log, whose verification status and latest signed checkpoint the
server shows. Approved and applied decisions go to the tracker side through a retried webhook.

```python
from mesaguard.server import ServerSettings, run_server

run_server(ServerSettings(db="gate.sqlite", ledger="log.sqlite"), port=8000)
```
"""

from ._app import OPENAPI_PATH, app_from_env, create_app, openapi_schema, run_server
from ._auth import AuthStore, IssuedToken, Principal, Session, TokenInfo
from ._errors import AuthError, ServerConfigError, ServerError, UserExistsError
from ._logstatus import LogEntryView, LogMonitor, LogStatus
from ._settings import ServerSettings

__all__ = [
    "OPENAPI_PATH",
    "AuthError",
    "AuthStore",
    "IssuedToken",
    "LogEntryView",
    "LogMonitor",
    "LogStatus",
    "Principal",
    "ServerConfigError",
    "ServerError",
    "ServerSettings",
    "Session",
    "TokenInfo",
    "UserExistsError",
    "app_from_env",
    "create_app",
    "openapi_schema",
    "run_server",
]
