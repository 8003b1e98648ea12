"""Progress a person can follow: the console bar, and progress.json for a web page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_bar_shows_epoch_loss_and_steps_without_flooding_a_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from trainer.progress import ProgressReporter

    reporter = ProgressReporter(tmp_path, epochs=2, steps_per_epoch=300)
    for epoch in (1, 2):
        for _ in range(300):
            reporter.step(1.2345, epoch)
        reporter.epoch_done(epoch, {"total": 1.2345}, {"map50": 0.5, "map50_95": 0.3} if epoch == 2 else None)
    reporter.set_state("done", "bundle written")
    reporter.close()
    err = capsys.readouterr().err  # not a terminal: redrawn at most every 30 s, plus start and end
    assert "epoch 2/2" in err and "loss=1.234" in err and "600/600" in err
    assert err.count("\r") <= 4
    progress = json.loads((tmp_path / "progress.json").read_text())
    assert progress["state"] == "done" and progress["epoch"] == 2 and progress["val"]["map50"] == 0.5
    assert list((tmp_path / "tensorboard").iterdir())
