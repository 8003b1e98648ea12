"""TIFF files as planes: multi-page TIFF, ImageJ hyperstacks and OME-TIFF, one 2-D frame per plane.

Acquisition software writes a whole time-lapse or z-stack into one file (5 time points x 3
channels = 15 planes); decoding it as one image gives a 4-D array no model can take. Here each
plane is read on its own (a stack of thousands of planes is streamed, never loaded whole), with
its T/Z/C/position indices, and the file's own calibration: OME PhysicalSizeX/Y (with units) or
an ImageJ calibration becomes the frame's µm per pixel, so nobody has to type it.

tifffile does the decoding (it knows OME and ImageJ layouts and, unlike OpenCV, does not warn
about the private tags microscope vendors add); the OME-XML is read with the standard library.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from device.sources.base import Field, ImageMeta, SourceImage

log = logging.getLogger(__name__)

# micrometres per unit; OME's default length unit is the micrometre
_LENGTH_UM = {"µm": 1.0, "um": 1.0, "μm": 1.0, "micron": 1.0, "microns": 1.0, "nm": 1e-3, "pm": 1e-6, "Å": 1e-4,
              "mm": 1e3, "cm": 1e4, "m": 1e6}
_TIME_S = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "min": 60.0, "h": 3600.0}
_PLANE_AXES = {"T": "plane_t", "Z": "plane_z", "C": "plane_c"}  # others (Q, I, R, ...) -> plane_index
ImageJ_UNITS = {"micron": 1.0, "microns": 1.0, "um": 1.0, "µm": 1.0, "\\u00B5m": 1.0, "nm": 1e-3, "mm": 1e3}


@dataclass
class StackInfo:
    """What a TIFF file says about all its planes."""

    um_per_pixel: float | None = None
    calibration: str = ""
    acquired_at: float | None = None  # the image's AcquisitionDate
    channel_names: list[str] = field(default_factory=list)
    planes: dict[tuple[int, int, int], dict[str, float]] = field(default_factory=dict)  # (t, z, c) -> delta_t_s, stage_*_um


def _length_um(value: str | None, unit: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value) * _LENGTH_UM[unit or "µm"]
    except (ValueError, KeyError):
        return None
    return number if math.isfinite(number) else None


def _pixel_size(pixels: ET.Element, name: str) -> tuple[float | None, str]:
    """µm per pixel from PhysicalSizeX/Y; a message when the value is there but unusable."""
    raw, unit = pixels.get("PhysicalSizeX"), pixels.get("PhysicalSizeXUnit")
    y_raw, y_unit = pixels.get("PhysicalSizeY"), pixels.get("PhysicalSizeYUnit")
    x = _length_um(raw, unit)
    y = _length_um(y_raw, y_unit) if y_raw is not None else x
    if raw is None:
        return None, ""
    if x is None or y is None or x <= 0 or y <= 0:
        return None, f"{name}: OME PhysicalSizeX/Y {raw!r} {unit or 'µm'} / {y_raw!r} {y_unit or 'µm'} is not a usable pixel size: ignored"
    if abs(x - y) > 0.01 * max(x, y):
        log.warning("%s: pixels are not square (%.4g x %.4g µm): using their geometric mean", name, x, y)
    return math.sqrt(x * y), ""


def _iso_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _plane_entries(pixels: ET.Element) -> dict[tuple[int, int, int], dict[str, float]]:
    entries: dict[tuple[int, int, int], dict[str, float]] = {}
    for plane in pixels.findall("{*}Plane"):
        key = (int(plane.get("TheT", 0)), int(plane.get("TheZ", 0)), int(plane.get("TheC", 0)))
        values: dict[str, float] = {}
        delta = plane.get("DeltaT")
        if delta is not None and plane.get("DeltaTUnit", "s") in _TIME_S:
            values["delta_t_s"] = float(delta) * _TIME_S[plane.get("DeltaTUnit", "s")]
        for axis in ("X", "Y", "Z"):
            um = _length_um(plane.get(f"Position{axis}"), plane.get(f"Position{axis}Unit", "reference frame"))
            if um is not None:
                values[f"stage_{axis.lower()}_um"] = um
        entries[key] = values
    return entries


def ome_info(xml: str, name: str, series: int, shape: dict[str, int]) -> StackInfo:
    """The calibration, times and stage positions of image `series` of an OME-XML document; an
    empty StackInfo (and a warning) when the XML contradicts the pixel data `shape` (axis -> size)."""
    try:
        images = ET.fromstring(xml).findall("{*}Image")
    except ET.ParseError as exc:
        log.warning("%s: OME-XML cannot be parsed (%s): ignored", name, exc)
        return StackInfo()
    if series >= len(images) or (pixels := images[series].find("{*}Pixels")) is None:
        return StackInfo()
    for axis in "XYCZT":
        declared = int(pixels.get(f"Size{axis}", 1))
        actual = shape.get(axis, 1) * (shape.get("S", 1) if axis == "C" else 1)
        if declared != actual and not (axis == "C" and declared == shape.get("C", 1)):
            log.warning("%s: OME-XML says Size%s=%d but the pixel data has %d: its metadata is ignored", name, axis, declared, actual)
            return StackInfo()
    um, problem = _pixel_size(pixels, name)
    if problem:
        log.warning("%s", problem)
    date = images[series].find("{*}AcquisitionDate")
    return StackInfo(
        um_per_pixel=um,
        calibration=f"OME PhysicalSizeX/Y of {name}" if um else "",
        acquired_at=_iso_time(date.text if date is not None else None),
        channel_names=[c.get("Name", "") for c in pixels.findall("{*}Channel")],
        planes=_plane_entries(pixels),
    )


def imagej_info(tif: object, name: str) -> StackInfo:
    """An ImageJ hyperstack's calibration: XResolution (pixels per unit) with the `unit` it names."""
    meta = getattr(tif, "imagej_metadata", None) or {}
    scale = ImageJ_UNITS.get(str(meta.get("unit", "")))
    tag = tif.pages[0].tags.get("XResolution")  # type: ignore[attr-defined]
    if scale is None or tag is None:
        return StackInfo()
    numerator, denominator = tag.value
    if numerator <= 0 or denominator <= 0:
        return StackInfo()
    return StackInfo(um_per_pixel=scale * denominator / numerator, calibration=f"ImageJ calibration of {name}")


