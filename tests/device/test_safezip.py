"""Unpacking untrusted zips: bad names refuse everything, bombs stop at the budget, unused entries are never read."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from device.safezip import ArchiveError, UnzipLimits, extract
from tests.device.zips import MB, bomb_zip


def _lie_about_size(data: bytes, name: str, size: int) -> bytes:
    """Rewrite the central directory so `name` claims to inflate to `size` bytes (headers can lie)."""
    raw = bytearray(data)
    needle = b"PK\x01\x02"
    pos = raw.find(needle)
    while pos >= 0:
        name_len = int.from_bytes(raw[pos + 28:pos + 30], "little")
        if raw[pos + 46:pos + 46 + name_len].decode() == name:
            raw[pos + 24:pos + 28] = size.to_bytes(4, "little")
        pos = raw.find(needle, pos + 4)
    return bytes(raw)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.mark.parametrize("name", ["../evil.png", "/etc/evil.png", "a/../../evil.png", "C:/evil.png", "..\\evil.png"])
def test_an_escaping_name_refuses_the_whole_archive_before_writing(tmp_path: Path, name: str) -> None:
    data = bomb_zip({}, {"first.png": b"ok", name: b"x"})
    with pytest.raises(ArchiveError, match="would escape its folder"):
        extract(io.BytesIO(data), tmp_path / "out", lambda n: True, UnzipLimits())
    assert _tree(tmp_path / "out") == []
    assert not (tmp_path / "evil.png").exists()


def test_a_symlink_entry_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("link.png")
        info.external_attr = (0o120777 << 16)
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(ArchiveError, match="symbolic link"):
        extract(io.BytesIO(buffer.getvalue()), tmp_path / "out", lambda n: True, UnzipLimits())


def test_one_entry_over_its_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    data = bomb_zip({"bomb.png": 100 * MB})
    assert len(data) < MB
    with pytest.raises(ArchiveError, match="unpacks to more than 64 MB, the limit for one file"):
        extract(io.BytesIO(data), tmp_path / "out", lambda n: True, UnzipLimits(max_total=1 << 30, max_entry=64 * MB))
    assert _tree(tmp_path / "out") == []


def test_entries_together_over_the_budget_are_refused(tmp_path: Path) -> None:
    data = bomb_zip({f"part{i}.png": 40 * MB for i in range(4)})
    with pytest.raises(ArchiveError, match="unpacks to more than 100 MB"):
        extract(io.BytesIO(data), tmp_path / "out", lambda n: True, UnzipLimits(max_total=100 * MB, max_entry=64 * MB))


def test_a_header_that_lies_about_the_size_is_caught_while_inflating(tmp_path: Path) -> None:
    data = _lie_about_size(bomb_zip({"bomb.png": 100 * MB}), "bomb.png", 1000)
    with pytest.raises(ArchiveError):
        extract(io.BytesIO(data), tmp_path / "out", lambda n: True, UnzipLimits(max_total=64 * MB, max_entry=64 * MB))
    written = sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written <= 64 * MB


def test_entries_the_caller_does_not_use_are_never_read(tmp_path: Path) -> None:
    data = bomb_zip({"junk.bin": 100 * MB}, {"a.png": b"png bytes", "notes/.hidden.png": b"x", "__MACOSX/a.png": b"x"})
    names = extract(io.BytesIO(data), tmp_path / "out", lambda n: n.endswith(".png"), UnzipLimits(max_total=MB, max_entry=MB))
    assert names == ["a.png"] and _tree(tmp_path / "out") == ["a.png"]
    assert (tmp_path / "out" / "a.png").read_bytes() == b"png bytes"


def test_an_archive_bigger_than_the_free_disk_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=300 * MB))
    with pytest.raises(ArchiveError, match="of disk are free"):
        extract(io.BytesIO(bomb_zip({"big.png": 100 * MB})), tmp_path / "out", lambda n: True, UnzipLimits())
    assert os.listdir(tmp_path / "out") == []


def _patch_central(data: bytes, offset: int, value: int) -> bytes:
    """Change a 2-byte field of every central-directory record (flags at 8, method at 10)."""
    raw = bytearray(data)
    pos = raw.find(b"PK\x01\x02")
    while pos >= 0:
        raw[pos + offset:pos + offset + 2] = value.to_bytes(2, "little")
        pos = raw.find(b"PK\x01\x02", pos + 4)
    return bytes(raw)


@pytest.mark.parametrize(("offset", "value", "message"), [(8, 0x1, "encrypted"), (10, 99, "compression method")])
def test_encrypted_or_unknown_entries_are_refused_not_errors(tmp_path: Path, offset: int, value: int, message: str) -> None:
    data = _patch_central(bomb_zip({}, {"a.png": b"png bytes" * 100}), offset, value)
    with pytest.raises(ArchiveError, match=message):
        extract(io.BytesIO(data), tmp_path / "out", lambda n: True, UnzipLimits())
