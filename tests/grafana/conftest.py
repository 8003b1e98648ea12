"""A session-wide InfluxDB database holding what two microscopes wrote, for the dashboard query tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from tests.conftest import INFLUX_V1, Influx

PROJECT = "grafana-test"
DEVICES = ("scope-a", "scope-b")
CLASSES = ("cell", "crystal", "debris")


@dataclass(frozen=True)
class Fleet:
    """What the dashboards should find: the database, its project, devices and classes."""

    influx: Influx
    project: str
    devices: tuple[str, ...]
    classes: tuple[str, ...]
    model: str
    model_version: str


def _line(measurement: str, tags: dict[str, str], fields: dict[str, object], ts_us: int) -> str:
    tag_text = "".join(f",{k}={v}" for k, v in sorted(tags.items()))

    def value(v: object) -> str:
        if isinstance(v, str):
            return f'"{v}"'
        return f"{v}i" if isinstance(v, int) else repr(v)

    return f"{measurement}{tag_text} {','.join(f'{k}={value(v)}' for k, v in fields.items())} {ts_us}"


def _schema_points(device: str, frames: int, end_us: int) -> list[str]:
    """Points exactly as docs/metrics.md describes them (stand-in until the device loop writes them)."""
    lines = []
    base = {"device": device, "project": PROJECT}
    model = {**base, "model": "peaks", "model_version": "1.0.0"}
    for i in range(frames):
        ts = end_us - (frames - i) * 100_000
        counts = [(i + k) % 4 for k in range(len(CLASSES))]
        lines.append(_line("frame", model, {"count": sum(counts), "score_mean": 0.6 + (i % 5) / 20, "score_min": 0.5, "fps": 10.0,
                                            "inference_ms": 20.0 + i % 3, "latency_ms": 40.0 + i % 7, "dropped_frames": i % 2}, ts))
        for name, count in zip(CLASSES, counts, strict=True):
            fields: dict[str, object] = {"count": count}
            if count:
                for prefix, px, um in (("width", 10.0 + i % 9, "um"), ("height", 8.0 + i % 5, "um"), ("area", 80.0 + i % 11, "um2")):
                    for stat, factor in (("mean", 1.0), ("median", 1.0), ("p90", 1.3)):
                        fields[f"{prefix}_px_{stat}"] = px * factor
                        fields[f"{prefix}_{um}_{stat}"] = px * factor * 0.5
                fields["score_mean"] = 0.5 + (i % 10) / 25
            lines.append(_line("class_stats", {**model, "class": name}, fields, ts))
        if i % 10 == 0:
            lines.append(_line("device_status", base, {"model": "peaks", "model_version": "1.0.0", "backend": "onnx", "source_state": "ok",
                                                      "fps": 10.0, "outbox_depth": i % 3, "outbox_dropped": 0, "uptime_s": i / 10,
                                                      "cpu_temp_c": 45.0, "gpu_temp_c": 40.0}, ts))
    lines.append(_line("device_event", {**base, "kind": "started"}, {"message": f"{device} started"}, end_us - frames * 100_000))
    return lines


@pytest.fixture(scope="session")
def fleet_metrics() -> Iterator[Fleet]:
    try:
        requests.get(f"{INFLUX_V1}/ping", timeout=2).raise_for_status()
    except requests.RequestException as exc:
        pytest.fail(f"InfluxDB is not running on loopback ({exc}): run the tests with `make test`")
    name = f"test_grafana_{uuid.uuid4().hex[:10]}"
    requests.post(f"{INFLUX_V1}/query", data={"q": f'CREATE DATABASE "{name}"'}, timeout=10).raise_for_status()
    end_us = int(time.time() * 1e6)
    body = "\n".join(line for device in DEVICES for line in _schema_points(device, 200, end_us))
    requests.post(f"{INFLUX_V1}/write", params={"db": name, "precision": "u"}, data=body.encode(), timeout=30).raise_for_status()
    yield Fleet(Influx(name), PROJECT, DEVICES, CLASSES, "peaks", "1.0.0")
    requests.post(f"{INFLUX_V1}/query", data={"q": f'DROP DATABASE "{name}"'}, timeout=10)
