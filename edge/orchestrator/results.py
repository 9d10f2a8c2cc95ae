"""Published results on the orchestrator's side: signing `s3managed` uploads for nodes, and
relaying any result archive to users, so `bacedge job get` needs neither a route to the
node (behind NAT, on a hub-only link) nor credentials for the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from edge import s3
from edge.config import Config
from edge.models import ComputeStateType, Execution
from edge.publishers.keys import published_key
from edge.transport import subjects
from edge.transport.client import Client, Msg, NatsTimeout, NoRespondersError
from edge.transport.messages import PresignReply, PresignRequest, ResultChunkRequest, encode

from .errors import BadRequest, NotFound, NotRelayable, Unavailable
from .service import Orchestrator

log = logging.getLogger("bacedge.orchestrator")

CHUNK = 512 * 1024


def managed_endpoint(config: Config) -> s3.S3Endpoint | None:
    """Where `s3managed` results go, with the orchestrator's credentials; None when this
    orchestrator has no store it can sign for."""
    managed = config.publishers.s3managed
    if managed.access_key and managed.secret_key:
        url = s3.normalise_url(managed.endpoint or config.storage.s3.endpoint) or s3.AWS_ENDPOINT
        return s3.S3Endpoint(
            url=url,
            access_key=managed.access_key,
            secret_key=managed.secret_key.get_secret_value(),
            region=managed.region,
            origin="[publishers.s3managed] access_key/secret_key",
        )
    endpoint = s3.resolve(config, managed.endpoint, managed.region)
    return endpoint if endpoint.access_key else None


class ResultRelay:
    def __init__(self, orchestrator: Orchestrator, config: Config, nc: Client) -> None:
        self.orch = orchestrator
        self.config = config
        self.nc = nc
        self._subs: list[Any] = []
        self._buckets: set[str] = set()

    async def start(self) -> None:
        for subject in (subjects.PRESIGNS, subjects.LEGACY_PRESIGN):
            self._subs.append(
                await self.nc.subscribe(subject, queue=subjects.ORCH_QUEUE, cb=self._on_presign)
            )

    async def stop(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    # -- s3managed ------------------------------------------------------------------
    def check_submission(self, publisher_type: str) -> None:
        """Refuses an s3managed job up front when nothing here could sign its upload."""
        if publisher_type == "s3managed" and managed_endpoint(self.config) is None:
            raise BadRequest(
                "publisher s3managed is not configured on this orchestrator: run it with a "
                "local store (--store) or set [publishers.s3managed] endpoint, access_key "
                "and secret_key"
            )

    async def _on_presign(self, msg: Msg) -> None:
        try:
            request = PresignRequest.model_validate_json(msg.data)
            if subjects.impersonates(msg.subject, request.NodeID):
                log.warning(
                    "presign refused: a node spoke for another",
                    extra={"subject": msg.subject, "claimed": request.NodeID},
                )
                reply = PresignReply(Error="this subject is not the node's own")
            else:
                reply = await self._presign(request)
        except ValueError:
            reply = PresignReply(Error="bad presign request")
        except Exception as exc:  # a store that is down: the node retries
            reply = PresignReply(Error=str(exc))
        if msg.reply:
            await msg.respond(encode(reply))

    async def _presign(self, request: PresignRequest) -> PresignReply:
        execution = self.orch.executions.get(request.ExecutionID)
        if execution is None or execution.NodeID != request.NodeID or execution.terminal:
            return PresignReply(
                Error=f"execution {request.ExecutionID} is not an active execution of this node"
            )
        endpoint = managed_endpoint(self.config)
        if endpoint is None:
            return PresignReply(Error="s3managed publishing is not configured")
        managed = self.config.publishers.s3managed
        key = published_key(managed.key, execution, execution.NodeID, archive=True)
        expiry = timedelta(seconds=managed.url_expiry)
        url = await asyncio.to_thread(self._sign_put, endpoint, managed.bucket, key, expiry)
        return PresignReply(OK=True, URL=url, Bucket=managed.bucket, Key=key)

    def _sign_put(self, endpoint: s3.S3Endpoint, bucket: str, key: str, expiry: timedelta) -> str:
        client = endpoint.client()
        try:
            if bucket not in self._buckets:
                if not client.bucket_exists(bucket):
                    client.make_bucket(bucket)
                self._buckets.add(bucket)
            return str(client.presigned_put_object(bucket, key, expires=expiry))
        except Exception as exc:
            raise s3.describe(exc, endpoint, bucket, key) from None

    # -- relaying archives ------------------------------------------------------------
    async def archive(self, execution: Execution) -> tuple[int | None, AsyncIterator[bytes]]:
        """The execution's published result as .tar.gz bytes (with its size when known),
        from wherever it lives."""
        if execution.state != ComputeStateType.COMPLETED or not execution.PublishedResult.Type:
            raise NotFound(f"execution {execution.ID} has no published result")
        result = execution.PublishedResult
        kind = result.Type.lower()
        if kind in ("urldownload", "local"):
            return await self._from_node(execution)
        if kind == "s3managed":
            endpoint = managed_endpoint(self.config)
            if endpoint is None:
                raise NotRelayable("this orchestrator no longer has s3managed credentials")
            return await self._from_s3(
                endpoint, str(result.param("Bucket")), str(result.param("Key"))
            )
        if kind == "s3":
            if str(result.param("Encoding", "gzip")).lower() == "plain":
                raise NotRelayable(
                    f"result s3://{result.param('Bucket')}/{result.param('Key')} is a folder of "
                    "plain objects: download them from the store directly"
                )
            endpoint = s3.resolve(
                self.config, str(result.param("Endpoint", "")), str(result.param("Region", ""))
            )
            return await self._from_s3(
                endpoint, str(result.param("Bucket")), str(result.param("Key"))
            )
        raise NotRelayable(f"results published as {result.Type!r} cannot be relayed")

    async def _from_node(self, execution: Execution) -> tuple[int | None, AsyncIterator[bytes]]:
        node = self.orch.nodes.nodes.get(execution.NodeID)
        if node is None or not node.state.connected:
            raise Unavailable(
                f"node {execution.NodeID} holds this result and is not connected: "
                "retry when it is back"
            )
        first = await self._chunk(execution, 0)
        return first[0], self._node_stream(execution, first)

    async def _chunk(self, execution: Execution, offset: int) -> tuple[int, bytes]:
        request = ResultChunkRequest(ExecutionID=execution.ID, Offset=offset, Length=CHUNK)
        try:
            msg = await self.nc.request(
                subjects.results(execution.NodeID), encode(request), timeout=30
            )
        except (NatsTimeout, NoRespondersError, asyncio.TimeoutError):
            raise Unavailable(f"node {execution.NodeID} did not send the result") from None
        headers = msg.headers or {}
        if headers.get("Error"):
            raise NotFound(headers["Error"])
        return int(headers.get("Size", "0") or 0), msg.data

    async def _node_stream(
        self, execution: Execution, first: tuple[int, bytes]
    ) -> AsyncIterator[bytes]:
        size, data = first
        offset = len(data)
        if data:
            yield data
        # Two requests in flight: the link's round trip is paid once, not per chunk.
        pending: asyncio.Task[tuple[int, bytes]] | None = None
        while offset < size:
            current = pending or asyncio.ensure_future(self._chunk(execution, offset))
            nxt = offset + CHUNK
            pending = asyncio.ensure_future(self._chunk(execution, nxt)) if nxt < size else None
            try:
                _, data = await current
            except BaseException:
                if pending is not None:
                    pending.cancel()
                raise
            if not data:
                if pending is not None:
                    pending.cancel()
                raise Unavailable(f"node {execution.NodeID} sent a truncated result")
            offset += len(data)
            yield data

    async def _from_s3(
        self, endpoint: s3.S3Endpoint, bucket: str, key: str
    ) -> tuple[int | None, AsyncIterator[bytes]]:
        def open_object() -> Any:
            try:
                return endpoint.client().get_object(bucket, key)
            except Exception as exc:
                raise s3.describe(exc, endpoint, bucket, key) from None

        try:
            response = await asyncio.to_thread(open_object)
        except s3.S3Failure as exc:
            raise Unavailable(str(exc)) from None
        length = response.headers.get("Content-Length", "")
        return (int(length) if length.isdigit() else None), self._s3_stream(response)

    async def _s3_stream(self, response: Any) -> AsyncIterator[bytes]:
        try:
            while True:
                block = await asyncio.to_thread(response.read, CHUNK)
                if not block:
                    return
                yield block
        finally:
            response.close()
            response.release_conn()
