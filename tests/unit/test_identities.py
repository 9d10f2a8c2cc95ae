"""Join tokens and node users (edge/orchestrator/identities.py), with a clock of the test's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge.orchestrator.identities import (
    JOINER_GRACE,
    MAX_PENDING,
    JoinRefused,
    NodeIdentities,
    TooManyTokens,
)
from edge.transport import subjects
from edge.transport.messages import JoinRequest
from edge.transport.server import JOIN_USER, EmbeddedNats, bcrypt_hash

HASH = bcrypt_hash("the node's own password")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def run(path: Path, clock: Clock, work: object) -> None:
    async def main() -> None:
        reloads: list[int] = []

        async def changed() -> None:
            reloads.append(1)

        ids = NodeIdentities(path / "identities.db", on_change=changed, clock=clock)
        await ids.open()
        try:
            await work(ids, reloads)  # type: ignore[operator]
        finally:
            await ids.close()

    asyncio.run(main())


def test_a_token_joins_one_node_once_and_survives_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    tokens: list[str] = []

    async def first(ids: NodeIdentities, reloads: list[int]) -> None:
        token, record = await ids.create_token(600)
        tokens.append(token)
        assert token.startswith(f"bxj1.{record.id}.") and record.expires == clock.now + 600
        assert [u.user for u in ids.nats_users()] == [JOIN_USER]  # a token is outstanding
        await ids.redeem(JoinRequest(Token=token, NodeID="n-a", PasswordHash=HASH))
        # The same node asking again (its answer was lost) is answered the same.
        await ids.redeem(JoinRequest(Token=token, NodeID="n-a", PasswordHash=HASH))
        with pytest.raises(JoinRefused, match=r"already used \(by node n-a"):
            await ids.redeem(JoinRequest(Token=token, NodeID="n-b", PasswordHash=HASH))
        users = {u.user: u for u in ids.nats_users()}
        assert set(users) == {"n-a", JOIN_USER}  # the joiner stays a while: it hears its answer
        assert users["n-a"].permissions == subjects.node_permissions("n-a")
        assert users["n-a"].password_hash == HASH
        assert len(reloads) == 2  # token created, node joined

    run(tmp_path, clock, first)
    clock.now += JOINER_GRACE + 1

    async def after_restart(ids: NodeIdentities, _reloads: list[int]) -> None:
        assert [u.user for u in ids.nats_users()] == ["n-a"]
        with pytest.raises(JoinRefused, match="already used"):
            await ids.redeem(JoinRequest(Token=tokens[0], NodeID="n-c", PasswordHash=HASH))
        assert await ids.revoke("n-a") and not await ids.revoke("n-a")
        assert ids.nats_users() == []

    run(tmp_path, clock, after_restart)


@pytest.mark.parametrize(
    ("token", "node", "hashed", "reason"),
    [
        ("hello", "n-a", HASH, "not a join token"),
        ("bxj1.0123456789abcdef." + "A" * 43, "n-a", HASH, "unknown join token 0123456789abcdef"),
        (None, "n.a", HASH, "a node ID is"),
        (None, "n-a", "plain-password", "not a bcrypt hash"),
        (None, "n-a", "$2b$31$" + "a" * 53, "not a bcrypt hash"),  # a cost that would wedge NATS
    ],
)
def test_bad_join_requests_are_refused_and_change_nothing(
    tmp_path: Path, token: str | None, node: str, hashed: str, reason: str
) -> None:
    async def work(ids: NodeIdentities, reloads: list[int]) -> None:
        real, _ = await ids.create_token(600)
        with pytest.raises(JoinRefused, match=reason):
            await ids.redeem(JoinRequest(Token=token or real, NodeID=node, PasswordHash=hashed))
        assert ids.nodes == {} and len(reloads) == 1
        assert "A" * 43 not in str(reason)

    run(tmp_path, Clock(), work)


def test_an_expired_token_is_refused_and_a_joined_id_cannot_join_again(tmp_path: Path) -> None:
    clock = Clock()

    async def work(ids: NodeIdentities, _reloads: list[int]) -> None:
        short, _ = await ids.create_token(5)
        other, _ = await ids.create_token(600)
        await ids.redeem(JoinRequest(Token=other, NodeID="n-a", PasswordHash=HASH))
        clock.now += 6
        with pytest.raises(JoinRefused, match="expired"):
            await ids.redeem(JoinRequest(Token=short, NodeID="n-b", PasswordHash=HASH))
        third, _ = await ids.create_token(600)
        with pytest.raises(JoinRefused, match="n-a has already joined"):
            await ids.redeem(JoinRequest(Token=third, NodeID="n-a", PasswordHash=bcrypt_hash("x")))
        for ttl in (0, -1, 31 * 86400):
            with pytest.raises(ValueError, match="TTL"):
                await ids.create_token(ttl)

    run(tmp_path, clock, work)


def test_the_server_config_lists_users_with_hashes_only(tmp_path: Path) -> None:
    server = EmbeddedNats("127.0.0.1", 4222, tmp_path, token="admin-secret")
    text = server._write_config().read_text()
    assert "admin-secret" not in text and '"user": "bacedge"' in text and "no_auth_user" not in text
    open_server = EmbeddedNats("127.0.0.1", 4222, tmp_path / "open")
    assert 'no_auth_user: "bacedge"' in open_server._write_config().read_text()


def test_a_subject_names_its_sender() -> None:
    assert subjects.sender(subjects.updates("n-a")) == "n-a"
    assert subjects.sender(subjects.log_frames("n-a", "x1")) == "n-a"
    assert subjects.sender(subjects.LEGACY_UPDATES) is None
    assert subjects.impersonates(subjects.heartbeat("n-a"), "n-b")
    assert not subjects.impersonates(subjects.LEGACY_HEARTBEAT, "n-b")


def test_outstanding_tokens_are_bounded(tmp_path: Path) -> None:
    async def work(ids: NodeIdentities, reloads: list[int]) -> None:
        for _ in range(MAX_PENDING):
            await ids.create_token(600)
        with pytest.raises(TooManyTokens, match="outstanding"):
            await ids.create_token(600)
        assert len(reloads) == MAX_PENDING

    run(tmp_path, Clock(), work)


async def test_reloads_while_nodes_join_each_wait_for_their_own_and_ignore_other_errors(
    tmp_path: Path,
) -> None:
    """Nodes joining together reload the real nats-server one after another, each new user
    able to connect once its reload returned; a client refused meanwhile (an [ERR] line in
    the server's log) is not taken for a refused config, and a config the server does
    refuse still is."""
    import socket

    import nats

    from edge.transport.server import NatsServerError, NatsUser

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    users: list[NatsUser] = []
    server = EmbeddedNats("127.0.0.1", port, tmp_path, token="admin", users=lambda: list(users))
    await server.start()
    url = f"nats://127.0.0.1:{port}"

    async def quiet(error: Exception) -> None:
        pass

    async def refused_client() -> None:
        for _ in range(5):  # authentication errors in the server's log while it reloads
            # refused, or cut off while nats-py reads the refusal
            with pytest.raises((nats.errors.Error, OSError)):
                await nats.connect(
                    url,
                    user="intruder",
                    password="x",
                    allow_reconnect=False,
                    connect_timeout=1,
                    error_cb=quiet,
                )

    try:
        names = [f"node-{i}" for i in range(4)]

        async def join(name: str) -> None:
            users.append(NatsUser(name, bcrypt_hash(f"{name}-secret")))
            await server.reload()
            client = await nats.connect(
                url, user=name, password=f"{name}-secret", connect_timeout=2
            )
            await client.close()

        await asyncio.gather(refused_client(), *(join(name) for name in names))
        server._write_config = lambda: _broken(tmp_path)  # type: ignore[method-assign]
        with pytest.raises(NatsServerError, match=r"refused its new config: .*Failed to reload"):
            await server.reload()
    finally:
        await server.stop()


def _broken(directory: Path) -> Path:
    conf = directory / "nats-server.conf"
    conf.write_text("authorization { users: [\n")
    return conf
