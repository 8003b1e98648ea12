"""Image uploads (the panel's import): a 16-bit microscope TIFF with vendor tags imports silently and keeps its depth."""

import io
from typing import Any

import numpy as np
import pytest
import tifffile

from device.datasets.imageinfo import check_image, decode
from device.datasets.package import DatasetError


def _tiff(image: np.ndarray, **kwargs: Any) -> bytes:
    out = io.BytesIO()
    tifffile.imwrite(out, image, **kwargs)
    return out.getvalue()


def test_16bit_tiff_with_private_tags_imports_without_warnings(capfd: pytest.CaptureFixture[str]) -> None:
    image = np.random.default_rng(1).integers(0, 4096, (48, 64), dtype=np.uint16)
    tags = [(65325 + i, "s", 0, f"vendor{i}", True) for i in range(9)]  # 65325-65333, as a phase-contrast camera writes
    data = _tiff(image, extratags=tags)
    capfd.readouterr()
    info = check_image(data, "phase.tif", max_pixels=10_000)
    decoded = decode(data, "phase.tif")
    assert (info.kind, info.width, info.height) == ("tiff", 64, 48)
    assert decoded.dtype == np.uint16 and np.array_equal(decoded, image)
    err = capfd.readouterr().err
    assert "Unknown field" not in err and "WARN" not in err, err


def test_rgb_tiff_decodes_as_bgr_and_a_stack_gives_its_first_plane() -> None:
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200  # red
    assert decode(_tiff(rgb, photometric="rgb"))[0, 0].tolist() == [0, 0, 200]
    stack = np.stack([np.full((8, 8), v, np.uint16) for v in (5, 6, 7)])
    first = decode(_tiff(stack, photometric="minisblack"))
    assert first.shape == (8, 8) and int(first[0, 0]) == 5


def test_corrupt_tiff_is_refused_with_its_name() -> None:
    data = _tiff(np.zeros((64, 64), np.uint16))
    with pytest.raises(DatasetError, match="cut.tif"):
        decode(data[:200], "cut.tif")
