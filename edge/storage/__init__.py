"""Input sources: make each of a task's InputSources available on the node's disk."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from edge.executors.base import MountedInput
from edge.models import InputSource

from .base import InputError, InputProvider, StoragePolicy
from .inline import InlineProvider
from .local import LocalProvider
from .url import UrlProvider

SUPPORTED = "inline, local, urlDownload"  # as users write them, for error messages


def build_input_providers() -> dict[str, InputProvider]:
    """Every provider this node has, keyed by each lowercase type name it handles."""
    providers: dict[str, InputProvider] = {}
    for provider in (InlineProvider(), LocalProvider(), UrlProvider()):
        for name in provider.types:
            providers[name] = provider
    return providers


def provider_for(source: InputSource, providers: Mapping[str, InputProvider]) -> InputProvider:
    """The provider of a source's type, or InputError listing the supported ones."""
    kind = source.Source.Type.strip().lower()
    provider = providers.get(kind)
    if provider is None:
        raise InputError(
            f"unknown input source type {source.Source.Type!r}: supported are {SUPPORTED}"
        )
    return provider


async def prepare_inputs(
    sources: Iterable[InputSource],
    staging: Path,
    policy: StoragePolicy,
    providers: Mapping[str, InputProvider],
) -> list[MountedInput]:
    """Prepares the sources in order; the first failure stops it with its InputError."""
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
        mounted.append(await provider_for(source, providers).prepare(source, staging, policy))
    return mounted


__all__ = [
    "SUPPORTED",
    "InputError",
    "InputProvider",
    "StoragePolicy",
    "build_input_providers",
    "prepare_inputs",
    "provider_for",
]
