"""The bacedge terminal UI: attach to any Bacalhau-compatible orchestrator over its HTTP API.

`run(target, ...)` starts it; `BacedgeApp` is the Textual app; `ClusterTarget` says which
cluster. Nothing here imports the orchestrator or the compute agent: the TUI only speaks
the public API, through `edge.client`.
"""

from __future__ import annotations

from .app import BacedgeApp
from .client import ApiLike, ClusterTarget

__all__ = ["ApiLike", "BacedgeApp", "ClusterTarget", "run"]


def run(
    target: ClusterTarget,
    *,
    read_only: bool = False,
    refresh_interval: float = 2.0,
    log_lines: int = 100_000,
) -> None:
    """Run the TUI in this terminal until the user quits."""
    BacedgeApp(
        target,
        read_only=read_only,
        refresh_interval=refresh_interval,
        log_lines=log_lines,
    ).run()
