"""Unpacking untrusted zip archives (dataset imports, model bundles) without trusting them.

A 2 MB zip can inflate to gigabytes, name entries `../../etc/x`, or hold links. So entries are
checked by name before anything is written, the ones the caller does not use are skipped without
being read, and the rest are streamed to disk in chunks while the bytes actually inflated are
counted (the sizes in the zip's headers can lie): one entry over `max_entry` or all of them over
`max_total` stops the extraction at that point and the caller removes the folder.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

CHUNK = 1 << 20
DISK_RESERVE = 256 << 20  # never fill the disk the device keeps its outbox and images on


class ArchiveError(ValueError):
    """An archive refused as unsafe or too large; the message says which entry and what to do."""


@dataclass(frozen=True)
class UnzipLimits:
    max_total: int = 4 << 30  # inflated bytes over all extracted entries
    max_entry: int = 4 << 30  # inflated bytes of one entry
    max_entries: int = 200_000


def check_entry_name(name: str) -> str:
    """The entry name if it stays inside the archive's folder; ArchiveError otherwise."""
    clean = name.replace("\\", "/")
    parts = PurePosixPath(clean).parts
    if not clean or clean.startswith("/") or ".." in parts or (parts and parts[0].endswith(":")) or "\x00" in clean:
        raise ArchiveError(f"archive entry '{name[:200]}' would escape its folder: the archive is refused")
    return clean


def available_memory() -> int:
    """Bytes this process can still use: MemAvailable, lowered by a cgroup (container) limit."""
    free = 1 << 40
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit != "max":
            free = min(free, int(limit) - used)
    except (OSError, ValueError):
        pass
    return max(0, free)


def _skipped(name: str, info: zipfile.ZipInfo) -> bool:
    return info.is_dir() or name.startswith("__MACOSX/") or PurePosixPath(name).name.startswith(".")


def extract(source: str | os.PathLike[str] | IO[bytes], target: Path, wanted: Callable[[str], bool], limits: UnzipLimits) -> list[str]:
    """Stream the wanted regular files of a zip into `target`; returns their checked names.

    Every entry name is checked first (one bad name refuses the whole archive, nothing written).
    """
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"the upload is not a readable zip archive ({exc})") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise ArchiveError(f"the archive has {len(infos)} entries, more than the limit of {limits.max_entries}")
        chosen: list[tuple[str, zipfile.ZipInfo]] = []
        for info in infos:
            name = check_entry_name(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ArchiveError(f"archive entry '{name[:200]}' is a symbolic link: links are refused")
            if not _skipped(name, info) and wanted(name):
                chosen.append((name, info))
        _check_declared(chosen, target, limits)
        total = 0
        for name, info in chosen:
            total += _copy(archive, info, name, target, limits, total)
    return [name for name, _ in chosen]


def _check_declared(chosen: list[tuple[str, zipfile.ZipInfo]], target: Path, limits: UnzipLimits) -> None:
    """Refuse on the sizes the headers declare, before inflating anything."""
    declared = 0
    for name, info in chosen:
        _over_entry(name, info.file_size, limits)
        declared += info.file_size
    _over_total(declared, limits)
    target.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target).free - DISK_RESERVE
    if declared > free:
        raise ArchiveError(f"the archive unpacks to {declared >> 20} MB but only {max(0, free) >> 20} MB of disk are free")


def _over_entry(name: str, size: int, limits: UnzipLimits) -> None:
    if size > limits.max_entry:
        raise ArchiveError(
            f"archive entry '{name[:200]}' unpacks to more than {limits.max_entry >> 20} MB, the limit for one file: "
            "the archive is refused (a zip bomb, or a file that does not belong in it)"
        )


def _over_total(size: int, limits: UnzipLimits) -> None:
    if size > limits.max_total:
        raise ArchiveError(
            f"the archive unpacks to more than {limits.max_total >> 20} MB (the limit from the upload size and free "
            "memory): split it into smaller parts"
        )


def _copy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, target: Path, limits: UnzipLimits, before: int) -> int:
    """Inflate one entry in chunks, counting real bytes; returns how many were written."""
    path = target.joinpath(*PurePosixPath(name).parts)
    written = 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as src, open(path, "wb") as dst:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                _over_entry(name, written, limits)
                _over_total(before + written, limits)
                dst.write(chunk)
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
        # RuntimeError: encrypted entry; NotImplementedError: a compression method Python lacks
        raise ArchiveError(f"archive entry '{name[:200]}' cannot be unpacked ({exc}): the archive is refused") from exc
    return written
