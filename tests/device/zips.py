"""Zip archives for attack tests: bombs that inflate to many MB from a few KB."""

from __future__ import annotations

import io
import zipfile

MB = 1 << 20


def bomb_zip(entries: dict[str, int], extra: dict[str, bytes] | None = None) -> bytes:
    """A zip with `extra` files plus entries of `size` zero bytes each (about 1 KB per MB on the wire)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
        for name, size in entries.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as fh:
                for _ in range(size // MB):
                    fh.write(bytes(MB))
    return buffer.getvalue()
