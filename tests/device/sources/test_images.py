from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from device.sources.base import SourceError, to_bgr8
from device.sources.images import ImageFolderSource, read_image


def _gradient16(bits: int = 12) -> np.ndarray:
    return (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) * (2**bits - 1) // (64 * 48 - 1)).astype(np.uint16)


def test_16bit_tiff_and_png_keep_their_depth_and_map_to_full_8bit_range(tmp_path: Path) -> None:
    image = _gradient16(12)
    tifffile.imwrite(tmp_path / "a.tif", image)
    cv2.imwrite(str(tmp_path / "b.png"), image)
    for name in ("a.tif", "b.png"):
        loaded = read_image(tmp_path / name)
        assert loaded.dtype == np.uint16 and np.array_equal(loaded, image)
        bgr = to_bgr8(loaded)
        assert bgr.shape == (48, 64, 3) and bgr.dtype == np.uint8
        assert bgr.max() == 255 and bgr.min() == 0  # 12-bit data uses the whole 8-bit range


def test_rgb_tiff_becomes_bgr(tmp_path: Path) -> None:
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200  # red
    tifffile.imwrite(tmp_path / "c.tiff", rgb, photometric="rgb")
    assert read_image(tmp_path / "c.tiff")[0, 0].tolist() == [0, 0, 200]


def test_folder_cycles_in_name_order_and_skips_damaged_files(tmp_path: Path) -> None:
    for i, value in enumerate((10, 20, 30)):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), np.full((8, 8), value, np.uint8))
    (tmp_path / "img1b.png").write_bytes(b"")  # zero bytes: a file still being written
    (tmp_path / "img1c.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (tmp_path / "img1d.tif").write_text("text pretending to be a TIFF")
    (tmp_path / "notes.txt").write_text("ignored")
    source = ImageFolderSource(str(tmp_path))
    source.open()
    values = []
    for _ in range(6):
        image = source.read()
        assert image is not None
        values.append(int(image.image.flat[0]))
    assert values == [10, 20, 30, 10, 20, 30]
    assert source.bad_files == 6  # three damaged files, seen on each of two passes


def test_glob_and_no_loop(tmp_path: Path) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"s{i}.png"), np.full((4, 4), i, np.uint8))
    cv2.imwrite(str(tmp_path / "other.png"), np.zeros((4, 4), np.uint8))
    source = ImageFolderSource(str(tmp_path / "s*.png"), loop=False)
    source.open()
    assert [int(source.read().image.flat[0]) for _ in range(3)] == [0, 1, 2]  # type: ignore[union-attr]
    assert source.read() is None


def test_file_that_vanishes_before_it_is_read_is_skipped(tmp_path: Path) -> None:
    for i in range(2):
        cv2.imwrite(str(tmp_path / f"v{i}.png"), np.full((4, 4), 7 + i, np.uint8))
    source = ImageFolderSource(str(tmp_path))
    source.open()
    (tmp_path / "v0.png").unlink()
    image = source.read()
    assert image is not None and int(image.image.flat[0]) == 8


def test_empty_or_missing_folder_is_a_retryable_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no images") as info:
        ImageFolderSource(str(tmp_path / "missing")).open()
    assert not info.value.permanent
