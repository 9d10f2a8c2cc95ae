"""Every route of the API, once: method, path, handler, the capability it needs, summary.

`Api.app()` adds exactly these routes to the aiohttp router, the auth middleware asks the
matched route what it needs, and `openapi.py` documents each one with its security
requirement. A route that is not in this table does not exist.

Capabilities are Bacalhau's (`edge.auth.ACTIONS`). `PUBLIC` routes need no credentials
(liveness and version, as in Bacalhau, and the OpenAPI document); `SIGNED_IN` routes need
valid credentials and no capability (who am I).
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.auth import ACTIONS

__all__ = ["PREFIX", "PUBLIC", "ROUTES", "SIGNED_IN", "Route"]

PREFIX = "/api/v1/orchestrator"
PUBLIC = "public"
SIGNED_IN = "signed-in"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: str  # the name of an `Api` method
    capability: str  # one of edge.auth.ACTIONS, PUBLIC or SIGNED_IN
    summary: str

    def __post_init__(self) -> None:
        if self.capability not in (*ACTIONS, PUBLIC, SIGNED_IN):
            raise ValueError(f"{self.method} {self.path}: unknown capability {self.capability!r}")

    @property
    def public(self) -> bool:
        return self.capability == PUBLIC


_J = f"{PREFIX}/jobs/{{id}}"
_N = f"{PREFIX}/nodes"

ROUTES: tuple[Route, ...] = (
    # agent
    Route("GET", "/api/v1/agent/alive", "alive", PUBLIC, "liveness"),
    Route("GET", "/api/v1/agent/version", "version", PUBLIC, "version"),
    Route("GET", "/api/v1/agent/node", "agent_node", "read:agent", "this node's info"),
    Route(
        "GET",
        "/api/v1/agent/config",
        "agent_config",
        "read:agent",
        "effective config, secrets masked: `config` with Bacalhau's key names, `bacedge` as "
        "`bacedge config show` prints it",
    ),
    Route(
        "GET",
        "/api/v1/agent/capabilities",
        "capabilities",
        SIGNED_IN,
        "who the caller is and the actions its credentials allow (bacedge)",
    ),
    Route("GET", "/api/v1/openapi.json", "openapi", PUBLIC, "this OpenAPI document (bacedge)"),
    Route("GET", "/metrics", "metrics", "read:agent", "Prometheus metrics (bacedge)"),
    # jobs
    Route("PUT", f"{PREFIX}/jobs", "put_job", "write:job", "submit a job"),
    Route("POST", f"{PREFIX}/jobs", "put_job", "write:job", "submit a job"),
    Route("GET", f"{PREFIX}/jobs", "list_jobs", "read:job", "list jobs"),
    Route("GET", _J, "get_job", "read:job", "get a job"),
    Route("DELETE", _J, "stop_job", "write:job", "stop a job"),
    Route("PUT", f"{_J}/rerun", "rerun_job", "write:job", "rerun a job"),
    Route("POST", f"{_J}/rerun", "rerun_job", "write:job", "rerun a job"),
    Route("GET", f"{_J}/history", "job_history", "read:job", "job history"),
    Route("GET", f"{_J}/executions", "job_executions", "read:job", "executions"),
    Route("GET", f"{_J}/versions", "job_versions", "read:job", "job versions"),
    Route("GET", f"{_J}/results", "job_results", "read:job", "published results"),
    Route(
        "GET",
        f"{_J}/executions/{{execution}}/result",
        "execution_result",
        "read:job",
        "one execution's published result as .tar.gz, relayed from its node or store (bacedge)",
    ),
    Route(
        "GET", f"{_J}/logs", "job_logs", "read:job", "WebSocket of log frames {value: {Type, Line}}"
    ),
    Route(
        "GET",
        f"{PREFIX}/events",
        "events",
        "read:job",
        "job, execution and node lifecycle events as Server-Sent Events (bacedge)",
    ),
    # nodes
    Route("GET", _N, "list_nodes", "read:node", "list nodes"),
    Route("GET", f"{_N}/{{id}}", "get_node", "read:node", "get a node"),
    Route(
        "PUT",
        f"{_N}/{{id}}",
        "update_node",
        "write:node",
        "approve, reject or delete a node; bacedge: cordon, uncordon, drain",
    ),
    Route(
        "POST",
        f"{PREFIX}/join-tokens",
        "create_join_token",
        "write:node",
        "a one-time token a compute node joins with, getting its own NATS identity "
        '(bacedge); body {"TTL": "24h"}, optional',
    ),
    Route("PUT", _N, "update_node", "write:node", "a node action, NodeID in the body"),
    Route("POST", _N, "update_node", "write:node", "a node action (Bacalhau 1.4 and older)"),
)
