"""Input sources: make each of a task's InputSources available on the node's disk."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from edge.config import Config
from edge.models import InputSource, display_type
from edge.workspace import MountedInput

from .base import InputError, InputProvider, StoragePolicy
from .cache import ObjectCache
from .inline import InlineProvider
from .local import LocalProvider
from .s3 import S3PreSignedProvider, S3Provider
from .url import UrlProvider


def build_input_providers(
    config: Config | None = None, cache: ObjectCache | None = None
) -> dict[str, InputProvider]:
    """Every provider this node has, keyed by each lowercase type name it handles; the S3
    types need the node's config (credentials) and its object cache."""
    found: list[InputProvider] = [InlineProvider(), LocalProvider(), UrlProvider()]
    if config is not None:
        cache = cache or ObjectCache(config.data_dir / "compute" / "cache", 0)
        found += [S3Provider(config, cache), S3PreSignedProvider(cache)]
    return {name: provider for provider in found for name in provider.types}


def provider_for(source: InputSource, providers: Mapping[str, InputProvider]) -> InputProvider:
    """The provider of a source's type, or InputError listing the supported ones."""
    kind = source.Source.Type.strip().lower()
    provider = providers.get(kind)
    if provider is None:
        supported = ", ".join(sorted({display_type(p.types[0]) for p in providers.values()}))
        raise InputError(
            f"unknown input source type {source.Source.Type!r}: supported are {supported}"
        )
    return provider


async def prepare_inputs(
    sources: Iterable[InputSource],
    staging: Path,
    policy: StoragePolicy,
    providers: Mapping[str, InputProvider],
    hold_inline: bool = False,
) -> list[MountedInput]:
    """Prepares the sources in order; the first failure stops it with its InputError.
    `hold_inline`: small inline files stay in memory (`InlineProvider.hold`), for an
    executor that reads its inputs itself."""
    wanted = list(sources)
    for source in wanted:  # check them all before downloading anything
        provider_for(source, providers)
        if not source.Target.strip():
            raise InputError(
                f"{source.Source.Type or 'input'} source {source.Alias or ''} has no Target: "
                "set Target to the path the task should see it at, e.g. /inputs/data"
            )
    mounted = []
    for source in wanted:
        provider = provider_for(source, providers)
        held = None
        if hold_inline and isinstance(provider, InlineProvider):
            held = provider.hold(source, staging, policy)
        mounted.append(
            held if held is not None else await provider.prepare(source, staging, policy)
        )
    for item in mounted:
        if item.content is None and item.host_path.is_relative_to(staging):
            if item.host_path.is_file():  # one chmod: cheaper than a hand-off to a thread
                _readable(item.host_path)
            else:
                await asyncio.to_thread(_readable, item.host_path)
    return mounted


def _readable(path: Path) -> None:
    """Downloaded inputs readable by a rootless container's user (not this process's):
    folders 0755, files 0644. Host paths of `local` inputs are never touched."""
    if path.is_file():
        path.chmod(0o644)
        return
    path.chmod(0o755)
    for root, dirs, files in os.walk(path):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)


__all__ = [
    "InputError",
    "InputProvider",
    "ObjectCache",
    "StoragePolicy",
    "build_input_providers",
    "prepare_inputs",
    "provider_for",
]
