"""Build version info, as Bacalhau's `GET /api/v1/agent/version` sends it."""

from __future__ import annotations

from pydantic import Field

from .base import WireModel

GO_ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero time: what a Go client reads as "no build date" (an empty string fails)."""


class BuildVersionInfo(WireModel):
    """Bacalhau embeds this struct in its answer, so the keys are at the top level, spelled
    as its JSON tags spell them (lowercase); any case is read."""

    Major: str = Field(default="", alias="major")
    Minor: str = Field(default="", alias="minor")
    GitVersion: str = Field(default="", alias="gitversion")
    GitCommit: str = Field(default="", alias="gitcommit")
    BuildDate: str = Field(default=GO_ZERO_TIME, alias="builddate")
    GOOS: str = Field(default="", alias="goos")
    GOARCH: str = Field(default="", alias="goarch")
    Product: str = ""  # bacedge: which implementation answers ("bacedge")
