"""Reading a model bundle (trainer -> device) and checking it before anything runs it.

A bundle is a folder or a zip holding `model.onnx`, `model.json` (ModelCard) and optionally
`engines/` with TensorRT engines keyed by TensorRT version and GPU compute capability.
See docs/formats.md for the full contract.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from device import safezip
from device.inference.pixels import LEGACY, PixelRule
from device.metrics.points import name_problem
from device.safezip import UnzipLimits

MODEL_FORMAT = "scopehive-model"
MODEL_FORMAT_VERSION = 4  # 2: class_thresholds and input.resize "tile"; 3: input.pixels and input.um_per_pixel;
# 4: count_models
# (a device of an older version refuses the fields it does not know: "update the device software")


class BundleError(ValueError):
    """A bundle that cannot be used; the message names the file and field and what to do."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PixelSpec(_Strict):
    """How frames of more than 8 bits become the model's 8-bit pixels (device/inference/pixels.py)."""

    method: Literal["percentile", "range", "shift"] = Field(
        "percentile", description="percentile: per frame, `low` % -> 0 and `high` % -> 255; range: fixed black/white "
        "counts; shift: by the frame's top bit (devices before format 3)")
    low: float = Field(0.1, ge=0, lt=100, description="percentile: share of pixels (%) at or under black")
    high: float = Field(99.99, gt=0, le=100, description="percentile: share of pixels (%) at or under white")
    black: float = Field(0.0, ge=0, description="range: counts that become 0")
    white: float = Field(65535.0, gt=0, description="range: counts that become 255")

    @model_validator(mode="after")
    def _ordered(self) -> PixelSpec:
        if self.low >= self.high or self.black >= self.white:
            raise ValueError("pixels: low must be under high, and black under white")
        return self

    def rule(self) -> PixelRule:
        return PixelRule(self.method, self.low, self.high, self.black, self.white)


class InputSpec(_Strict):
    width: int = Field(gt=0, le=4096, description="Network input width in pixels")
    height: int = Field(gt=0, le=4096, description="Network input height in pixels")
    layout: Literal["NCHW", "NHWC"] = Field("NHWC", description="Tensor layout of the input")
    color: Literal["RGB", "BGR"] = Field("RGB", description="Channel order the network expects")
    resize: Literal["stretch", "letterbox", "tile"] = Field(
        "stretch", description="How frames are fitted: stretch, letterbox, or tile (every frame resized by `scale`, "
        "aspect kept; padded when it fits the input, else cut into overlapping tiles merged by NMS)"
    )
    name: str | None = Field(None, description="Input tensor name (first input if empty)")
    scale: float | None = Field(None, gt=0, le=16, description="resize tile: network pixels per frame pixel, for every frame")
    tile_overlap: int = Field(0, ge=0, le=2048, description="resize tile: overlap of neighbouring tiles, network pixels")
    max_tiles: int = Field(1, ge=1, le=256, description="resize tile: most tiles per frame; larger frames are shrunk to fit "
                           "(the frame-rate budget)")

    pixels: PixelSpec | None = Field(None, description="How frames over 8 bits become 8-bit pixels; absent (bundles "
                                     "before format 3): shifted by the frame's top bit")
    um_per_pixel: float | None = Field(None, gt=0, le=1000, description="resize tile: µm per frame pixel `scale` was chosen "
                                       "for; a frame of known other µm per pixel is rescaled so objects keep their trained size")

    @model_validator(mode="after")
    def _tile_needs_scale(self) -> InputSpec:
        if self.resize == "tile" and self.scale is None:
            raise ValueError("resize 'tile' needs input.scale (network pixels per frame pixel)")
        return self

    def pixel_rule(self) -> PixelRule:
        """The card's rule, or the top-bit shift older bundles ran with on the device."""
        return self.pixels.rule() if self.pixels is not None else LEGACY


class Normalization(_Strict):
    """network_input = (pixel * scale - mean) / std, per channel."""

    scale: float = Field(1.0 / 255.0, gt=0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)


