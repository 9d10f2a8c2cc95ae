"""Publisher type "local": `<execution>.tar.gz` kept on the node and served over HTTP.

As in Bacalhau, the result is `{Type: urlDownload, Params: {URL: http://ADDRESS:6001/<id>.tar.gz}}`.
Unlike Bacalhau, a user never needs to reach that address: the orchestrator fetches the
archive from the node over NATS (`GET .../jobs/{id}/executions/{execution}/result`), so
`bacedge job get` works for nodes behind NAT or on links that only reach the hub.
Archives older than `[publishers.local] retention` are removed by the node's hourly prune.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from edge.archive import pack
from edge.models import SpecConfig

from .base import PublishError, PublishRequest

if TYPE_CHECKING:  # aiohttp loads with the first archive: an idle node holds no HTTP server
    from aiohttp import web

log = logging.getLogger("bacedge.publishers")

ARCHIVE_NAME = re.compile(r"^(e-[A-Za-z0-9-]{1,64})\.tar\.gz$")


STALE_PART = 3600.0  # a .part file not written for this long is a pack that never finished


def archive_path(published_dir: Path, execution_id: str) -> Path:
    return published_dir / f"{execution_id}.tar.gz"


class LocalPublisher:
    types: tuple[str, ...] = ("local",)

    def __init__(
        self,
        published_dir: Path,
        host: str,
        port: int,
        address: str = "",
        retention: float = 30 * 86400.0,
    ) -> None:
        self.published_dir = published_dir
        self.retention = retention
        self.host = host
        self.port = port
        self.address = address or ("127.0.0.1" if host in ("", "0.0.0.0", "::") else host)
        self._runner: web.AppRunner | None = None
        self._starting = asyncio.Lock()
        self._tried = False
        self.serves = False  # set by start(): a node that serves its own archives

    async def start(self) -> None:
        """Serves the archives already on the node at once; a node with none starts its
        server with its first archive (aiohttp is about 20 MiB of an idle agent)."""
        self.serves = True
        self.published_dir.mkdir(parents=True, exist_ok=True)
        if any(self.published_dir.glob("*.tar.gz")):
            await self._serve_once()

    async def _serve_once(self) -> None:
        """Start serving, tried once per process: a port already taken only costs direct
        downloads (the orchestrator still relays them), so it is a warning, not a failure."""
        async with self._starting:
            if self._tried:
                return
            self._tried = True
            from aiohttp import web

            app = web.Application()
            app.router.add_get("/{name}", self._serve)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
            try:
                await site.start()
            except OSError as exc:
                await runner.cleanup()
                log.warning(
                    "local results server not started; results are still served through the "
                    "orchestrator",
                    extra={"port": self.port, "error": exc.strerror or str(exc)},
                )
                return
            self._runner = runner
            server = site._server
            sockets = getattr(server, "sockets", None) or []
            if sockets:
                self.port = int(sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def serving(self) -> bool:
        return self._runner is not None

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        match = ARCHIVE_NAME.match(request.match_info["name"])
        path = archive_path(self.published_dir, match.group(1)) if match else None
        if path is None or not path.is_file():
            raise web.HTTPNotFound(text="no such result on this node\n")
        return web.FileResponse(path, headers={"Content-Type": "application/gzip"})

    def prune(self, now: float | None = None) -> int:
        """Removes archives older than `retention` (and `.part` files a crash left behind
        mid-pack), so a device publishing results for years keeps only its recent ones.
        Blocking: run it on a thread. Returns how many files went."""
        now = time.time() if now is None else now
        removed = 0
        try:
            entries = list(os.scandir(self.published_dir))
        except FileNotFoundError:
            return 0
        for entry in entries:
            if ARCHIVE_NAME.match(entry.name):
                cutoff = now - self.retention
            elif entry.name.endswith(".tar.gz.part"):
                cutoff = now - STALE_PART
            else:
                continue  # not ours: left alone
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
        return removed

    def problems(self, spec: SpecConfig) -> list[str]:
        return []

    async def publish(self, request: PublishRequest) -> SpecConfig:
        target = archive_path(self.published_dir, request.execution.ID)
        try:
            self.published_dir.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(pack, request.result_dir, target)
        except OSError as exc:
            raise PublishError(
                f"cannot write {target.name} on the node ({exc.strerror or exc}): free disk space"
            ) from None
        if self.serves:
            await self._serve_once()
        url = f"http://{self.address}:{self.port}/{target.name}"
        return SpecConfig(Type="urlDownload", Params={"URL": url})
