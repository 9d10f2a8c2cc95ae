"""Bacalhau's published-key template: `{jobID}`, `{executionID}`, `{nodeID}`, `{date}`, `{time}`."""

from __future__ import annotations

import time

from edge.models import Execution


def published_key(template: str, execution: Execution, node_id: str, archive: bool) -> str:
    """As Bacalhau's ParsePublishedKey: archives end in .tar.gz, folders in '/'; an archive
    key that names a folder gets the execution ID as its file name."""
    key = template
    if archive and key.endswith("/"):
        key += "{executionID}"  # a folder: one archive per execution in it (Bacalhau: "/.tar.gz")
    if archive and not key.endswith(".tar.gz"):
        key += ".tar.gz"
    if not archive and not key.endswith("/"):
        key += "/"
    now = time.gmtime()
    return (
        key.replace("{nodeID}", node_id)
        .replace("{executionID}", execution.ID)
        .replace("{jobID}", execution.JobID)
        .replace("{date}", time.strftime("%Y%m%d", now))
        .replace("{time}", time.strftime("%H%M%S", now))
    )
