"""TLS for real: `bacedge setup tls` certificates, the API over HTTPS and NATS with TLS on a
real orchestrator, a compute node that trusts the CA, and everything that must be refused
with one line (no CA, a certificate for another name, plain HTTP to the HTTPS port) while
the server keeps running."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from edge.cli.main import cli

from .cluster import Cluster, wait_until

pytestmark = pytest.mark.integration


class TlsCluster(Cluster):
    """A cluster whose certificate names only `localhost`: 127.0.0.1 is the wrong name."""

    ca: Path = Path()

    @property
    def api(self) -> str:
        return f"https://localhost:{self.api_port}"

    @property
    def nats(self) -> str:
        return f"tls://localhost:{self.nats_port}"

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.api}{path}", verify=_ctx(self.ca), timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_api(self, proc: Any, timeout: float = 30.0) -> None:
        def up() -> bool:
            if not proc.alive():
                raise AssertionError(f"{proc.name} exited:\n{proc.output()[-3000:]}")
            return bool(self.get("/api/v1/agent/alive"))

        wait_until(up, timeout, "the orchestrator API over HTTPS")

    def nodes(self) -> list[dict[str, Any]]:
        return list(self.get("/api/v1/orchestrator/nodes")["Nodes"])


def _ctx(ca: Path) -> Any:
    import ssl

    return ssl.create_default_context(cafile=str(ca))


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsCluster]:
    root = Path(tmp_path_factory.mktemp("tls"))
    result = CliRunner().invoke(
        cli, ["setup", "tls", "--dir", str(root / "tls"), "--name", "localhost"]
    )
    assert result.exit_code == 0, result.output
    assert "https://" in result.output
    cluster = TlsCluster(root)
    cluster.ca = root / "tls" / "ca.pem"
    cert, key = str(root / "tls" / "server.pem"), str(root / "tls" / "server-key.pem")
    cluster.orchestrator(
        False,
        BACEDGE_API_TLS_CERT=cert,
        BACEDGE_API_TLS_KEY=key,
        BACEDGE_NATS_TLS_CERT=cert,
        BACEDGE_NATS_TLS_KEY=key,
    )
    cluster.compute("trusting", "--engines", "noop", BACEDGE_NATS_CACERT=str(cluster.ca))
    cluster.wait_nodes(1)
    yield cluster
    cluster.close()


def one_line_error(result: Any) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_job_runs_over_https_and_nats_tls(tls: TlsCluster, tmp_path: Path) -> None:
    spec = tmp_path / "job.json"
    job = {"Name": "tls", "Type": "batch", "Count": 1}
    job["Tasks"] = [{"Name": "main", "Engine": {"Type": "noop", "Params": {"Stdout": "hi\n"}}}]
    spec.write_text(json.dumps(job))
    result = tls.cli("job", "run", str(spec), "--cacert", str(tls.ca))
    assert result.returncode == 0, result.stdout + result.stderr + tls.logs()
    assert "hi" in result.stdout
    # BACEDGE_CACERT does the same
    listed = tls.cli("node", "list", env={"BACEDGE_CACERT": str(tls.ca)})
    assert listed.returncode == 0, listed.stderr
    assert "CONNECTED" in listed.stdout


def test_cli_without_the_ca_fails_with_one_line(tls: TlsCluster) -> None:
    line = one_line_error(tls.cli("node", "list"))
    assert "certificate" in line.lower() and "--cacert" in line, line


def test_certificate_for_another_name_is_refused(tls: TlsCluster) -> None:
    wrong = f"https://127.0.0.1:{tls.api_port}"
    line = one_line_error(tls.cli("node", "list", "--api", wrong, "--cacert", str(tls.ca)))
    assert "127.0.0.1" in line and "certificate" in line.lower(), line


def test_plain_http_to_the_https_port_does_not_crash_it(tls: TlsCluster) -> None:
    with pytest.raises(httpx.HTTPError):
        response = httpx.get(f"http://127.0.0.1:{tls.api_port}/api/v1/agent/alive", timeout=5)
        raise httpx.RemoteProtocolError(f"answered {response.status_code}")
    assert tls.procs[0].alive()
    assert tls.get("/api/v1/agent/alive")


def test_nodes_that_cannot_verify_nats_do_not_join(tls: TlsCluster) -> None:
    no_ca = tls.compute("no-ca", "--engines", "noop")
    wrong = tls.compute(
        "wrong-name",
        "--engines",
        "noop",
        "--orchestrators",
        f"tls://127.0.0.1:{tls.nats_port}",
        BACEDGE_NATS_CACERT=str(tls.ca),
    )
    wait_until(lambda: "nats unreachable" in no_ca.output(), 20, "the no-CA node's refusal")
    wait_until(lambda: "nats unreachable" in wrong.output(), 20, "the wrong-name refusal")
    for proc, words in ((no_ca, "[nats] cacert"), (wrong, "127.0.0.1")):
        line = next(ln for ln in proc.output().splitlines() if "nats unreachable" in ln)
        assert words in line and "Traceback" not in proc.output(), proc.output()
        assert proc.alive()
    assert tls.procs[0].alive()
    names = {n["Info"]["Labels"].get("name") for n in tls.nodes()}
    assert names == {"trusting"}, names