def to_frame_layout(plane: np.ndarray, axes: str) -> np.ndarray:
    """A plane as the device's frames are: [H, W] grey or [H, W, 3|4] BGR(A)."""
    if axes.startswith("S") and plane.ndim == 3:  # planar RGB: (S, Y, X)
        plane = np.moveaxis(plane, 0, -1)
    if plane.ndim == 3 and plane.shape[2] == 1:
        plane = plane[:, :, 0]
    if plane.ndim == 3 and plane.shape[2] in (3, 4):
        plane = np.ascontiguousarray(plane[:, :, [2, 1, 0, 3][: plane.shape[2]]])  # TIFF is RGB, frames are BGR
    return plane


def ome_plane_count(xml: str, series: int) -> int | None:
    """How many planes the OME-XML declares for image `series` (None when it does not say)."""
    try:
        images = ET.fromstring(xml).findall("{*}Image")
    except ET.ParseError:
        return None
    pixels = images[series].find("{*}Pixels") if series < len(images) else None
    if pixels is None:
        return None
    try:
        return int(pixels.get("SizeC", 1)) * int(pixels.get("SizeZ", 1)) * int(pixels.get("SizeT", 1))
    except ValueError:
        return None


def _chain_cut(tif: object) -> str:
    """Why the file's chain of pages ends past the end of the file ("" when it does not): a stack
    cut short has its last page point to a next one that is not there, or data beyond the end."""
    import struct

    pages = tif.pages  # type: ignore[attr-defined]
    fmt, handle = tif.tiff, tif.filehandle  # type: ignore[attr-defined]
    last = pages[len(pages) - 1]
    if last is None:
        return ""
    handle.seek(last.offset)
    count = struct.unpack(fmt.tagnoformat, handle.read(fmt.tagnosize))[0]
    handle.seek(last.offset + fmt.tagnosize + count * fmt.tagsize)
    raw = handle.read(fmt.offsetsize)
    following = struct.unpack(fmt.offsetformat, raw)[0] if len(raw) == fmt.offsetsize else 1 << 62
    if following >= handle.size:
        return f"its page {len(pages)} points to a next page at byte {following}, past the end ({handle.size} bytes)"
    ends = [o + n for o, n in zip(last.dataoffsets, last.databytecounts, strict=False)]
    if ends and max(ends) > handle.size:
        return f"the data of its page {len(pages)} ends at byte {max(ends)}, past the end ({handle.size} bytes)"
    return ""


