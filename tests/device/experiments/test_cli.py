"""`python -m device experiment`: start/stop/profile/export from a shell; refusals exit 2 and change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from device.cli import main
from device.experiments.store import ExperimentStore


def _run(data: Path, *args: str) -> int:
    return main(["experiment", "--data-dir", str(data), *args])


def test_cli_journey(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path, "profile", "40x", "--line", "0", "0", "300", "400", "--length-um", "100") == 0
    assert json.loads(capsys.readouterr().out)["um_per_pixel"] == pytest.approx(0.2)
    assert _run(tmp_path, "start", "Blood smear", "--profile", "40x", "--sample", "S-9") == 0
    started = json.loads(capsys.readouterr().out)
    assert started["running"] and started["calibration"]["name"] == "40x"
    assert _run(tmp_path, "start", "second") == 2 and "is running" in capsys.readouterr().err
    assert _run(tmp_path, "stop") == 0
    capsys.readouterr()
    assert _run(tmp_path, "export", started["id"], "--out", str(tmp_path / "out")) == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [f"{started['id']}-{n}" for n in ("frames.csv", "objects.csv", "objects.geojson", "report.html")]


@pytest.mark.parametrize("args", [("stop",), ("start", "x", "--profile", "none"), ("start", "bad\x1bname"),
                                  ("profile", "p", "--um-per-pixel", "-1"), ("profile", "p", "--line", "1", "1", "1", "1", "--length-um", "5"),
                                  ("profile", "p", "--line", "0", "0", "9", "0", "--length-um", "-5"), ("summary", "nope")])
def test_cli_refusals(tmp_path: Path, args: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path, *args) == 2
    assert capsys.readouterr().err.startswith("error: ")
    store = ExperimentStore(tmp_path / "experiments.sqlite")
    assert store.recent() == [] and store.profiles() == []