class OutputSpec(_Strict):
    format: Literal["scopehive-v1", "yolov8", "yolov5"] = Field(
        "scopehive-v1",
        description="scopehive-v1: outputs boxes[N,K,4] xyxy in input pixels, scores[N,K], classes[N,K]; "
        "yolov8/yolov5: raw YOLO heads, decoded and NMS'd on the device",
    )
    max_detections: int = Field(300, gt=0, le=10000)
    nms_iou: float = Field(0.5, gt=0, le=1, description="IoU for device-side NMS (YOLO formats)")


class EngineSpec(_Strict):
    file: str = Field(description="Path inside the bundle, under engines/")
    tensorrt_version: str = Field(description="TensorRT version that built it, e.g. 10.3.0")
    compute_capability: str = Field(description="GPU compute capability, e.g. 8.7")
    precision: Literal["fp32", "fp16", "int8"] = "fp16"

    @field_validator("file")
    @classmethod
    def _inside_engines(cls, value: str) -> str:
        if not value.startswith("engines/") or ".." in value.split("/"):
            raise ValueError("engine files must live under engines/")
        return value


class Int8Spec(_Strict):
    """An INT8 copy of model.onnx for CPU boxes (ONNX Runtime static quantisation, QDQ), written by
    `trainer export --int8` beside the float model, which stays for GPUs and as the fallback."""

    file: str = Field(description="The quantised ONNX model inside the bundle, e.g. model.int8.onnx")
    default: bool = Field(False, description="Run it instead of model.onnx where ONNX Runtime runs on the CPU; the trainer "
                          "sets it only when its held-out mAP@0.5 is within max_map50_loss of the float model's")
    reason: str = Field("", description="Why it is or is not the default, in words (said in the device's log)")
    max_map50_loss: float = Field(0.01, ge=0, le=1, description="The most held-out mAP@0.5 it may lose and be the default")
    calibration_frames: int = Field(0, ge=0, description="Training frames its activation ranges were calibrated on")

    @field_validator("file")
    @classmethod
    def _beside_the_model(cls, value: str) -> str:
        if not value.endswith(".onnx") or value == "model.onnx" or "/" in value or "\\" in value or value.startswith("."):
            raise ValueError("int8.file must be an .onnx file at the bundle's top level, other than model.onnx")
        return value


def box_coverage(xyxy: Any, height: int, width: int) -> float:
    """Crowding of a frame: the summed area of its boxes over the frame's area (overlaps count
    twice). A ratio of areas, so it reads the same at any zoom and frame size."""
    import numpy as np

    boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
    if not len(boxes) or height <= 0 or width <= 0:
        return 0.0
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    return float(min(area.sum() / (height * width), 4.0))


class CountModel(_Strict):
    """How one class's count is read off its boxes where plain box counting measured worse on the
    validation frames (trainer/counts.py `fit_count_model`, chosen by leave-one-out error).

    Boxes of touching objects merge or are suppressed, so on dense frames a detector finds a
    share of the objects that falls as the frame fills: `ratio` scales the box count by `k`;
    `coverage` by 1 + k x (the frame's box coverage, `box_coverage`), a correction that grows
    with crowding and vanishes on sparse frames. A frame without boxes always counts 0."""

    method: Literal["ratio", "coverage"]
    k: float = Field(ge=-1, le=20)
    loo_mae_boxes: float = Field(ge=0, description="Leave-one-out count MAE of the plain box count on validation")
    loo_mae: float = Field(ge=0, description="Leave-one-out count MAE of this estimate on validation")
    images: int = Field(ge=1, description="Validation images it was fitted on")

    def estimate(self, boxes: int, coverage: float) -> float:
        """The corrected count of a frame with `boxes` boxes of this class at `coverage` (never negative)."""
        factor = self.k if self.method == "ratio" else 1.0 + self.k * coverage
        return max(0.0, boxes * factor)


