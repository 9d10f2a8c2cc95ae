"""Per-node NATS identities: nodes join with one-time tokens and may then speak and hear only
as themselves, on a real orchestrator with its embedded nats-server and real compute nodes.

The orchestrator holds `[nats] token` (the admin credential); the compute nodes never see
it: each joins with `bacedge node token create`'s token and keeps its own user.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from edge.transport import subjects

from .cluster import Cluster, noop_job, wait_until

pytestmark = pytest.mark.integration

ADMIN = "admin-secret-of-the-orchestrator"
RUNNING = 6


@pytest.fixture
def fleet(cluster: Cluster) -> Iterator[Cluster]:
    cluster.orchestrator(False, BACEDGE_NATS_TOKEN=ADMIN)
    yield cluster


def create_token(cluster: Cluster, *args: str) -> str:
    result = cluster.cli("node", "token", "create", *args, check=True)
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("bxj1."), result.stdout
    assert "--join TOKEN" in result.stderr
    assert "warning" not in result.stderr  # the orchestrator has a NATS token
    return token


def join(cluster: Cluster, name: str, token: str) -> None:
    cluster.compute(name, "--engines", "noop", "--join", token)


def identity(cluster: Cluster, name: str) -> dict[str, str]:
    path = cluster.root / name / "compute" / "nats-identity.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return dict(json.loads(path.read_text()))


def node_id(cluster: Cluster, name: str) -> str:
    return (cluster.root / name / "compute" / "node_id").read_text().strip()


def refused_join(cluster: Cluster, name: str, token: str) -> str:
    """`serve --compute --join TOKEN` that must exit at once with one line of reason."""
    result = cluster.cli(
        "serve",
        "--compute",
        "--data-dir",
        str(cluster.root / name),
        "--orchestrators",
        cluster.nats,
        "--engines",
        "noop",
        "--join",
        token,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert not (cluster.root / name / "compute" / "nats-identity.json").exists()
    return errors[0]


def test_nodes_join_with_tokens_run_jobs_and_keep_their_identity(fleet: Cluster) -> None:
    join(fleet, "a", create_token(fleet))
    join(fleet, "b", create_token(fleet, "--ttl", "10m"))
    fleet.wait_nodes(2)
    assert identity(fleet, "a")["NodeID"] == node_id(fleet, "a")
    assert identity(fleet, "a")["Password"] != identity(fleet, "b")["Password"]
    # The orchestrator keeps bcrypt hashes, never a node's password.
    conf = (fleet.root / "orchestrator" / "nats" / "nats-server.conf").read_text()
    assert identity(fleet, "a")["Password"] not in conf and ADMIN not in conf
    assert node_id(fleet, "a") in conf and "$2b$" in conf
    job = noop_job(count=4)
    job["Tasks"][0]["Engine"]["Params"] = {"Stdout": "hello from a node of its own\n"}
    job_id = fleet.submit(job)
    fleet.wait_state(job_id, "Completed", timeout=60)
    # Logs come back on the node's own subject.
    logs = fleet.cli("job", "logs", job_id, check=True)
    assert "hello from a node of its own" in logs.stdout
    # Restarted without its token, a node connects as itself.
    a = next(p for p in fleet.procs if p.name == "a")
    a.stop()
    fleet.procs.remove(a)
    fleet.compute("a", "--engines", "noop")
    wait_until(
        lambda: "connected to orchestrator" in (fleet.root / "logs" / "a.log").read_text(),
        60,
        "node a back",
    )
    fleet.wait_nodes(2)


async def _as_node(
    fleet: Cluster, user: str, password: str, errors: list[str]
) -> nats.aio.client.Client:
    async def error_cb(exc: Exception) -> None:
        errors.append(str(exc))

    return await nats.connect(
        fleet.nats,
        user=user,
        password=password,
        inbox_prefix=subjects.inbox(user),
        error_cb=error_cb,
        allow_reconnect=False,
        max_reconnect_attempts=0,
    )


def test_a_node_can_neither_speak_nor_hear_as_another(fleet: Cluster) -> None:
    join(fleet, "a", create_token(fleet))
    join(fleet, "b", create_token(fleet))
    fleet.wait_nodes(2)
    a, b = node_id(fleet, "a"), node_id(fleet, "b")
    on_b = noop_job(120)
    on_b["Constraints"] = [{"Key": "name", "Operator": "=", "Values": ["b"]}]
    job_id = fleet.submit(on_b)
    (execution,) = wait_until(
        lambda: [e for e in fleet.executions(job_id) if e["ComputeState"]["StateType"] == RUNNING],
        60,
        "the job to run on b",
    )
    creds = identity(fleet, "a")

    async def attack() -> list[str]:
        errors: list[str] = []
        nc = await _as_node(fleet, a, creds["Password"], errors)
        heard: list[bytes] = []

        async def hear(msg: Any) -> None:
            heard.append(msg.data)

        await nc.subscribe(subjects.offer(b), cb=hear)  # b's offers
        await nc.subscribe("bacedge.>", cb=hear)  # everything
        await nc.publish(subjects.heartbeat(b), b"{}")  # as b
        await nc.publish(subjects.LEGACY_UPDATES, b"{}")  # the shared subject of old
        await nc.flush()
        # On its own subject, a's handshake with b's ID is refused ...
        info = fleet.job(job_id)  # anything with b's ID will do; the body is what counts
        assert info
        node_b = next(n for n in fleet.nodes() if n["Info"]["NodeID"] == b)["Info"]
        reply = await nc.request(subjects.handshake(a), json.dumps(node_b).encode(), 5)
        answer = json.loads(reply.data)
        # ... and so is an update it sends about b's execution.
        update = {
            "NodeID": b,
            "Updates": [
                {
                    "Sequence": 1,
                    "ExecutionID": execution["ID"],
                    "JobID": job_id,
                    "NodeID": b,
                    "State": 8,  # Failed
                    "Message": "forged by a",
                }
            ],
        }
        await nc.request(subjects.updates(a), json.dumps(update).encode(), 5)
        await asyncio.sleep(1)
        await nc.close()
        assert answer["Accepted"] is False and a in answer["Reason"], answer
        assert heard == [], heard
        return errors

    errors = asyncio.run(attack())
    violations = " | ".join(errors)
    assert f'subscription to "{subjects.offer(b)}"' in violations, violations
    assert 'subscription to "bacedge.>"' in violations, violations
    assert f'publish to "{subjects.heartbeat(b)}"' in violations, violations
    assert f'publish to "{subjects.LEGACY_UPDATES}"' in violations, violations
    running = next(e for e in fleet.executions(job_id) if e["ID"] == execution["ID"])
    assert running["ComputeState"]["StateType"] == RUNNING, running
    assert fleet.job(job_id)["Job"]["State"]["StateType"] == "Running"
    orchestrator_log = (fleet.root / "logs" / "orchestrator.log").read_text()
    assert "handshake refused" in orchestrator_log
    assert "updates refused" in orchestrator_log

    async def wrong_password(user: str, password: str) -> str:
        try:
            nc = await _as_node(fleet, user, password, [])
        except Exception as exc:
            return str(exc)
        await nc.close()
        return "connected"

    assert "Authorization Violation" in asyncio.run(wrong_password(a, "guess"))
    assert "Authorization Violation" in asyncio.run(wrong_password(b, creds["Password"]))
    httpx.delete(f"{fleet.api}/api/v1/orchestrator/jobs/{job_id}", timeout=5)


def test_bad_join_tokens_are_refused_and_a_deleted_node_is_cut_off(fleet: Cluster) -> None:
    used = create_token(fleet)
    join(fleet, "a", used)
    fleet.wait_nodes(1)
    create_token(fleet)  # outstanding, so NATS lets joiners in and the orchestrator judges
    assert "already used" in refused_join(fleet, "again", used)
    assert "not a join token" in refused_join(fleet, "junk", "hello")
    forged = used.rsplit(".", 1)[0] + "." + "A" * 43
    assert "unknown join token" in refused_join(fleet, "forged", forged)
    short = create_token(fleet, "--ttl", "1s")
    time.sleep(1.5)
    assert "expired" in refused_join(fleet, "late", short)
    # The API refuses nonsense with a 400 and creates nothing.
    url = f"{fleet.api}/api/v1/orchestrator/join-tokens"
    for body in ({"TTL": "-5s"}, {"TTL": "9999d"}, {"TTL": "soon"}, [1, 2], {"TTL": 1e400}):
        response = httpx.post(url, content=json.dumps(body), timeout=5)
        assert response.status_code == 400, (body, response.text)
    # Deleting a node deletes its NATS user: its connection closes and it cannot return.
    a = node_id(fleet, "a")
    fleet.cli("node", "delete", a, check=True)
    log = fleet.root / "logs" / "a.log"
    wait_until(lambda: "NATS refused the credentials" in log.read_text(), 60, "a cut off")
    time.sleep(3)
    assert all(n["Info"]["NodeID"] != a for n in fleet.nodes())


def test_without_a_nats_token_join_tokens_warn_that_nothing_is_protected(cluster: Cluster) -> None:
    cluster.orchestrator(False)
    result = cluster.cli("node", "token", "create", check=True)
    assert "warning: NATS has no token" in result.stderr
    token = result.stdout.strip().splitlines()[-1]
    join(cluster, "a", token)
    cluster.wait_nodes(1)
    assert os.path.exists(cluster.root / "a" / "compute" / "nats-identity.json")
    assert Path(cluster.root / "orchestrator" / "orchestrator" / "identities.db").exists()


def test_a_node_waiting_to_join_stops_on_sigterm(cluster: Cluster) -> None:
    """Its uplink is down (nothing listens): it waits, and a signal still ends it at once."""
    proc = cluster.compute(
        "waiting",
        "--engines",
        "noop",
        "--join",
        "bxj1.0123456789abcdef." + "A" * 43,
    )
    log = cluster.root / "logs" / "waiting.log"
    wait_until(lambda: "orchestrator unreachable for the join" in log.read_text(), 60, "waiting")
    assert proc.popen is not None
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(20) == 0, log.read_text()
    assert not (cluster.root / "waiting" / "compute" / "nats-identity.json").exists()
