"""One conversion of frames over 8 bits (device/inference/pixels.py): literal cases, and the tensor
the device builds from a 16-bit file is the one training saw from the same file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from device.inference.detector import Detector
from device.inference.pixels import LEGACY, TRAINED, PixelRule, to_uint8
from device.models.bundle import ModelBundle, ModelCard
from device.sources.images import read_image
from tests.device.bundles import card as make_card
from tests.device.inference.recording import RecordingBackend
from trainer import tiling as tr
from trainer.bundle import InputSpec as TrainerInputSpec
from trainer.bundle import PixelSpec as TrainerPixelSpec
from trainer.dataset import Sample, decode_image, with_pixels
from trainer.predict import first_tiles


@pytest.mark.parametrize(("rule", "frame", "expected"), [
    (PixelRule("range", black=100, white=4095), [[100, 4095, 2106, 50, 65535]], [[0, 255, 128, 0, 255]]),
    (LEGACY, [[0, 4095, 2048, 16, 1]], [[0, 255, 128, 1, 0]]),  # 12 bits used: >> 4
    (LEGACY, [[0, 255, 128, 7, 1]], [[0, 255, 128, 7, 1]]),  # under 9 bits: no shift
    (PixelRule("percentile", low=0, high=100), [[100, 200, 300, 500]], [[0, 64, 128, 255]]),
])
def test_rules_on_literal_frames(rule: PixelRule, frame: list[list[int]], expected: list[list[int]]) -> None:
    got = to_uint8(np.asarray(frame, np.uint16), rule)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, np.asarray(expected, np.uint8))


def test_eight_bit_frames_pass_through_every_rule() -> None:
    frame = np.arange(256, dtype=np.uint8).reshape(16, 16)
    for rule in (TRAINED, LEGACY, PixelRule("range", black=10, white=20)):
        assert to_uint8(frame, rule) is frame


def test_percentile_absorbs_the_camera_offset_and_ignores_a_few_hot_pixels() -> None:
    """A 12-bit camera: offset 400 counts, a few nuclei at ~2400, three saturated hot pixels."""
    rng = np.random.default_rng(0)
    frame = (400 + rng.normal(0, 8, (512, 512))).astype(np.uint16)
    frame[100:110, 100:110] = frame[300:310, 200:210] = 2400
    frame[5, 5] = frame[6, 400] = frame[500, 7] = 4095
    out = to_uint8(frame, TRAINED)
    assert np.median(out) < 20  # the offset is black, not grey
    assert out[105, 105] >= 250 and out[305, 205] >= 250  # the nuclei reach white; the hot pixels did not set it
    assert to_uint8(frame, LEGACY)[105, 105] == 2400 >> 4  # the old shift: nuclei at 59 % grey, background 10 %


def test_percentile_is_exact_nearest_rank() -> None:
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 60000, (300, 200), dtype=np.uint16)
    lo, hi = np.percentile(frame, (0.1, 99.99), method="inverted_cdf")
    expected = np.clip((frame.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / (hi - lo)) + np.float32(0.5), 0, 255)
    np.testing.assert_array_equal(to_uint8(frame, TRAINED), expected.astype(np.uint8))


def _trainer_card_input(scale: float, tile: int) -> dict[str, object]:
    """The `input` the trainer writes (trainer.pipeline.make_card), through the trainer's own model."""
    spec = TrainerInputSpec(width=tile, height=tile, resize="tile", name="image", scale=scale, tile_overlap=32, max_tiles=4,
                            pixels=TrainerPixelSpec.of(TRAINED))
    return spec.model_dump(mode="json")


