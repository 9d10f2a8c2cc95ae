"""The TUI against a real orchestrator served over HTTPS (`bacedge setup tls`): with the CA
(`--cacert`) it shows the nodes; without it the link is down with the TLS reason, no crash."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge.cli.common import resolve_connection
from edge.cli.main import cli
from tests.integration.test_tls import TlsCluster
from tui import BacedgeApp, ClusterTarget
from tui.widgets import KeyedTable

from .conftest import until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsCluster]:
    root = Path(tmp_path_factory.mktemp("tui-tls"))
    tls = root / "tls"
    result = CliRunner().invoke(cli, ["setup", "tls", "--dir", str(tls), "--name", "localhost"])
    assert result.exit_code == 0, result.output
    cluster = TlsCluster(root)
    cluster.ca = tls / "ca.pem"
    cert, key = str(tls / "server.pem"), str(tls / "server-key.pem")
    cluster.orchestrator(
        True,
        "--engines",
        "noop",
        BACEDGE_API_TLS_CERT=cert,
        BACEDGE_API_TLS_KEY=key,
        BACEDGE_NATS_TLS_CERT=cert,
        BACEDGE_NATS_TLS_KEY=key,
    )
    cluster.wait_nodes(1)
    yield cluster
    cluster.close()


def _target(cluster: TlsCluster, *flags: str) -> ClusterTarget:
    """The target `bacedge tui --api URL [flags]` builds (edge/cli/tui.py)."""
    from edge.cli.tui import tui as command

    ctx = command.make_context("tui", ["--api", cluster.api, *flags])
    with ctx:
        p = ctx.params
        conn = resolve_connection(
            ctx, p["api"], p["api_key"], p["api_user"], p["cacert"], p["insecure"], p["profile"]
        )
    return ClusterTarget(api=conn.api, verify=conn.verify)


async def test_tui_with_cacert_shows_the_nodes(https: TlsCluster) -> None:
    target = _target(https, "--cacert", str(https.ca))
    assert target.verify == str(https.ca)
    app = BacedgeApp(target, refresh_interval=0.3, start="nodes")
    async with app.run_test(size=(160, 40)) as pilot:
        table = await until(
            pilot, lambda: app.screen.query("#nodes-table").first(KeyedTable), "the nodes screen"
        )
        node_id = https.nodes()[0]["Info"]["NodeID"]
        await until(pilot, lambda: table.cells(node_id), "the node, over HTTPS")
        assert app.link.ok


async def test_tui_without_the_ca_says_why(https: TlsCluster) -> None:
    app = BacedgeApp(_target(https), refresh_interval=0.3, start="nodes")
    async with app.run_test(size=(160, 40)) as pilot:
        await until(pilot, lambda: app.link.status == "down", "the link to go down")
        assert "--cacert" in app.link.message and "certificate" in app.link.message.lower()
