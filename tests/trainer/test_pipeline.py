"""A real (small) training run end to end: it learns, exports faithfully, and writes a bundle the
device accepts, with a report and progress a person can follow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from trainer.bundle import read_card


def test_small_run_learns_far_beyond_an_untrained_model(trained_bundle: Path, train_package: Path) -> None:
    from trainer.config import TrainConfig, input_hw
    from trainer.dataset import load_dataset_package, split_dataset
    from trainer.model import ModelSpec, build_inference_model, build_raw_model
    from trainer.predict import evaluate_predictions, keras_runner, predict

    from .conftest import SMALL_RUN

    card = read_card(trained_bundle)
    config = TrainConfig(**SMALL_RUN)  # type: ignore[arg-type]
    dataset = load_dataset_package(train_package)
    _, val = split_dataset(dataset.samples, config.val_fraction, config.seed)
    hw = input_hw(config, dataset.samples[0].image.shape[:2])
    untrained = build_inference_model(build_raw_model(ModelSpec(3)), hw, config.max_detections)
    baseline = evaluate_predictions(val, predict(keras_runner(untrained), val, hw), dataset.classes)["map50"]
    assert card.metrics["map50"] >= 0.3
    assert card.metrics["map50"] > float(baseline) + 0.25  # type: ignore[arg-type]
    assert 0 < card.score_threshold < 1
    assert card.metrics["val_images"] == len(val)


def test_bundle_round_trips_through_the_device_loader(trained_bundle: Path, tmp_path: Path) -> None:
    from device.models.bundle import load_bundle

    ours = read_card(trained_bundle)
    bundle = load_bundle(trained_bundle)
    assert bundle.card.classes == ["cell", "crystal", "debris"]
    assert bundle.card.output.format == "scopehive-v1"
    assert (bundle.card.input.width, bundle.card.input.height) == (320, 256)  # 240 rounded to 32s
    assert bundle.card.score_threshold == ours.score_threshold
    assert bundle.card.dataset_sha256 == ours.dataset_sha256
    archive = shutil.make_archive(str(tmp_path / "bundle"), "zip", trained_bundle)
    assert load_bundle(archive, cache_dir=tmp_path / "cache").card.version == ours.version


def test_onnx_outputs_match_keras_on_validation_frames(trained_bundle: Path, train_package: Path) -> None:
    from trainer.dataset import load_dataset_package
    from trainer.export import compare_with_keras
    from trainer.pipeline import parity_frames, rebuild_inference_model

    parity = read_card(trained_bundle).metrics["onnx_parity"]
    assert parity["frames"] >= 2 and parity["compared_detections"] > 0
    assert parity["max_abs_diff"] < 1e-2
    model, hw, _ = rebuild_inference_model(trained_bundle)
    samples = load_dataset_package(train_package).samples
    again = compare_with_keras((trained_bundle / "model.onnx").read_bytes(), model, parity_frames(samples, hw))
    assert again["max_abs_diff"] < 1e-2 and again["compared_detections"] > 0


def test_onnx_graph_uses_standard_ops_and_names_its_outputs(trained_bundle: Path) -> None:
    import onnx

    model = onnx.load(str(trained_bundle / "model.onnx"))
    assert [o.name for o in model.graph.output] == ["boxes", "scores", "classes"]
    assert max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) <= 17
    assert all(node.domain in ("", "ai.onnx") for node in model.graph.node)
    assert {"TopK", "MaxPool"} <= {node.op_type for node in model.graph.node}


def test_report_progress_and_logs_are_written(trained_bundle: Path) -> None:
    report = (trained_bundle / "report.md").read_text()
    assert "mAP@0.5" in report and "| cell |" in report and "report.png" in report
    png = (trained_bundle / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    progress = json.loads((trained_bundle / "progress.json").read_text())
    assert progress["state"] == "done" and progress["epoch"] == progress["epochs"]
    assert progress["val"]["map50"] > 0
    assert list((trained_bundle / "tensorboard").glob("events.out.tfevents.*"))
    assert (trained_bundle / "train" / "best.weights.h5").is_file()


def test_ctrl_c_keeps_the_best_weights_and_still_writes_a_bundle(train_package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from device.models.bundle import load_bundle
    from trainer.config import TrainConfig
    from trainer.pipeline import train_bundle
    from trainer.progress import ProgressReporter

    original = ProgressReporter.step
    calls = {"n": 0}

    def interrupting_step(self: ProgressReporter, loss: float, epoch: int) -> None:
        calls["n"] += 1
        if epoch == 3:
            raise KeyboardInterrupt
        original(self, loss, epoch)

    monkeypatch.setattr(ProgressReporter, "step", interrupting_step)
    config = TrainConfig(epochs=6, input_size=128, crop=64, eval_every=1, val_fraction=0.25)
    out = train_bundle(train_package, tmp_path / "stopped", config, quiet=True)
    card = load_bundle(out).card
    assert card.metrics["training"]["interrupted"] is True
    assert card.metrics["training"]["epochs_run"] == 2
    assert json.loads((out / "progress.json").read_text())["state"] == "done"
    assert np.isfinite(card.metrics["map50"])


def test_class_thresholds_round_trip_to_the_device_detector(trained_bundle: Path, tmp_path: Path) -> None:
    from device.inference.detector import load_detector

    card = read_card(trained_bundle)
    assert card.class_thresholds is not None and set(card.class_thresholds) == set(card.classes)
    assert all(0 < t < 1 for t in card.class_thresholds.values())
    assert card.metrics["class_thresholds"] == card.class_thresholds
    detector = load_detector(trained_bundle, "onnx", tmp_path)
    assert detector.thresholds.tolist() == pytest.approx([card.class_thresholds[c] for c in card.classes])


def test_report_gives_count_agreement_per_class(trained_bundle: Path) -> None:
    report = (trained_bundle / "report.md").read_text()
    assert "counted exactly" in report and "95 % limits of agreement" in report
    assert "| cell |" in report
    cell = read_card(trained_bundle).metrics["count_error"]["per_class"]["cell"]
    assert 0 <= cell["exact_share"] <= 1 and cell["loa_low"] <= cell["bias"] <= cell["loa_high"]
    assert (trained_bundle / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
