"""The model's self-checks changed while the device runs (device/monitoring.py and the panel's
/panel/api/model-checks): a valid change reaches the running drift stage and inbox; a refused one
says which setting and why, and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from device.drift.stage import DriftStage
from device.facade import DeviceFacade
from device.monitoring import MonitoringError
from device.runtime import Runtime
from tests.device.panel.conftest import PASSWORD, Auth, make_app


def _drift_stages(runtime: Runtime) -> list[DriftStage]:
    return [s for p in runtime.parts.feed.pipelines for s in p.stages if isinstance(s, DriftStage)]


def test_a_change_reaches_the_running_stages_and_the_inbox(running: Runtime) -> None:
    facade = DeviceFacade(running.parts)
    inbox = running.parts.inbox
    assert inbox is not None
    answer = facade.configure_model_checks({"drift": {"window_frames": 50, "confirm_frames": 5}, "inbox": {"spot_share": 0.1}})
    assert answer["drift"]["window_frames"] == 50 and answer["inbox"]["spot_share"] == 0.1
    assert all(s.settings.window_frames == 50 for s in _drift_stages(running)) and _drift_stages(running)
    assert inbox.settings.spot_share == 0.1 and running.parts.config.drift.window_frames == 50  # models started later too


@pytest.mark.parametrize(("changes", "message"), [
    ({"drift": {"window_frames": 5}}, "drift: Window frames must be at least 20"),
    ({"drift": {"window_frames": "300"}}, "must be a number"),                   # strict: text is not a number
    ({"drift": {"confirm_frames": 500}}, "must not exceed window_frames"),
    ({"inbox": {"spot_share": 0.9}}, "inbox: Spot share must be at most 0.2"),
    ({"inbox": {"max_frame": 10}}, "is not a setting here"),                    # a typo
    ({"alarms": {}}, "'alarms' is not a section here"),
    ({"drift": 300}, "'drift' must be an object of settings"),
    ({"drift": {"window_frames": 100}, "inbox": {"max_mb": 0}}, "inbox: Max (MB) must be at least 1"),  # one bad: none applied
])
def test_a_refused_change_says_why_and_changes_nothing(running: Runtime, changes: dict[str, object], message: str) -> None:
    facade = DeviceFacade(running.parts)
    before = facade.model_checks()
    with pytest.raises(MonitoringError, match=message.replace("(", r"\(").replace(")", r"\)")):
        facade.configure_model_checks(changes)
    assert facade.model_checks() == before and all(s.settings.window_frames == 300 for s in _drift_stages(running))


def test_smaller_caps_evict_at_once(running: Runtime) -> None:
    import numpy as np

    inbox = running.parts.inbox
    assert inbox is not None
    for i in range(4):
        inbox.store.add(np.full((8, 8), i * 40, np.uint8), {"created": float(i), "reasons": [{"kind": "spot_check", "text": ""}]})
    kept = len(inbox.store.items())
    DeviceFacade(running.parts).configure_model_checks({"inbox": {"max_frames": 2}})
    assert len(inbox.store.items()) == 2 < kept and inbox.store.evicted >= kept - 2


def test_the_panel_api_refuses_with_a_400_and_applies_a_good_change(running: Runtime, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPEHIVE_PANEL_PASSWORD", PASSWORD)
    client = make_app(tmp_path / "panel", DeviceFacade(running.parts)).test_client()
    auth = Auth(client)
    auth.login()
    assert client.get("/panel/api/model-checks").get_json()["drift"]["psi"] == 0.25
    bad = auth.json("POST", "/panel/api/model-checks", {"drift": {"psi": 50}})
    assert bad.status_code == 400 and "nothing was changed" in bad.get_json()["error"]  # type: ignore[attr-defined]
    good = auth.json("POST", "/panel/api/model-checks", {"drift": {"psi": 0.3}})
    assert good.status_code == 200 and good.get_json()["drift"]["psi"] == 0.3  # type: ignore[attr-defined]
    assert all(s.settings.psi == 0.3 for s in _drift_stages(running))


def test_new_settings_end_a_raised_alarm_with_an_event() -> None:
    from device.drift.monitor import DRIFT, DriftState
    from device.drift.settings import DriftSettings
    from device.drift.stage import CLEARED

    said: list[tuple[str, str, dict[str, str]]] = []
    stage = DriftStage(DriftSettings(), lambda kind, message, tags: said.append((kind, message, tags)))
    stage.state = DriftState(DRIFT, "validation", 300, (), {})
    stage.configure(DriftSettings(window_frames=100))
    assert not stage.state.alarm and [k for k, _, _ in said] == [CLEARED] and "window restarts" in said[0][1]
    stage.configure(DriftSettings())
    assert len(said) == 1  # no alarm, nothing to clear


def test_changes_are_kept_for_the_next_start_and_a_broken_file_is_ignored(running: Runtime) -> None:
    from device.monitoring import SAVED, apply_saved

    config = running.parts.config
    DeviceFacade(running.parts).configure_model_checks({"drift": {"psi": 0.4}, "inbox": {"max_frames": 50}})
    fresh = config.model_copy(update={"drift": type(config.drift)(), "inbox": type(config.inbox)()})
    restarted = apply_saved(fresh)
    assert (restarted.drift.psi, restarted.inbox.max_frames) == (0.4, 50)
    (config.data_dir / SAVED).write_text('{"drift": {"psi": 99}}')  # out of range (edited by hand)
    assert apply_saved(fresh).drift.psi == 0.25


def test_the_review_page_form_saves_all_or_nothing(running: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCOPEHIVE_PANEL_PASSWORD", PASSWORD)
    client = make_app(tmp_path / "panel", DeviceFacade(running.parts)).test_client()
    auth = Auth(client)
    auth.login()
    auth.project()
    page = client.get("/panel/inbox").get_data(as_text=True)
    assert 'name="drift.window_frames" value="300"' in page and 'name="inbox.seed"' not in page
    form = {f"{s}.{k}": str(v) for s, section in DeviceFacade(running.parts).model_checks().items() for k, v in section.items()
            if not isinstance(v, bool) and v is not None}
    form.update({"drift.enabled": "on", "inbox.enabled": "on"})
    refused = auth.post("/panel/inbox/settings", data={**form, "drift.window_frames": "5", "inbox.spot_share": "0.1"},
                        follow_redirects=True)
    assert "Window frames must be at least 20; nothing was changed" in refused.get_data(as_text=True)  # type: ignore[attr-defined]
    assert running.parts.config.inbox.spot_share == 0.005  # the good field of a refused form is not applied either
    typo = auth.post("/panel/inbox/settings", data={**form, "drift.psi": "a lot"}, follow_redirects=True)
    assert "“a lot” is not a number; nothing was changed" in typo.get_data(as_text=True)  # type: ignore[attr-defined]
    saved = auth.post("/panel/inbox/settings", data={**form, "inbox.spot_share": "0.1"}, follow_redirects=True)
    assert "Saved" in saved.get_data(as_text=True) and running.parts.inbox.settings.spot_share == 0.1  # type: ignore[attr-defined, union-attr]


def test_a_change_that_cannot_be_kept_is_refused_and_changes_nothing(running: Runtime) -> None:
    facade = DeviceFacade(running.parts)
    before = facade.model_checks()
    blocker = running.parts.config.data_dir / "model_checks.json"
    blocker.mkdir()  # a folder where the file goes: the write fails as on a read-only disk
    with pytest.raises(MonitoringError, match="cannot be kept"):
        facade.configure_model_checks({"drift": {"psi": 0.5}})
    assert facade.model_checks() == before and all(s.settings.psi == 0.25 for s in _drift_stages(running))