class ModelCard(_Strict):
    format: str = Field(MODEL_FORMAT)
    format_version: int = Field(MODEL_FORMAT_VERSION)
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    classes: list[str] = Field(min_length=1)
    input: InputSpec
    normalization: Normalization = Normalization()
    output: OutputSpec = OutputSpec()
    score_threshold: float = Field(0.3, ge=0, le=1, description="Threshold of classes not in class_thresholds")
    class_thresholds: dict[str, Annotated[float, Field(ge=0, le=1)]] | None = Field(
        None, description="Class name -> score threshold (the trainer fits each to the count error); "
        "bundles without it use score_threshold for every class")
    metrics: dict[str, Any] = Field(default_factory=dict)
    dataset_sha256: str | None = None
    created: datetime
    engines: list[EngineSpec] = Field(default_factory=list)
    int8: Int8Spec | None = Field(None, description="An INT8 model beside model.onnx for CPU boxes (trainer export --int8)")
    count_models: dict[str, CountModel] | None = Field(
        None, description="Class name -> count correction for dense frames; each frame's points then carry "
        "count_estimate beside count (docs/metrics.md). Classes not listed are counted box by box")

    @model_validator(mode="before")
    @classmethod
    def _newer_format_first(cls, data: Any) -> Any:
        """A newer card may carry fields this device has never heard of: say 'update', not 'invalid field'."""
        version = data.get("format_version") if isinstance(data, dict) else None
        if isinstance(version, int) and version > MODEL_FORMAT_VERSION:
            raise ValueError(
                f"format_version {version} is newer than this device understands "
                f"({MODEL_FORMAT_VERSION}): update the device software"
            )
        return data

    @field_validator("name", "version")
    @classmethod
    def _printable(cls, value: str, info: Any) -> str:
        """Name and version are tags of every point, the panel's labels and the fleet's reference:
        a trailing newline (a version read from a file) is stripped, any other control character
        refused. A line break in a tag would stop every InfluxDB write (docs/security.md)."""
        text = value.strip()
        problem = name_problem(text)
        if problem:
            raise ValueError(f"model {info.field_name} {text[:40]!r} {problem}")
        if not text:
            raise ValueError(f"model {info.field_name} is empty")
        return text

    @field_validator("classes")
    @classmethod
    def _class_names(cls, value: list[str]) -> list[str]:
        """Class names become `class` tags and CSV cells: stripped, printable, not empty."""
        names = [name.strip() for name in value]
        for i, name in enumerate(names):
            problem = name_problem(name)
            if problem:
                raise ValueError(f"class {i} {name[:40]!r} {problem}")
            if not name:
                raise ValueError(f"class {i} has an empty name")
        return names

    @model_validator(mode="after")
    def _check(self) -> ModelCard:
        if self.format != MODEL_FORMAT:
            raise ValueError(f"format must be '{MODEL_FORMAT}', got '{self.format}'")
        for field_name in ("class_thresholds", "count_models"):
            unknown = sorted(set(getattr(self, field_name) or {}) - set(self.classes))
            if unknown:
                raise ValueError(f"{field_name} names classes the model does not have: {unknown}")
        return self

    def thresholds(self) -> list[float]:
        """Score threshold of every class, by class index."""
        given = self.class_thresholds or {}
        return [float(given.get(name, self.score_threshold)) for name in self.classes]

    def count_estimates(self, class_ids: Any, xyxy: Any, height: int, width: int) -> dict[str, int] | None:
        """Per class, the frame's count as the bundle's count_models read it (whole objects; the
        box count for classes without one); None for a bundle without count_models."""
        if not self.count_models:
            return None
        import numpy as np

        ids = np.asarray(class_ids).reshape(-1)
        coverage = box_coverage(xyxy, height, width)
        out = {}
        for c, name in enumerate(self.classes):
            boxes = int((ids == c).sum())
            model = self.count_models.get(name)
            out[name] = boxes if model is None else int(round(model.estimate(boxes, coverage)))
        return out

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"


