"""bacedge's config under Bacalhau's key names, for `GET /api/v1/agent/config`.

Bacalhau answers `{"config": types.Bacalhau}`; keys without a bacedge equivalent are left
out, and secrets are shown as Bacalhau shows them ("<redacted>").
"""

from __future__ import annotations

from typing import Any

from edge.config import Config, UserSection
from edge.models import NodeInfo

REDACTED = "<redacted>"
ENGINES = ("docker", "wasm", "noop")


def go_duration(seconds: float) -> str:
    """Seconds as Go's time.Duration prints them ("45s", "30m0s", "1h0m0s", "500ms")."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:g}s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{int(minutes)}m{text}"
    return text


def bacalhau_config(config: Config, node: NodeInfo | None) -> dict[str, Any]:
    """The Bacalhau-named view; `node` is this process's compute node, if it runs one."""
    compute = config.compute
    orchestrator = config.orchestrator
    execution_timeout = {"ExecutionTimeout": go_duration(compute.default_execution_timeout)}
    out: dict[str, Any] = {
        "API": {"Host": config.api.host, "Port": config.api.port},
        "NameProvider": "puuid",  # node IDs are n-<uuid>, kept in the data dir
        "DataDir": str(config.data_dir),
        "Orchestrator": {
            "Enabled": True,
            "Host": config.nats.host,
            "Port": config.nats.port,
            "NodeManager": {
                "DisconnectTimeout": go_duration(orchestrator.node_heartbeat_timeout),
                "ManualApproval": not orchestrator.auto_approve_nodes,
            },
        },
        "Compute": {
            "Enabled": node is not None,
            "Orchestrators": list(config.nats.servers or compute.orchestrators),
            "Heartbeat": {"Interval": go_duration(compute.heartbeat_interval)},
            "AllocatedCapacity": {
                "CPU": compute.cpu,
                "Memory": compute.memory,
                "Disk": compute.disk,
            },
            "AllowListedLocalPaths": [str(p) for p in compute.allowed_local_paths],
        },
        "Labels": dict(config.node.labels),
        "JobDefaults": {
            "Batch": {"Task": {"Timeouts": execution_timeout}},
            "Ops": {"Task": {"Timeouts": execution_timeout}},
        },
        # Bacalhau 1.7 reads RejectNetworkedJobs; older releases AcceptNetworkedJobs.
        "JobAdmissionControl": {
            "AcceptNetworkedJobs": compute.allow_networking,
            "RejectNetworkedJobs": not compute.allow_networking,
        },
        "Logging": {
            "Level": config.log.level,
            "Mode": "json" if config.log.format == "json" else "default",
        },
    }
    if config.api.auth.users:
        out["API"]["Auth"] = {"Users": [_user(u) for u in config.api.auth.users]}
    if config.nats.token is not None:
        out["Orchestrator"]["Auth"] = {"Token": REDACTED}
        out["Compute"]["Auth"] = {"Token": REDACTED}
    if node is not None:
        enabled = set(node.ComputeNodeInfo.ExecutionEngines)
        out["Engines"] = {"Disabled": [e for e in ENGINES if e not in enabled]}
    return out


def _user(user: UserSection) -> dict[str, Any]:
    """One of Bacalhau's `API.Auth.Users`, secrets redacted."""
    out: dict[str, Any] = {"Alias": user.alias, "Username": user.username}
    if user.password is not None:
        out["Password"] = REDACTED
    if user.api_key is not None:
        out["APIKey"] = REDACTED
    out["Capabilities"] = [{"Actions": list(c.actions)} for c in user.capabilities]
    return out