def test_the_device_tensor_of_a_16_bit_file_is_the_one_training_saw(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    frame = (300 + rng.normal(0, 20, (200, 240))).clip(0, 65535).astype(np.uint16)  # camera offset ~300
    frame[50:70, 60:80] = 3000
    frame[120:126, 150:156] = 4095  # saturated
    path = tmp_path / "cells.png"
    cv2.imwrite(str(path), frame)

    trained = decode_image(path.read_bytes())  # what load_dataset_package makes of the package's file
    assert trained is not None
    policy = tr.TilePolicy(1.0, (256, 256), 32, 4)
    seen_in_training = first_tiles([Sample("cells.png", trained, np.zeros((0, 4), np.float32), np.zeros(0, np.int32))], policy)[0]

    from trainer.augment import PIXEL_MEAN, PIXEL_SCALE

    model_card = ModelCard.model_validate(make_card("cells", ["cell"], 256, 256, format_version=3, input=_trainer_card_input(1.0, 256),
                                                    normalization={"scale": PIXEL_SCALE, "mean": [PIXEL_MEAN] * 3, "std": [1, 1, 1]}))
    backend = RecordingBackend()
    detector = Detector(ModelBundle(tmp_path, model_card), backend)  # type: ignore[arg-type]
    detector.analyse(read_image(path))  # the device's image source reads the file at its own depth
    assert len(backend.seen) == 1
    np.testing.assert_allclose(backend.seen[0][0], seen_in_training, atol=1e-6)


def test_an_old_bundle_keeps_the_top_bit_shift_and_evaluation_follows_it(tmp_path: Path) -> None:
    """Bundles without input.pixels ran with the shift on the device; evaluation scores them so."""
    frame = np.full((64, 64), 1000, np.uint16)
    frame[10:20, 10:20] = 4000
    old = ModelCard.model_validate(make_card("old", ["cell"], 64, 64))
    assert Detector(ModelBundle(tmp_path, old), RecordingBackend()).model_pixels(frame)[15, 15, 0] == 4000 >> 4  # type: ignore[arg-type]
    cv2.imwrite(str(tmp_path / "f.png"), frame)
    from trainer.dataset import decode_raw, to_rgb8

    raw = decode_raw((tmp_path / "f.png").read_bytes())
    sample = Sample("f.png", to_rgb8(raw), np.zeros((0, 4), np.float32), np.zeros(0, np.int32), raw=raw)
    assert sample.image[15, 15, 0] == 255  # the trainer's rule
    assert with_pixels([sample], TrainerInputSpec(width=64, height=64).pixel_rule())[0].image[15, 15, 0] == 4000 >> 4


@pytest.mark.parametrize(("text", "rule"), [
    ("percentile", TRAINED),
    ("percentile:1:99", PixelRule("percentile", low=1.0, high=99.0)),
    ("range:100:4095", PixelRule("range", black=100.0, white=4095.0)),
])
def test_the_trainer_option_names_a_rule(text: str, rule: PixelRule) -> None:
    from trainer.config import TrainConfig

    assert TrainConfig(pixels=text).pixel_rule() == rule


@pytest.mark.parametrize(("text", "message"), [
    ("range:4095:100", "0 <= black < white <= 65535"),
    ("percentile:99:1", "0 <= low < high <= 100"),
    ("range:a:b", "must be numbers"),
    ("gamma", "use percentile, percentile:LOW:HIGH"),
    ("range:100", "use percentile"),
])
def test_a_bad_pixel_rule_is_refused_before_training(text: str, message: str) -> None:
    from pydantic import ValidationError

    from trainer.config import TrainConfig

    with pytest.raises(ValidationError, match=message):
        TrainConfig(pixels=text)


def test_a_range_rule_reaches_training_frames_and_the_card(tmp_path: Path) -> None:
    """A 12-bit camera with an offset of 100: `--pixels range:100:4095` maps 100 -> 0 and 4095 -> 255
    for every frame, the training frames are converted so and the bundle records it for the device."""
    from trainer.config import TrainConfig
    from trainer.dataset import decode_raw, to_rgb8

    frame = np.full((32, 32), 100, np.uint16)
    frame[:8, :8] = 4095
    cv2.imwrite(str(tmp_path / "f.png"), frame)
    raw = decode_raw((tmp_path / "f.png").read_bytes())
    sample = Sample("f.png", to_rgb8(raw), np.zeros((0, 4), np.float32), np.zeros(0, np.int32), raw=raw)
    rule = TrainConfig(pixels="range:100:4095").pixel_rule()
    converted = with_pixels([sample], rule)[0].image
    assert converted[0, 0, 0] == 255 and converted[20, 20, 0] == 0
    spec = TrainerInputSpec(width=32, height=32, pixels=TrainerPixelSpec.of(rule))
    assert spec.pixel_rule() == rule  # what the device will apply to its frames
