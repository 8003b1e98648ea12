from pathlib import Path

import pytest

from device.cli import main
from device.config import ConfigError, DeviceConfig, env_var_names, load_config


def test_cli_beats_env_beats_file_beats_defaults(tmp_path: Path) -> None:
    file = tmp_path / "device.yaml"
    file.write_text("project: from-file\nport: 9001\nsource: /data/images\ninflux:\n  bucket: file-bucket\n")
    env = {"SCOPEHIVE_PORT": "9002", "SCOPEHIVE_INFLUX__BUCKET": "env-bucket", "SCOPEHIVE_UM_PER_PIXEL": "0.5"}
    config = load_config(file, environ=env, cli={"port": 9003, "model": None})
    assert config.port == 9003  # CLI
    assert config.influx.bucket == "env-bucket"  # env over file
    assert config.project == "from-file"  # file over default
    assert config.source == "/data/images"
    assert config.um_per_pixel == 0.5
    assert config.status_interval_s == 10  # default
    assert config.model is None  # a CLI flag left out changes nothing


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SCOPEHIVE_MODLE": "x"}, "SCOPEHIVE_MODLE"),
        ({"SCOPEHIVE_INFLUX__URLL": "x"}, "SCOPEHIVE_INFLUX__URLL"),
        ({"SCOPEHIVE_PORT": "eighty"}, "SCOPEHIVE_PORT"),
        ({"SCOPEHIVE_BACKEND": "cuda"}, "backend"),
    ],
)
def test_bad_environment_fails_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(environ=env)


def test_unknown_file_key_is_rejected_with_the_file_named(tmp_path: Path) -> None:
    file = tmp_path / "device.yaml"
    file.write_text("influx:\n  ulr: http://x\n")
    with pytest.raises(ConfigError, match=r"influx\.ulr.*device\.yaml"):
        load_config(file, environ={})


def test_harness_and_secret_variables_are_not_errors() -> None:
    env = {"SCOPEHIVE_TEST_INFLUX_URL": "x", "SCOPEHIVE_VAR": "/tmp", "SCOPEHIVE_PANEL_PASSWORD": "secret"}
    assert load_config(environ=env).project == "default"


def test_env_var_names_cover_every_field_and_the_documented_ones() -> None:
    names = env_var_names()
    documented = {"SCOPEHIVE_SOURCE", "SCOPEHIVE_MODEL", "SCOPEHIVE_INFLUX__URL", "SCOPEHIVE_INFLUX__TOKEN",
                  "SCOPEHIVE_INFLUX__ORG", "SCOPEHIVE_INFLUX__BUCKET", "SCOPEHIVE_DEVICE_NAME", "SCOPEHIVE_PROJECT",
                  "SCOPEHIVE_UM_PER_PIXEL", "SCOPEHIVE_BACKEND", "SCOPEHIVE_DATA_DIR", "SCOPEHIVE_PANEL_PASSWORD"}
    assert documented <= names
    for name in names:
        try:
            load_config(environ={name: "1"})
        except ConfigError as exc:  # the value may be invalid for the field, but the name is known
            assert "unknown environment variable" not in str(exc)
    for field in DeviceConfig.model_fields.values():
        assert field.description, "every setting is described"


def test_validate_config_flag(tmp_path: Path, peak_bundle: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("SCOPEHIVE_") and not name.startswith("SCOPEHIVE_TEST_"):
            monkeypatch.delenv(name)
    ok = main(["run", "--validate-config", "--model", str(peak_bundle), "--data-dir", str(tmp_path)])
    assert ok == 0 and '"model"' in capsys.readouterr().out
    assert main(["run", "--validate-config", "--source", "ftp://scope/x"]) == 2
    assert "unknown source scheme" in capsys.readouterr().err
    assert main(["run", "--validate-config", "--model", str(tmp_path / "nope")]) == 2
    assert "no such model bundle" in capsys.readouterr().err


def test_fleet_section_comes_from_balena_style_variables() -> None:
    config = load_config(environ={"SCOPEHIVE_FLEET__ENABLED": "true", "SCOPEHIVE_FLEET__MODEL_REF": "cells:3"})
    assert config.fleet.enabled and config.fleet.model_ref == "cells:3"
    assert "SCOPEHIVE_FLEET__STORE" in env_var_names()
