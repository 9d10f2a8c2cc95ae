"""Fixtures shared by the unit and integration tests: Podman, a running local S3 store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from podman import PodmanClient

from tests.podman_image import load_busybox, podman_socket
from tests.store_fixture import s3_store  # noqa: F401 - a fixture, reused by S3 tests

pytest_plugins = ["tests.hang_report"]


@pytest.fixture(scope="session")
def socket() -> str:
    """The rootless Podman socket (scripts/test.sh sets it up) with the busybox image loaded."""
    found = podman_socket()
    if found is None:
        pytest.skip("no rootless Podman: run scripts/test.sh (it runs `bacedge setup podman`)")
    load_busybox(found)
    return found


@pytest.fixture(scope="session")
def podman(socket: str) -> Iterator[PodmanClient]:
    with PodmanClient(base_url=f"unix://{socket}") as client:
        yield client
