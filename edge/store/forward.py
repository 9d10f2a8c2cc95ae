"""A TCP forwarder: S3 on a non-loopback address while SeaweedFS stays on 127.0.0.1.

`weed mini` binds every service it runs (master, volume, filer, admin) to one address.
When `[store] host` is not loopback, SeaweedFS still listens on 127.0.0.1 only and this
forwarder is the one socket on the outside, so only the S3 API is exposed. Bytes pass
unchanged: the client's Host header, and so its SigV4 signature, arrive as sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger("bacedge.store")

_CHUNK = 256 * 1024


class Forwarder:
    def __init__(self, host: str, port: int, target_port: int) -> None:
        self.host = host
        self.port = port
        self.target_port = target_port
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True
        )

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        up_writer: asyncio.StreamWriter | None = None
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        except OSError:
            pass  # the server is restarting: the client sees its connection close
        except asyncio.CancelledError:
            pass  # stop(): this connection ends with the forwarder
        finally:
            for side in (up_writer, writer):
                if side is not None:
                    side.close()
            if task is not None:
                self._tasks.discard(task)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copies one direction; the end of it half-closes the other side, as TCP does."""
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.close()
