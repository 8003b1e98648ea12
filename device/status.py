"""The device_status heartbeat: what runs, how healthy it is, and the temperatures where readable."""

from __future__ import annotations

import glob
from pathlib import Path


def _read_milli_celsius(path: str) -> float | None:
    try:
        value = float(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None
    return value / 1000.0 if value > 200 else value


def temperatures() -> dict[str, float]:
    """cpu_temp_c / gpu_temp_c from /sys thermal zones (Jetson names them CPU-therm, GPU-therm)."""
    out: dict[str, float] = {}
    for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone*")):
        try:
            kind = Path(zone, "type").read_text().strip().lower()
        except OSError:
            continue
        value = _read_milli_celsius(f"{zone}/temp")
        if value is None:
            continue
        if "gpu" in kind:
            out.setdefault("gpu_temp_c", value)
        elif any(word in kind for word in ("cpu", "x86_pkg", "soc", "acpitz")):
            out.setdefault("cpu_temp_c", value)
    return out
