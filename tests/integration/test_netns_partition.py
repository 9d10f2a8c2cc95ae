"""Partitions made with a real network link: the compute node runs in a network namespace of
the test's own, joined to the host (orchestrator, embedded NATS) by a veth pair.

Unlike freezing the process (test_partition.py), the node keeps working while its link is
down: its NATS connection stalls, its updates wait in its ledger's outbox, and the link
coming back must deliver them. This kernel has no `netem` qdisc, so a slow and lossy link is
made as PLATFORM.md says: iptables drops 5% of packets at random inside the namespace, and a
TCP proxy of the test's own between the node and NATS adds 150 ms each way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .cluster import Cluster, free_port, noop_job, wait_until

pytestmark = pytest.mark.integration

COMPLETED, RUNNING = 9, 6


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@dataclass
class Link:
    """A veth pair: `host_if` (host_ip) in the host, its peer (ns_ip) in namespace `ns`."""

    ns: str
    host_if: str
    host_ip: str
    ns_ip: str

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.ns]

    def cut(self) -> None:
        ip("link", "set", self.host_if, "down")

    def heal(self) -> None:
        ip("link", "set", self.host_if, "up")

    def dropped(self) -> int:
        """Packets the random-drop rules have dropped so far."""
        listing = subprocess.run(
            [*self.prefix, "iptables", "-L", "-v", "-x", "-n"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return sum(
            int(line.split()[0])
            for line in listing.splitlines()
            if "DROP" in line and "statistic" in line
        )

    def drop_randomly(self, probability: float) -> None:
        for chain in ("INPUT", "OUTPUT"):
            subprocess.run(
                [
                    *self.prefix,
                    "iptables",
                    "-A",
                    chain,
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                    str(probability),
                    "-j",
                    "DROP",
                ],
                check=True,
                capture_output=True,
            )


@pytest.fixture
def link() -> Iterator[Link]:
    assert os.geteuid() == 0, "network namespace tests need root (as .ci/run runs them)"
    tag = f"{os.getpid() % 10000}{int(time.monotonic() * 1000) % 100}"
    subnet = f"10.203.{int(tag) % 250}"
    made = Link(f"bxns{tag}", f"bxh{tag}", f"{subnet}.1", f"{subnet}.2")
    ip("netns", "add", made.ns)
    try:
        ip("link", "add", made.host_if, "type", "veth", "peer", "name", f"bxc{tag}")
        ip("link", "set", f"bxc{tag}", "netns", made.ns)
        ip("addr", "add", f"{made.host_ip}/30", "dev", made.host_if)
        ip("link", "set", made.host_if, "up")
        ip("netns", "exec", made.ns, "ip", "addr", "add", f"{made.ns_ip}/30", "dev", f"bxc{tag}")
        ip("netns", "exec", made.ns, "ip", "link", "set", f"bxc{tag}", "up")
        ip("netns", "exec", made.ns, "ip", "link", "set", "lo", "up")
        yield made
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("link", "del", made.host_if)
        with contextlib.suppress(subprocess.CalledProcessError):
            ip("netns", "del", made.ns)


class DelayProxy:
    """host:port -> 127.0.0.1:target, each chunk delivered `delay` seconds after it was read,
    in order, both ways: a slow link for TCP without netem."""

    def __init__(self, host: str, target: int, delay: float) -> None:
        self.host, self.port, self.target, self.delay = host, free_port(), target, delay
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None
        self.connections = 0

    def __enter__(self) -> DelayProxy:
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._client, self.host, self.port), self.loop
        ).result(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        async def close() -> None:
            assert self.server is not None
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        # Closing the proxy cancels this task; asyncio's stream callback then logs a cancelled
        # client as an error, so a cancellation ends it quietly instead.
        with contextlib.suppress(asyncio.CancelledError):
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
            await asyncio.gather(
                self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
            )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if not data:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(deliver())
        try:
            while True:
                data = await reader.read(65536)
                queue.put_nowait((time.monotonic() + self.delay, data))
                if not data:
                    break
            await sender
        finally:
            sender.cancel()


def outbox(data_dir: Path) -> int:
    """Updates the node holds that the orchestrator has not acknowledged yet."""
    with sqlite3.connect(data_dir / "compute" / "ledger.db") as db:
        return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])


def node_status(cluster: Cluster, name: str) -> str:
    for node in cluster.nodes():
        if node["Info"]["Labels"].get("name") == name:
            return str(node["ConnectionState"]["Status"])
    return "UNKNOWN"


def test_a_cut_link_inside_the_grace_window_loses_nothing_and_runs_nothing_twice(
    cluster: Cluster, link: Link
) -> None:
    cluster.disconnect_grace = 300
    cluster.orchestrator(False, "--nats-host", "0.0.0.0")
    url = f"nats://{link.host_ip}:{cluster.nats_port}"
    cluster.compute("edge", "--engines", "noop", "--orchestrators", url, prefix=link.prefix)
    cluster.wait_nodes(1)
    held = [cluster.submit(noop_job(12)) for _ in range(3)]
    for job_id in held:
        wait_until(
            lambda j=job_id: [
                e for e in cluster.executions(j) if e["ComputeState"]["StateType"] == RUNNING
            ],
            60,
            f"{job_id} to run on the far node",
        )
    # A node that could take the far node's work over, were the grace window not kept.
    cluster.compute("spare", "--engines", "noop")
    cluster.wait_nodes(2)
    link.cut()
    cut_at = time.monotonic()
    try:
        wait_until(lambda: node_status(cluster, "edge") == "DISCONNECTED", 30, "edge silent")
        # Inside the window: work placed during the cut goes to the node that answers, and
        # the far node's work is neither failed over nor started again.
        during = [cluster.submit(noop_job(0)) for _ in range(2)]
        for job_id in during:
            cluster.wait_state(job_id, "Completed", timeout=60)
            (ran,) = cluster.executions(job_id)
            assert cluster.node_name(ran["NodeID"]) == "spare"
        time.sleep(max(0.0, 35 - (time.monotonic() - cut_at)))  # a 35 s outage in all
        for job_id in held:
            executions = cluster.executions(job_id)
            assert len(executions) == 1, f"{job_id} ran twice during the cut: {executions}"
    finally:
        link.heal()
    for job_id in held:
        body = cluster.wait_state(job_id, "Completed", "Failed", timeout=120)
        assert body["Job"]["State"]["StateType"] == "Completed", body["Job"]["State"]
        (only,) = cluster.executions(job_id)
        assert only["ComputeState"]["StateType"] == COMPLETED
    wait_until(lambda: node_status(cluster, "edge") == "CONNECTED", 60, "edge back")
    wait_until(lambda: outbox(cluster.root / "edge") == 0, 60, "the node's outbox to drain")


def test_a_slow_lossy_link_loses_no_job_and_runs_none_twice(cluster: Cluster, link: Link) -> None:
    cluster.disconnect_grace = 300
    cluster.orchestrator(False, "--nats-host", "127.0.0.1")
    with DelayProxy(link.host_ip, cluster.nats_port, delay=0.15) as proxy:
        link.drop_randomly(0.05)
        url = f"nats://{link.host_ip}:{proxy.port}"
        cluster.compute("edge", "--engines", "noop", "--orchestrators", url, prefix=link.prefix)
        cluster.wait_nodes(1, timeout=60)
        # A small job is a few dozen packets, so at 5% a dozen jobs can pass with no loss at
        # all (it did, on CI): submit rounds of jobs until the link has dropped some packets.
        rounds = 0
        while rounds < 12 and (rounds < 2 or link.dropped() < 3):
            rounds += 1
            jobs = [cluster.submit(noop_job(0.5)) for _ in range(6)]
            for job_id in jobs:
                body = cluster.wait_state(job_id, "Completed", "Failed", timeout=180)
                assert body["Job"]["State"]["StateType"] == "Completed", body["Job"]["State"]
                assert len(cluster.executions(job_id)) == 1, f"{job_id} ran twice"
        wait_until(lambda: outbox(cluster.root / "edge") == 0, 60, "the node's outbox to drain")
        # The link really was slow and lossy: the node spoke through the proxy, packets died.
        assert proxy.connections >= 1
        assert link.dropped() >= 3, f"{rounds} rounds of jobs and hardly a packet dropped"
