"""The deployment files, checked without a Docker engine (none here): they parse, every build
context and Dockerfile exists, volumes are declared, images are pinned, labels are only the
balena features we need (each explained), and every variable is one the device config accepts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import tomllib
import yaml

from device.config import load_config

ROOT = Path(__file__).resolve().parents[2]
JETSONS = ["jetson-nano", "jetson-xavier-nx-devkit", "jetson-agx-orin-devkit"]
SUPPORTED = [*JETSONS, "genericx86-64-ext"]
COMPOSE_FILES = [ROOT / "docker-compose.yml", ROOT / "trainer" / "docker-compose.yml"]


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} must be a mapping"
    return data


def _dockerfile(base: Path, service: dict[str, Any]) -> tuple[Path, Path]:
    build = service["build"]
    context = base / (build if isinstance(build, str) else build["context"])
    name = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    return context, (context / name if isinstance(build, str) else base / build["context"] / name)


def _all_dockerfiles() -> list[Path]:
    found = sorted((ROOT / "device").glob("Dockerfile*")) + [ROOT / "trainer" / "Dockerfile"]
    return [p for p in found if p.is_file()] + ([ROOT / "grafana" / "Dockerfile"] if (ROOT / "grafana" / "Dockerfile").is_file() else [])


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_compose_builds_volumes_images_and_restarts(path: Path) -> None:
    compose = _load(path)
    assert str(compose["version"]).startswith("2."), "balena accepts compose file version 2.x"
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in compose["services"].items():
        if "build" in service:
            context, dockerfile = _dockerfile(path.parent, service)
            assert context.is_dir(), f"{path.name}: service {name} builds from missing folder {context}"
            assert dockerfile.is_file(), f"{path.name}: service {name} needs {dockerfile}"
        else:
            image = service["image"]
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), \
                f"{path.name}: service {name} image '{image}' must be pinned to a tag other than latest"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith(("/", ".")):
                used.add(source)
                assert source in declared, f"{path.name}: service {name} uses undeclared volume {source}"
        if name != "trainer":  # the trainer is a batch job, run with `compose run`
            assert service.get("restart") == "always", f"{path.name}: service {name} needs a restart policy"
            assert "healthcheck" in service, f"{path.name}: service {name} needs a healthcheck"
    assert used == declared, f"{path.name}: declared but unused volumes {declared - used}"


def test_the_device_fleet_runs_no_trainer() -> None:
    assert "trainer" not in _load(ROOT / "docker-compose.yml")["services"]
    assert "trainer" in _load(ROOT / "trainer" / "docker-compose.yml")["services"]


def test_labels_are_balena_features_each_with_a_comment() -> None:
    compose = _load(ROOT / "docker-compose.yml")
    lines = (ROOT / "docker-compose.yml").read_text().splitlines()
    for name, service in compose["services"].items():
        for label in service.get("labels", {}):
            assert label.startswith("io.balena.features."), f"service {name}: label {label} is not a balena feature"
            index = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{label}:"))
            assert lines[index - 1].strip().startswith("#"), f"label {label} needs a comment saying why, on the line above"
    assert set(compose["services"]["device"]["labels"]) == {"io.balena.features.balena-api", "io.balena.features.gpu"}


def test_every_device_variable_is_accepted_by_the_device_config() -> None:
    compose = _load(ROOT / "docker-compose.yml")
    env = {k: str(v) for k, v in compose["services"]["device"]["environment"].items()}
    config = load_config(environ=env)  # unknown SCOPEHIVE_* names or bad values raise ConfigError
    assert config.influx.url == "http://influxdb:8086" and str(config.data_dir) == "/data"

    balena = _load(ROOT / "balena.yml")
    fleet_vars = {k: str(v) for item in balena["data"]["applicationEnvironmentVariables"] for k, v in item.items()}
    load_config(environ=fleet_vars)
    assert fleet_vars["SCOPEHIVE_FLEET__ENABLED"] == "true"


def test_balena_yml_describes_the_fleet() -> None:
    balena = _load(ROOT / "balena.yml")
    assert balena["name"] == "ScopeHive" and balena["type"] == "sw.application"
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(balena["version"]))
    assert balena["data"]["supportedDeviceTypes"] == SUPPORTED
    assert balena["data"]["defaultDeviceType"] in SUPPORTED


def test_each_jetson_gets_its_own_dockerfile_and_nothing_else_does() -> None:
    per_type = {p.name.removeprefix("Dockerfile.") for p in (ROOT / "device").glob("Dockerfile.*")}
    assert per_type == set(JETSONS), "balena picks device/Dockerfile.<device type>; x86 uses device/Dockerfile"


@pytest.mark.parametrize("dockerfile", _all_dockerfiles(), ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfiles_pin_their_bases_and_hold_no_secrets(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert bases
    for base in bases:
        assert ":" in base and not base.endswith(":latest"), f"{dockerfile.name}: base {base} must be pinned"
    joined = text.replace("\\\n", " ")  # one line per instruction
    for line in re.findall(r"^(?:ENV|ARG)\s+.*$", joined, flags=re.MULTILINE):
        secret = re.search(r"\w*(PASSWORD|SECRET|TOKEN|API_KEY)\w*=(?!\s|$)\S+", line)
        assert secret is None, f"{dockerfile}: a secret value is baked into the image: {secret.group(0) if secret else ''}"


@pytest.mark.parametrize("dockerfile", sorted((ROOT / "device").glob("Dockerfile*")), ids=lambda p: p.name)
def test_device_images_install_what_the_device_extra_lists(dockerfile: Path) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {re.split(r"[<>=\[ ]", spec)[0].lower() for spec in project["dependencies"] + project["optional-dependencies"]["device"]}
    installed = {re.split(r"[<>=\[ ]", spec)[0].lower() for spec in re.findall(r'"([A-Za-z][\w.-]*(?:\[[\w,]+\])?[<>=][^"]*)"', dockerfile.read_text())}
    assert wanted <= installed, f"{dockerfile.name} misses {wanted - installed} from pyproject's device extra"
