"""The device's typed configuration, read in ONE place from a YAML file, the environment and CLI flags.

Precedence: CLI flags > environment (`SCOPEHIVE_<FIELD>`, `SCOPEHIVE_<SECTION>__<FIELD>`, the way
balena device variables arrive) > YAML file > defaults. Unknown keys and unknown `SCOPEHIVE_*`
variables are errors that name the culprit, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from device.drift.settings import DriftSettings
from device.experiments.grafana_marks import GrafanaMarkSettings
from device.experiments.quality import QualitySettings
from device.fleet.settings import FleetSettings
from device.hive.settings import HiveSettings
from device.inbox.settings import InboxSettings
from device.inference.backend import BackendKey, check_backend_key, check_local_backend_key
from device.metrics.points import name_problem
from device.metrics.settings import InfluxSettings, OutboxSettings
from device.models.settings import ModelSettings, parse_models
from device.sources.settings import CaptureSettings
from device.tracking.settings import TrackingSettings
from device.training_client import TrainerSettings
from device.web_settings import PanelSettings, WebSettings

ENV_PREFIX = "SCOPEHIVE_"
# Variables the test harness and service scripts own: never device settings, never errors.
_HARNESS_PREFIXES = ("SCOPEHIVE_TEST_",)
_HARNESS_NAMES = frozenset({"SCOPEHIVE_VAR"})


class ConfigError(ValueError):
    """Configuration that cannot be used; the message names the file, variable or flag and the field."""


class DeviceConfig(BaseModel):
    """Everything one device needs to run; see device/demo.yaml for a commented example."""

    model_config = ConfigDict(extra="forbid")

    device_name: str = Field(default_factory=socket.gethostname, description="Name in every metric's `device` tag")
    project: str = Field("default", min_length=1, description="Project tag of every metric")
    source: str = Field("synthetic://", description="Frame source URI: synthetic://?seed=&density=, /dev/videoN, index, file, rtsp://, folder or glob, gst://pipeline")
    model: str | None = Field(None, description="Model bundle (folder or .zip); empty = stream without detection")
    backend: BackendKey = Field("auto", description="Inference backend; auto = TensorRT on NVIDIA, else the faster CPU backend; triton = a hive server (see hive)")
    score_threshold: float | None = Field(None, ge=0, le=1, description="Override the bundle's default score threshold")
    um_per_pixel: float | None = Field(None, gt=0, description="Default calibration (no experiment profile active); enables the µm fields of class_stats")
    data_dir: Path = Field(Path("var/device"), description="Persistent folder: outbox, engine cache, unpacked bundles")
    host: str = Field("0.0.0.0", description="Address the web server listens on")
    port: int = Field(8080, ge=0, le=65535, description="Port of stream, stats and panel (0 = no web server)")
    max_frames: int | None = Field(None, ge=0, description="Stop after this many frames (tests, benchmarks); empty = run forever")
    status_interval_s: float = Field(10.0, gt=0, description="Heartbeat (device_status) period in seconds")
    jpeg_quality: int = Field(80, ge=10, le=100, description="JPEG quality of stream and snapshot")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Logging verbosity")
    influx: InfluxSettings = Field(default_factory=InfluxSettings, description="Metrics destination")  # type: ignore[arg-type]
    outbox: OutboxSettings = Field(default_factory=OutboxSettings, description="Durable local metric store")  # type: ignore[arg-type]
    capture: CaptureSettings = Field(default_factory=CaptureSettings, description="Source reconnection")  # type: ignore[arg-type]
    panel: PanelSettings = Field(default_factory=PanelSettings, description="Web panel (login, uploads, storage)")  # type: ignore[arg-type]
    web: WebSettings = Field(default_factory=WebSettings, description="Web server: worker pool, stream/SSE client caps, access log")  # type: ignore[arg-type]
    fleet: FleetSettings = Field(default_factory=FleetSettings, description="Follow the model balena assigns (fleet rollout)")  # type: ignore[arg-type]
    quality: QualitySettings = Field(default_factory=QualitySettings, description="Frame quality gates (focus, exposure)")  # type: ignore[arg-type]
    grafana: GrafanaMarkSettings = Field(default_factory=GrafanaMarkSettings, description="Grafana annotations of experiment start/stop")  # type: ignore[arg-type]
    tracking: TrackingSettings = Field(default_factory=TrackingSettings, description="Tracks, unique counts, motility, crossing line, concentration")  # type: ignore[arg-type]
    drift: DriftSettings = Field(default_factory=DriftSettings, description="Drift alarms: live distributions against the model's baseline (docs/drift.md)")  # type: ignore[arg-type]
    inbox: InboxSettings = Field(default_factory=InboxSettings, description="Review inbox: frames worth a human look, bounded (docs/inbox.md)")  # type: ignore[arg-type]
    models: list[ModelSettings] = Field(default_factory=list, description="More models on the same feed, beside `model` (JSON list in the environment)")
    max_models_beside: int = Field(4, ge=0, le=32, description="Most models beside the main one (each costs its memory; the same bundle twice shares one session)")
    hive: HiveSettings = Field(default_factory=HiveSettings, description="Remote inference on hive GPU servers (backend: triton)")  # type: ignore[arg-type]
    trainer: TrainerSettings = Field(default_factory=TrainerSettings, description="The trainer service the panel's Train page uses")  # type: ignore[arg-type]

    @field_validator("device_name", "project")
    @classmethod
    def _tag_value(cls, value: str, info: Any) -> str:
        """Tags of every point: a control character (a newline) would stop every InfluxDB write."""
        text = value.strip()
        problem = name_problem(text)
        if problem or not text:
            raise ValueError(f"{info.field_name} {text[:40]!r} {problem or 'is empty'}")
        return text

    @field_validator("models", mode="before")
    @classmethod
    def _models_text(cls, value: object) -> object:
        return parse_models(value)

    @model_validator(mode="after")
    def _backend_keys(self) -> DeviceConfig:
        """`models[].backend` and `hive.local_backend` name backends of the registry, as `backend` does."""
        for model in self.models:
            try:
                check_backend_key(model.backend)
            except ValueError as exc:
                raise ValueError(f"models[{model.name}].backend: {exc}") from None
        try:
            check_local_backend_key(self.hive.local_backend)
        except ValueError as exc:
            raise ValueError(f"hive.local_backend: {exc}") from None
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> DeviceConfig:
        names = ["main"] + [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique and not 'main' (the `model` setting): {names[1:]}")
        if len(self.models) > self.max_models_beside:
            raise ValueError(f"{len(self.models)} models beside the main one, but max_models_beside is {self.max_models_beside}: "
                             "raise it (each model costs its memory) or list fewer")
        uses_hive = self.backend == "triton" or any(m.backend == "triton" for m in self.models)
        if uses_hive and not self.hive.endpoints:
            raise ValueError("backend 'triton' needs hive.endpoints (e.g. SCOPEHIVE_HIVE__ENDPOINTS=http://hive-gpu-1:8000)")
        return self


def _sections() -> dict[str, type[BaseModel]]:
    out: dict[str, type[BaseModel]] = {}
    for name, info in DeviceConfig.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out[name] = annotation
    return out


def _secret_env_names() -> set[str]:
    """Variables named by `*_env` settings (e.g. the panel password): read by their owner, not parsed here."""
    names = set()
    for section, model in _sections().items():
        for field, info in model.model_fields.items():
            if field.endswith("_env") and isinstance(info.default, str) and info.default.startswith(ENV_PREFIX):
                names.add(info.default)
        del section
    return names


def env_var_names() -> set[str]:
    """Every environment variable name the device accepts (balena.yml is checked against this)."""
    names: set[str] = set()
    sections = _sections()
    for field in DeviceConfig.model_fields:
        if field in sections:
            names.update(f"{ENV_PREFIX}{field.upper()}__{sub.upper()}" for sub in sections[field].model_fields)
        else:
            names.add(f"{ENV_PREFIX}{field.upper()}")
    return names | _secret_env_names()


def _env_layer(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    accepted = env_var_names()
    secrets = _secret_env_names()
    layer: dict[str, Any] = {}
    origins: dict[tuple[str, ...], str] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _HARNESS_NAMES or name.startswith(_HARNESS_PREFIXES):
            continue
        if name not in accepted:
            raise ConfigError(
                f"unknown environment variable {name}: the device accepts {', '.join(sorted(accepted - secrets))} "
                "(nested settings use a double underscore, e.g. SCOPEHIVE_INFLUX__URL)"
            )
        if name in secrets:
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX):].split("__"))
        _put(layer, path, value)
        origins[path] = f"environment variable {name}"
    return layer, origins


def _put(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _file_layer(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist: check the --config path") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings, not {type(data).__name__}")
    return data


def _paths(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.extend(_paths(value, (*prefix, key)))
        else:
            out.append((*prefix, key))
    return out


def load_config(
    file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    cli: Mapping[str, Any] | None = None,
) -> DeviceConfig:
    """Merge file, environment and CLI layers and validate once; raises ConfigError saying what to fix."""
    origins: dict[tuple[str, ...], str] = {}
    merged: dict[str, Any] = {}
    if file:
        layer = _file_layer(Path(file))
        origins.update({p: f"config file {file}" for p in _paths(layer)})
        merged = _merge(merged, layer)
    env_layer, env_origins = _env_layer(os.environ if environ is None else environ)
    origins.update(env_origins)
    merged = _merge(merged, env_layer)
    cli_layer: dict[str, Any] = {}
    for dotted, value in (cli or {}).items():
        if value is not None:
            path = tuple(dotted.split("."))
            _put(cli_layer, path, value)
            origins[path] = f"command-line flag --{dotted.replace('.', '-').replace('_', '-')}"
    merged = _merge(merged, cli_layer)
    try:
        return DeviceConfig.model_validate(merged)
    except ValidationError as exc:
        problems = []
        for error in exc.errors()[:8]:
            loc = tuple(str(p) for p in error["loc"])
            where = origins.get(loc, "defaults")
            problems.append(f"'{'.'.join(loc)}' ({where}): {error['msg']}")
        raise ConfigError("invalid device configuration: " + "; ".join(problems)) from exc
