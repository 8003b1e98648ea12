"""Names that become tags are refused where they enter: bundle card, Models page upload, config, fleet (the Models page upload: tests/device/panel/test_model_names.py).

A newline in a tag value ends the line-protocol line: InfluxDB refused every batch and the outbox
stopped for good (issue 21, item 1). Each entry point is attacked with the same values.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from device.config import ConfigError, DeviceConfig, load_config
from device.fleet.fetch import FetchError, split_ref
from device.fleet.settings import FleetSettings
from device.models.bundle import BundleError, load_bundle
from device.models.settings import ModelSettings
from tests.device.panel.helpers import card, tiny_onnx

HOSTILE = [("2026.12\nevil", "U+000A"), ("1.0\r2", "U+000D"), ("a\x00b", "U+0000"), ("v\u2028w", "U+2028"),
           ("v\u202e1", "U+202E"), ("tab\there", "U+0009"), ("del\x7f", "U+007F")]  # surrounding whitespace is stripped


def _folder(tmp_path: Path, **changes: object) -> Path:
    folder = tmp_path / "bundle"
    folder.mkdir()
    tiny_onnx(folder / "model.onnx")
    (folder / "model.json").write_text(json.dumps({**card(), **changes}))
    return folder


@pytest.mark.parametrize(("field", "value", "code"), [(f, v, c) for f in ("name", "version") for v, c in HOSTILE])
def test_a_card_with_a_control_character_in_its_name_or_version_is_refused(tmp_path: Path, field: str, value: str,
                                                                            code: str) -> None:
    with pytest.raises(BundleError, match=f"field '{field}'.*control character {re.escape(code)}"):
        load_bundle(_folder(tmp_path, **{field: value}))


@pytest.mark.parametrize(("value", "code"), HOSTILE)
def test_a_class_name_with_a_control_character_is_refused(tmp_path: Path, value: str, code: str) -> None:
    with pytest.raises(BundleError, match=f"class 1 .*control character {re.escape(code)}"):
        load_bundle(_folder(tmp_path, classes=["cell", value, "debris"]))


def test_a_version_read_with_its_trailing_newline_is_stripped(tmp_path: Path) -> None:
    bundle = load_bundle(_folder(tmp_path, version="2026.12\n", name=" tiny ", classes=["cell\n", "crystal", "debris"]))
    assert (bundle.card.version, bundle.card.name, bundle.card.classes) == ("2026.12", "tiny", ["cell", "crystal", "debris"])


@pytest.mark.parametrize(("value", "code"), HOSTILE)
@pytest.mark.parametrize("field", ["device_name", "project"])
def test_config_refuses_tag_values_with_control_characters(field: str, value: str, code: str) -> None:
    with pytest.raises(ValidationError, match=f"control character {re.escape(code)}"):
        DeviceConfig.model_validate({field: value})
    with pytest.raises(ConfigError, match=f"control character {re.escape(code)}"):
        load_config(None, environ={f"SCOPEHIVE_{field.upper()}": value})


def test_config_strips_a_trailing_newline_from_a_tag_value() -> None:
    assert load_config(None, environ={"SCOPEHIVE_DEVICE_NAME": "scope-7\n"}).device_name == "scope-7"


@pytest.mark.parametrize("name", ["side\nevil", "side\n", "side\r", "si\x00de", "side\u202e"])
def test_a_model_beside_the_main_one_refuses_such_a_name(name: str) -> None:
    with pytest.raises(ValidationError):
        ModelSettings(name=name, bundle="x.zip")
    with pytest.raises(ConfigError):
        load_config(None, environ={"SCOPEHIVE_MODELS": json.dumps([{"name": name, "bundle": "x.zip"}])})


@pytest.mark.parametrize("ref", ["peaks:2026.12\nevil", "peaks\n:1", "peaks:1\r", "pe\x00aks:1", "../../etc:1",
                                 "peaks:..", "peaks:a/b", "peaks:a\\b"])
def test_a_fleet_assignment_with_control_characters_or_a_path_is_refused(ref: str) -> None:
    with pytest.raises(FetchError, match="control character|contains a path"):
        split_ref(ref)


def test_the_fleet_default_refuses_control_characters() -> None:
    with pytest.raises(ValidationError, match="control character U\\+000A"):
        FleetSettings(model_ref="peaks:1.0\nevil")
    assert split_ref("synthetic-cells:2026.11.21-1") == ("synthetic-cells", "2026.11.21-1")
