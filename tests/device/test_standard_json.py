"""Every JSON the device writes is standard (no NaN/Infinity tokens: a browser's JSON.parse, Grafana
and jq refuse them), and hostile JSON coming in is refused as bad JSON, never a 500."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from device import jsonsafe
from device.config import DeviceConfig
from device.live import sse_events
from device.web import create_app
from tests.device.panel.helpers import SyntheticRuntime

TOKEN = "standard-json-token-123"


def strict_parse(text: str) -> Any:
    """What a standards-only reader does: NaN, Infinity and -Infinity are errors."""
    def refuse(token: str) -> Any:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


class OddRuntime(SyntheticRuntime):
    """Measurements that went wrong: NaN latency, an infinite rate."""

    def health(self) -> dict[str, Any]:
        return {"ok": True, "camera": {"state": "ok", "fps": float("inf")}, "latency_ms": float("nan"),
                "history": [1.5, float("-inf")]}

    def live_stats(self) -> dict[str, Any]:
        return {"fps": float("nan"), "count": 3, "per_ul": float("inf")}


def test_non_finite_numbers_are_written_as_null_on_healthz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPEHIVE_STREAM_TOKEN", TOKEN)
    app = create_app(DeviceConfig(data_dir=tmp_path), OddRuntime(tmp_path / "cache"), with_panel=False)  # type: ignore[arg-type]
    response = app.test_client().get("/healthz", headers={"Authorization": f"Bearer {TOKEN}"})
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "NaN" not in text and "Infinity" not in text
    body = strict_parse(text)
    assert body["camera"] == {"state": "ok", "fps": None} and body["latency_ms"] is None and body["history"] == [1.5, None]


def test_live_statistics_events_are_standard_json(tmp_path: Path) -> None:
    (event,) = list(sse_events(OddRuntime(tmp_path), 0.1, limit=1))  # type: ignore[arg-type]
    assert event.startswith("data: ") and strict_parse(event[6:]) == {"fps": None, "count": 3, "per_ul": None}


@pytest.mark.parametrize(("text", "message"), [
    ("NaN", "'NaN' is not a JSON value"),
    ('{"flow_rate_ul_min": Infinity}', "'Infinity' is not a JSON value"),
    ("[-Infinity]", "'-Infinity' is not a JSON value"),
    ('{"flow_rate_ul_min": 1e309}', "too large for a 64-bit float"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"a": ' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
    ("1" * 5000, "not valid JSON"),
    ("{'a': 1}", "not valid JSON"),
])
def test_hostile_json_is_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(jsonsafe.JSONInputError, match=message):
        jsonsafe.loads(text)


def test_standard_json_still_reads_and_numbers_stay_numbers() -> None:
    assert jsonsafe.loads('{"a": [-2, 1.5e308, -0.5, 1e-320], "b": null}') == {"a": [-2, 1.5e308, -0.5, 1e-320], "b": None}
    assert jsonsafe.loads("[" * 200 + "]" * 200) is not None
    assert jsonsafe.dumps({"x": [float("nan"), -1.0, 2]}) == '{"x": [null, -1.0, 2]}'
