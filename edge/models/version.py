"""Build version info, as Bacalhau's `GET /api/v1/agent/version` sends it."""

from __future__ import annotations

import platform

from edge import __version__

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


_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}
"""platform.machine() names as Go's GOARCH spells them."""


def this_build() -> BuildVersionInfo:
    """This program's version, as `agent/version` and every node's info report it."""
    major, minor, *_ = [*__version__.split("."), "0", "0"]
    machine = platform.machine()
    return BuildVersionInfo(
        Major=major,
        Minor=minor,
        GitVersion=f"v{__version__}",
        GOOS=platform.system().lower(),
        GOARCH=_GOARCH.get(machine.lower(), machine),
        Product="bacedge",
    )