class ModelBundle:
    """A validated bundle on local disk."""

    def __init__(self, root: Path, card: ModelCard) -> None:
        self.root = root
        self.card = card

    @property
    def onnx_path(self) -> Path:
        return self.root / "model.onnx"

    @property
    def int8_path(self) -> Path | None:
        """The INT8 model the card names (checked present by load_bundle), or None."""
        return self.root / self.card.int8.file if self.card.int8 is not None else None

    def engine_for(self, tensorrt_version: str, compute_capability: str) -> Path | None:
        """The engine built by this TensorRT major.minor for this GPU, if the bundle has one."""
        want = ".".join(tensorrt_version.split(".")[:2])
        for engine in self.card.engines:
            have = ".".join(engine.tensorrt_version.split(".")[:2])
            if have == want and engine.compute_capability == compute_capability:
                path = self.root / engine.file
                if path.is_file():
                    return path
        return None

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        with open(self.onnx_path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()


def _parse_card(path: Path) -> ModelCard:
    try:
        return ModelCard.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        details = "; ".join(
            f"field '{'.'.join(str(p) for p in e['loc']) or '(top level)'}': {e['msg']}" for e in exc.errors()[:5]
        )
        raise BundleError(f"{path}: model.json is invalid: {details}") from exc


MAX_BUNDLE_BYTES = 4 << 30  # model.onnx plus TensorRT engines for a few GPUs
MIN_BUNDLE_BUDGET = 512 << 20
INFLATE_RATIO = 20  # ONNX weights and engines hardly compress; a zip of them inflates ~1-2x


def bundle_limits(zip_size: int) -> UnzipLimits:
    """What a bundle zip may unpack to: a generous ratio of its size, never more than 4 GB.

    A 3.5 MB bomb gets 512 MB (and is stopped there) instead of writing gigabytes.
    """
    total = min(MAX_BUNDLE_BYTES, max(MIN_BUNDLE_BUDGET, INFLATE_RATIO * zip_size))
    return UnzipLimits(max_total=total, max_entry=total, max_entries=10_000)


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _extract_zip(path: Path, cache_dir: Path) -> Path:
    """Unpack a zipped bundle into the cache (streamed, names and sizes checked; see device/safezip.py)."""
    target = cache_dir / f"{path.stem}-{_digest(path)}"
    if (target / "model.json").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=cache_dir))
    try:
        safezip.extract(path, staging, lambda name: True, bundle_limits(path.stat().st_size))
        root = staging
        inner = [p for p in staging.iterdir() if p.is_dir()]
        if not (staging / "model.json").exists() and len(inner) == 1:
            root = inner[0]  # zip of a folder
        shutil.rmtree(target, ignore_errors=True)
        os.replace(root, target)
    except safezip.ArchiveError as exc:
        raise BundleError(f"{path}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def remove_extracted(cache_dir: Path, stem: str) -> int:
    """Delete the unpacked copies of bundle zip `stem` (any content digest); returns how many."""
    removed = 0
    for folder in cache_dir.glob(f"{stem}-*"):
        if folder.is_dir() and re.fullmatch(re.escape(stem) + r"-[0-9a-f]{16}", folder.name):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def load_bundle(path: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None) -> ModelBundle:
    """Open a bundle folder or zip and validate its card; raises BundleError with what to fix."""
    source = Path(path)
    if not source.exists():
        raise BundleError(f"{source}: no such model bundle (give a folder or .zip with model.json and model.onnx)")
    if source.is_file():
        cache = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "scopehive-bundles"
        source = _extract_zip(source, cache)
    card_path = source / "model.json"
    if not card_path.is_file():
        raise BundleError(f"{source}: model.json is missing: this is not a ScopeHive model bundle")
    card = _parse_card(card_path)
    if not (source / "model.onnx").is_file():
        raise BundleError(f"{source}: model.onnx is missing: re-export the bundle with the trainer")
    for engine in card.engines:
        if not (source / engine.file).is_file():
            raise BundleError(f"{card_path}: engines lists '{engine.file}' but the file is not in the bundle")
    if card.int8 is not None and not (source / card.int8.file).is_file():
        raise BundleError(f"{card_path}: int8 names '{card.int8.file}' but the file is not in the bundle: re-run "
                          "trainer export --int8, or remove int8 from model.json to run the float model")
    return ModelBundle(source, card)
