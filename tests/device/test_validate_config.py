"""`--validate-config` and the settings it checks: each wrong value is refused with its name."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.cli import main
from device.config import ConfigError, load_config
from device.sources.base import SourceError
from device.sources.registry import open_source


def test_a_folder_that_does_not_exist_fails_validation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-folder"
    assert main(["run", "--source", str(missing), "--data-dir", str(tmp_path), "--validate-config"]) == 2
    assert f"the folder {missing} does not exist" in capsys.readouterr().err
    assert main(["run", "--source", f"{missing}/*.tif", "--data-dir", str(tmp_path), "--validate-config"]) == 2
    (tmp_path / "shots").mkdir()
    assert main(["run", "--source", str(tmp_path / "shots"), "--data-dir", str(tmp_path), "--validate-config"]) == 0


def test_validation_prints_no_credentials(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPEHIVE_INFLUX__TOKEN", "user:influx-secret")
    assert main(["run", "--source", "rtsp://op:cam-secret@scope.local/live", "--data-dir", str(tmp_path),
                 "--validate-config"]) == 0  # a camera is not opened: it may be elsewhere now
    out = capsys.readouterr()
    assert "cam-secret" not in out.out + out.err and "influx-secret" not in out.out + out.err
    assert "rtsp://***@scope.local/live" in out.out


@pytest.mark.parametrize("url", ["ftp://influx.local:8086", "influx.local:8086", "http://"])
def test_an_influx_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match=r"influx\.url.*not an InfluxDB URL"):
        load_config(environ={}, cli={"influx.url": url})


def test_https_and_empty_influx_urls_are_fine() -> None:
    assert load_config(environ={}, cli={"influx.url": "https://influx.example:8086"}).influx.url == "https://influx.example:8086"
    assert load_config(environ={}, cli={"influx.url": ""}).influx.url == ""


@pytest.mark.parametrize("fps", ["fast", "-1", "inf", "nan"])
def test_a_bad_synthetic_fps_names_the_option(fps: str) -> None:
    with pytest.raises(SourceError, match=f"bad synthetic option fps='{fps}'") as caught:
        open_source(f"synthetic://?fps={fps}")
    assert caught.value.permanent