def _check_complete(tif: object, path: Path, series_count: int) -> None:
    """A stack cut short (still being written, or a crashed writer) is not an image yet, rather
    than a shorter stack: its pages run past the end of the file, or are fewer than its OME-XML declares."""
    cut = _chain_cut(tif)
    if cut:
        raise ValueError(f"{path}: truncated: {cut}")
    xml = getattr(tif, "ome_metadata", None) if getattr(tif, "is_ome", False) else None
    declared = ome_plane_count(str(xml), 0) if xml and series_count == 1 else None
    pages = len(tif.pages)  # type: ignore[attr-defined]
    if declared is not None and pages < declared:
        samples = int(getattr(tif.pages[0], "samplesperpixel", 1)) if pages else 1  # type: ignore[attr-defined]
        if pages * samples < declared:
            raise ValueError(f"{path}: truncated: its OME-XML declares {declared} planes, the file holds {pages}")


def _stack_info(tif: object, name: str, series_index: int, shape: dict[str, int]) -> StackInfo:
    if getattr(tif, "is_ome", False) and getattr(tif, "ome_metadata", None):
        return ome_info(str(tif.ome_metadata), name, series_index, shape)  # type: ignore[attr-defined]
    if getattr(tif, "is_imagej", False):
        return imagej_info(tif, name)
    return StackInfo()


def _plane_meta(name: str, info: StackInfo, indices: dict[str, int], series_index: int, multi_series: bool) -> ImageMeta:
    fields: dict[str, Field] = {"file": name}
    for axis, index in indices.items():
        fields[_PLANE_AXES.get(axis, "plane_index")] = index
    if multi_series:
        fields["plane_p"] = series_index
    c = indices.get("C", 0)
    if c < len(info.channel_names) and info.channel_names[c]:
        fields["channel"] = info.channel_names[c]
    extra = info.planes.get((indices.get("T", 0), indices.get("Z", 0), c), {})
    fields.update({k: v for k, v in extra.items() if k != "delta_t_s"})
    acquired = info.acquired_at + extra.get("delta_t_s", 0.0) if info.acquired_at is not None else None
    receipt = f"{name}#{series_index}:{','.join(f'{a}{i}' for a, i in indices.items())}" if indices or multi_series else name
    return ImageMeta(info.um_per_pixel, info.calibration, acquired, fields, receipt)


def _wanted(indices: dict[str, int], channel: int | str | None, names: list[str]) -> bool:
    if channel is None or "C" not in indices:
        return True
    if isinstance(channel, str):
        return indices["C"] < len(names) and names[indices["C"]] == channel
    return indices["C"] == channel


def tiff_planes(path: Path, channel: int | str | None = None, skip: int = 0) -> Generator[SourceImage, None, None]:
    """Every plane of every image series of a TIFF file, in file order, one at a time.

    `channel` keeps one channel (its index, or its OME name); `skip` leaves out the first planes
    (what an acquisition journal says was already done). ValueError when the file is unreadable."""
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except Exception as exc:  # tifffile raises many types for damaged files
        raise ValueError(f"{path}: not a readable TIFF ({exc})") from exc
    with tif:
        try:
            series_list = list(tif.series)
            _check_complete(tif, path, len(series_list))
        except ValueError:
            raise
        except Exception as exc:  # a damaged file breaks tifffile in many ways (no pages, bad offsets)
            raise ValueError(f"{path}: not a readable TIFF ({type(exc).__name__}: {exc})") from exc
        if not series_list:
            raise ValueError(f"{path}: a TIFF without images")
        count = 0
        for series_index, series in enumerate(series_list):
            axes = str(series.axes)
            plane_axes = "".join(a for a in axes if a not in "YXS")
            plane_shape = tuple(int(n) for n in series.shape[: len(plane_axes)]) if axes.startswith(plane_axes) else ()
            pages = list(series.pages)
            total = int(np.prod(plane_shape)) if plane_shape else 1
            if not axes.startswith(plane_axes) or len(pages) != total:
                raise ValueError(f"{path}: TIFF layout {axes} {tuple(series.shape)} over {len(pages)} pages cannot be read plane by plane")
            info = _stack_info(tif, path.name, series_index, dict(zip(axes, (int(n) for n in series.shape), strict=True)))
            for flat, page in enumerate(pages):
                indices = dict(zip(plane_axes, (int(i) for i in np.unravel_index(flat, plane_shape)), strict=True)) if plane_shape else {}
                if not _wanted(indices, channel, info.channel_names):
                    continue
                count += 1
                if count <= skip:
                    continue
                if page is None:
                    raise ValueError(f"{path}: plane {flat} of series {series_index} is missing")
                try:
                    plane = np.asarray(page.asarray())
                except Exception as exc:  # a truncated or corrupt strip
                    raise ValueError(f"{path}: plane {flat} cannot be decoded ({exc})") from exc
                page_axes = axes[len(plane_axes) :]
                yield SourceImage(to_frame_layout(plane, page_axes), _plane_meta(path.name, info, indices, series_index, len(series_list) > 1))
