"""`python -m device experiment` against a data folder that is not there: read commands refuse it
(exit 2, a message) and create nothing; only start and profile make the store. The experiments
package gets its data folder from the top-level CLI and never reads the device config itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from device.cli import main


@pytest.mark.parametrize("args", [("list",), ("stop",), ("summary", "x"), ("export", "x")])
def test_read_commands_refuse_a_missing_data_dir_and_create_nothing(tmp_path: Path, args: tuple[str, ...],
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    typo = tmp_path / "var" / "devcie"
    assert main(["experiment", "--data-dir", str(typo), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"the data folder {typo} does not exist" in err and "--data-dir" in err
    assert not typo.exists() and not (tmp_path / "var").exists()


def test_list_in_a_data_dir_without_experiments_is_empty_and_creates_no_store(tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment", "--data-dir", str(tmp_path), "list"]) == 0
    assert json.loads(capsys.readouterr().out) == [] and list(tmp_path.iterdir()) == []
    assert main(["experiment", "--data-dir", str(tmp_path), "summary", "nope"]) == 2
    assert "no experiment 'nope'" in capsys.readouterr().err and list(tmp_path.iterdir()) == []


def test_start_creates_the_data_dir_and_list_then_reads_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "new"
    assert main(["experiment", "--data-dir", str(data), "start", "first"]) == 0
    started = json.loads(capsys.readouterr().out)
    assert main(["experiment", "--data-dir", str(data), "list"]) == 0
    assert [e["id"] for e in json.loads(capsys.readouterr().out)] == [started["id"]]


def test_the_data_dir_and_tags_come_from_the_config_through_the_top_level_cli(tmp_path: Path,
                                                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "device.yaml"
    config.write_text(f"data_dir: {tmp_path / 'from-config'}\ndevice_name: scope-9\nproject: haem\n", encoding="utf-8")
    assert main(["experiment", "--config", str(config), "start", "smear"]) == 0
    started = json.loads(capsys.readouterr().out)
    assert started["device"] == "scope-9" and started["project"] == "haem"
    assert (tmp_path / "from-config" / "experiments.sqlite").is_file()
    assert main(["experiment", "--config", str(tmp_path / "missing.yaml"), "list"]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_the_experiments_cli_does_not_import_the_device_config() -> None:
    code = "import sys, device.experiments.cli; print('device.config' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"
