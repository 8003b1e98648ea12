"""Writing the model bundle (trainer -> device), see docs/formats.md section 2.

The trainer keeps its own pydantic copy of the ModelCard (it never imports `device`); a test
checks that what `write_bundle` produces is accepted by the device's `load_bundle`. Bundles are
assembled in a hidden folder beside the target and moved in at the end, `model.json` last, so a
crash never leaves a bundle that looks complete but is not.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from device.inference.pixels import LEGACY, PixelRule
from trainer.tiling import TilePolicy

MODEL_FORMAT = "scopehive-model"
MODEL_FORMAT_VERSION = 3  # 2: class_thresholds and input.resize "tile"; 3: input.pixels, input.um_per_pixel
COUNT_MODELS_FORMAT = 4  # a card with count_models: devices before it say "update the device software"


class BundleError(ValueError):
    """A bundle the trainer cannot read or write; the message says what to do."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PixelSpec(_Strict):
    """model.json input.pixels: how frames over 8 bits become 8-bit (device/inference/pixels.py)."""

    method: Literal["percentile", "range", "shift"] = "percentile"
    low: float = Field(0.1, ge=0, lt=100)
    high: float = Field(99.99, gt=0, le=100)
    black: float = Field(0.0, ge=0)
    white: float = Field(65535.0, gt=0)

    @classmethod
    def of(cls, rule: PixelRule) -> PixelSpec:
        return cls.model_validate(rule.as_dict())

    def rule(self) -> PixelRule:
        return PixelRule(self.method, self.low, self.high, self.black, self.white)


class InputSpec(_Strict):
    width: int = Field(gt=0, le=4096)
    height: int = Field(gt=0, le=4096)
    layout: Literal["NCHW", "NHWC"] = "NHWC"
    color: Literal["RGB", "BGR"] = "RGB"
    resize: Literal["stretch", "letterbox", "tile"] = "stretch"
    name: str | None = None
    # resize "tile" (trainer/tiling.py): every frame resized by `scale`, padded or cut into tiles
    scale: float | None = Field(None, gt=0, le=16)
    tile_overlap: int = Field(0, ge=0, le=2048)
    max_tiles: int = Field(1, ge=1, le=256)
    pixels: PixelSpec | None = None  # absent (before format 3): the device shifted by the top bit
    um_per_pixel: float | None = Field(None, gt=0, le=1000)  # µm per frame pixel `scale` was chosen for

    def pixel_rule(self) -> PixelRule:
        return self.pixels.rule() if self.pixels is not None else LEGACY

    @model_validator(mode="after")
    def _tile_needs_scale(self) -> InputSpec:
        if self.resize == "tile" and self.scale is None:
            raise ValueError("resize 'tile' needs input.scale")
        return self

    def tile_policy(self) -> TilePolicy | None:
        """The tiling rule of a `resize: tile` card; None for older stretch/letterbox cards."""
        if self.resize != "tile" or self.scale is None:
            return None
        return TilePolicy(self.scale, (self.height, self.width), self.tile_overlap, self.max_tiles)

    def resize_rule(self) -> TilePolicy | tuple[int, int]:
        """What trainer.predict needs: the tile policy, or the (height, width) old cards stretch to."""
        return self.tile_policy() or (self.height, self.width)


class Normalization(_Strict):
    scale: float = Field(1.0 / 255.0, gt=0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)


class OutputSpec(_Strict):
    format: Literal["scopehive-v1", "yolov8", "yolov5"] = "scopehive-v1"
    max_detections: int = Field(300, gt=0, le=10000)
    nms_iou: float = Field(0.5, gt=0, le=1)


class EngineSpec(_Strict):
    file: str = Field(description="Path inside the bundle, under engines/")
    tensorrt_version: str
    compute_capability: str
    precision: Literal["fp32", "fp16", "int8"] = "fp16"


class Int8Spec(_Strict):
    """model.json int8: the INT8 model beside model.onnx (trainer/quantize.py; the device's copy documents each field)."""

    file: str = "model.int8.onnx"
    default: bool = False
    reason: str = ""
    max_map50_loss: float = Field(0.01, ge=0, le=1)
    calibration_frames: int = Field(0, ge=0)


class ModelCard(_Strict):
    format: str = MODEL_FORMAT
    format_version: int = MODEL_FORMAT_VERSION
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    classes: list[str] = Field(min_length=1)
    input: InputSpec
    normalization: Normalization = Normalization()
    output: OutputSpec = OutputSpec()
    score_threshold: float = Field(0.3, ge=0, le=1)
    class_thresholds: dict[str, Annotated[float, Field(ge=0, le=1)]] | None = None  # absent: score_threshold for all
    metrics: dict[str, Any] = Field(default_factory=dict)
    dataset_sha256: str | None = None
    created: datetime
    engines: list[EngineSpec] = Field(default_factory=list)
    int8: Int8Spec | None = None  # absent: the bundle has only the float model
    count_models: dict[str, dict[str, Any]] | None = None  # device.models.bundle.CountModel per class; absent: boxes counted

    def thresholds_by_class(self) -> dict[str, float]:
        """Score threshold of every class; cards from before class_thresholds use one for all."""
        given = self.class_thresholds or {}
        return {name: float(given.get(name, self.score_threshold)) for name in self.classes}


def read_card(bundle_dir: str | os.PathLike[str]) -> ModelCard:
    path = Path(bundle_dir) / "model.json"
    if not path.is_file():
        raise BundleError(f"{bundle_dir}: model.json is missing: give a bundle folder written by the trainer")
    try:
        return ModelCard.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise BundleError(f"{path}: model.json is invalid: {exc.errors()[0]['msg']}") from exc


def write_card(bundle_dir: str | os.PathLike[str], card: ModelCard) -> None:
    """Replace model.json atomically (used after adding engines or re-exporting)."""
    path = Path(bundle_dir) / "model.json"
    tmp = path.with_name(".model.json.tmp")
    # A card without corrections leaves the key out: devices from before format 4 refuse any key
    # they do not know, even a null one.
    tmp.write_text(card.model_dump_json(indent=2, exclude={"count_models"} if card.count_models is None else None))
    os.replace(tmp, path)


def _place(src: Path, dst: Path) -> None:
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    os.replace(src, dst)


def write_bundle(
    out_dir: str | os.PathLike[str], card: ModelCard, onnx_model: bytes, extra_files: Mapping[str, bytes | Path] | None = None
) -> Path:
    """Write model.onnx, model.json and extra files (report, engines/...) into `out_dir`.

    `extra_files` maps a relative path to bytes or to a file/folder to copy. Existing files of the
    same name are replaced; other files already in `out_dir` (progress.json, logs) are kept.
    """
    target = Path(out_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it 0700: a device or panel under another uid must read the bundle
    try:
        (staging / "model.onnx").write_bytes(onnx_model)
        for rel, content in (extra_files or {}).items():
            dest = staging / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                dest.write_bytes(content)
            elif content.is_dir():
                shutil.copytree(content, dest)
            else:
                shutil.copy2(content, dest)
        write_card(staging, card)
        if not target.exists():
            os.replace(staging, target)
            return target
        for entry in sorted(staging.iterdir(), key=lambda p: p.name == "model.json"):
            _place(entry, target / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
