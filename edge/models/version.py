"""Build version info, as Bacalhau's `GET /api/v1/agent/version` sends it."""

from __future__ import annotations

from .base import WireModel

GO_ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero time: what a Go client reads as "no build date" (an empty string fails)."""


class BuildVersionInfo(WireModel):
    """Bacalhau embeds this struct (`models.BuildVersionInfo`) in its answer, so the keys are
    at the top level, spelled as its JSON tags spell them (`GitVersion`, `GOOS`). The legacy
    `model/v1beta1` spelled them in lowercase (`gitversion`); any case is read."""

    Major: str = ""
    Minor: str = ""
    GitVersion: str = ""
    GitCommit: str = ""
    BuildDate: str = GO_ZERO_TIME
    GOOS: str = ""
    GOARCH: str = ""
    Product: str = ""  # bacedge: which implementation answers ("bacedge")
