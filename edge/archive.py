"""Result archives: pack a folder as .tar.gz, and unpack one without letting it escape.

Publishers pack, `bacedge job get` and inline inputs unpack. Unpacking refuses absolute
names, `..`, links, devices and anything else that is not a plain file or directory, before
writing a byte, so a hostile archive cannot reach outside the destination.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import IO


class ArchiveError(Exception):
    """An archive that is not a safe, readable .tar.gz; the message names the member."""


def pack(folder: Path, target: Path) -> int:
    """Writes `folder`'s contents (not the folder itself) to `target` as .tar.gz.

    Symlinks are stored as links (never followed), so a task cannot publish a host file by
    linking to it. Returns the archive's size. Writes to a temporary name first.
    """
    tmp = target.with_name(target.name + ".part")
    # Level 1: most of the size win on text (0.26 vs 0.21 of CSV) at 7x the speed of level 6.
    with tarfile.open(tmp, "w:gz", compresslevel=1) as archive:
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = Path(root) / name
                archive.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    tmp.replace(target)
    return target.stat().st_size


def check_member(member: tarfile.TarInfo) -> None:
    path = os.path.normpath(member.name)
    if os.path.isabs(member.name) or path == ".." or path.startswith("../"):
        raise ArchiveError(f"archive member {member.name!r} would land outside the folder")
    if not (member.isfile() or member.isdir()):
        raise ArchiveError(
            f"archive member {member.name!r} is not a plain file or directory (links and "
            "devices are refused)"
        )


def unpack(source: Path | IO[bytes], dest: Path) -> list[str]:
    """Unpacks a .tar.gz into `dest` after checking every member; returns the names."""
    try:
        target = {"name": source} if isinstance(source, Path) else {"fileobj": source}
        with tarfile.open(mode="r:gz", **target) as archive:
            members = archive.getmembers()
            for member in members:
                check_member(member)
            dest.mkdir(parents=True, exist_ok=True)
            if hasattr(tarfile, "data_filter"):  # 3.10.12+/3.11.4+: the filter checks again
                archive.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - old patch releases
                archive.extractall(dest, members=members)
            return [m.name for m in members]
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, tarfile.TarError):
            raise ArchiveError(f"cannot unpack into {dest}: {exc.strerror or exc}") from None
        raise ArchiveError(f"not a valid .tar.gz archive ({exc})") from None
