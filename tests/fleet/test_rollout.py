"""Rollout and rollback through the real balena-sdk against the stand-in balena API on loopback
(balenaCloud can't be reached from here). Devices are played by a thread that answers on the
device tags the way device/fleet's watcher does, so the rollout logic is tested on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.fleet.fake_balena import FakeBalena
from trainer.fleet.balena_api import BalenaFleet, BalenaSettings, FleetError, connect
from trainer.fleet.history import HistoryStore
from trainer.fleet.rollout import RolloutPlan, rollback, rollout
from trainer.fleet.store import FleetStore

UUIDS = {"nano-1": "1" * 32, "nx-1": "2" * 32, "orin-1": "3" * 32, "pc-1": "4" * 32}
TYPES = {"nano-1": "jetson-nano", "nx-1": "jetson-xavier-nx-devkit", "orin-1": "jetson-agx-orin-devkit",
         "pc-1": "genericx86-64-ext"}


@dataclass
class World:
    api: FakeBalena
    fleet: BalenaFleet
    history: HistoryStore
    ids: dict[str, int]
    reject: dict[str, str]  # device name -> error it reports for any new model
    silent: set[str]  # devices that never answer

    def answer_once(self) -> None:
        """What each device's watcher does on a poll: switch to its assignment, or report an error."""
        for name, device_id in self.ids.items():
            wanted = self.api.tag(device_id, "scopehive.model")
            if name in self.silent or wanted is None or self.api.tag(device_id, "scopehive.model.running") == wanted:
                continue
            key, value = ("scopehive.model.error", f"{wanted} {self.reject[name]}") if name in self.reject \
                else ("scopehive.model.running", wanted)
            rows = [t for t in self.api.tables["device_tag"] if t["device"] == device_id and t["tag_key"] == key]
            if rows:
                rows[0]["value"] = value
            else:
                self.api.add("device_tag", device=device_id, tag_key=key, value=value)


@pytest.fixture
def world(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("SCOPEHIVE_S3_ACCESS_KEY", "fleet-test")
    monkeypatch.setenv("SCOPEHIVE_S3_SECRET_KEY", "fleet-test-secret")
    api = FakeBalena()
    fleet_id = api.add_fleet("Lab/Hive")
    ids = {name: api.add_device(fleet_id, uuid, name, TYPES[name]) for name, uuid in UUIDS.items()}
    for name in ids:
        api.add("device_tag", device=ids[name], tag_key="scopehive.model.running", value="cells:1")
    url = api.start()
    fleet = BalenaFleet(connect(BalenaSettings(api_url=url, token=api.user_token)), "lab/hive")
    store = FleetStore.from_url(f"s3://rollout-{id(api) % 100000}?endpoint={s3_endpoint}&secure=0")
    yield World(api, fleet, HistoryStore(store, "lab/hive"), ids, {}, set())
    api.stop()


def _devices_answer(world: World) -> None:
    """Sleep replacement: while the rollout waits, the devices do their part."""
    world.answer_once()


def _plan(**kwargs: object) -> RolloutPlan:
    return RolloutPlan.model_validate({"model_ref": "cells:2", "wait_s": 5, "poll_s": 0.01, **kwargs})


def test_rollout_switches_everyone_and_rollback_restores_previous(world: World) -> None:
    result = rollout(world.fleet, world.history, _plan(canary=2), sleep=lambda _: _devices_answer(world))

    assert result.ok, result.summary()
    assert [(name, len(stage.devices)) for name, stage in result.stages] == [("canary", 2), ("rest", 2)]
    assert {world.api.tag(i, "scopehive.model.running") for i in world.ids.values()} == {"cells:2"}
    assert world.history.load().rollouts[-1].state == "done"

    back = rollback(world.fleet, world.history, _plan(), sleep=lambda _: _devices_answer(world))

    assert back.ok, back.summary()
    assert {world.api.tag(i, "scopehive.model") for i in world.ids.values()} == {"cells:1"}
    assert {world.api.tag(i, "scopehive.model.running") for i in world.ids.values()} == {"cells:1"}
    assert world.history.load().rollouts[-1].state == "rolled_back"


def test_a_rejecting_canary_stops_the_rollout_before_the_rest(world: World) -> None:
    world.reject["nano-1"] = "model.onnx does not match its sha256 in bundle.json"

    result = rollout(world.fleet, world.history, _plan(canary=1), sleep=lambda _: _devices_answer(world))

    assert not result.ok
    assert [name for name, _ in result.stages] == ["canary"]
    assert "rejected it: model.onnx does not match its sha256" in result.summary()
    untouched = [n for n in world.ids if n != "nano-1"]
    assert all(world.api.tag(world.ids[n], "scopehive.model") is None for n in untouched)
    assert world.history.load().rollouts[-1].state == "failed"


def test_a_silent_device_times_out_and_offline_devices_are_not_waited_for(world: World) -> None:
    world.silent.add("pc-1")
    for row in world.api.tables["device"]:
        if row["device_name"] == "orin-1":
            row["is_online"] = False

    result = rollout(world.fleet, world.history, _plan(canary=0, wait_s=0.3), sleep=lambda _: _devices_answer(world))

    stage = result.stages[0][1]
    assert stage.pending == [UUIDS["pc-1"]]
    assert stage.offline == [UUIDS["orin-1"]]
    assert "did not answer in time" in result.summary() and "is offline" in result.summary()


def test_device_type_and_uuid_selection(world: World) -> None:
    result = rollout(world.fleet, world.history, _plan(device_type="jetson-nano", canary=0),
                     sleep=lambda _: _devices_answer(world))
    assert result.stages[0][1].devices == [UUIDS["nano-1"]]

    with pytest.raises(FleetError, match="deadbeef are not in fleet 'lab/hive'"):
        rollout(world.fleet, world.history, _plan(devices=["deadbeef"]))
    with pytest.raises(FleetError, match="of type 'raspberrypi4-64': nothing to roll out"):
        rollout(world.fleet, world.history, _plan(device_type="raspberrypi4-64"))


def test_fleet_default_sets_the_fleet_variable_only_when_asked(world: World) -> None:
    rollout(world.fleet, world.history, _plan(canary=0), sleep=lambda _: _devices_answer(world))
    assert world.api.tables["application_environment_variable"] == []

    rollout(world.fleet, world.history, _plan(model_ref="cells:3", canary=0, fleet_default=True),
            sleep=lambda _: _devices_answer(world))
    [variable] = world.api.tables["application_environment_variable"]
    assert (variable["name"], variable["value"]) == ("SCOPEHIVE_FLEET__MODEL_REF", "cells:3")


def test_two_rollbacks_walk_back_two_rollouts_and_a_third_says_there_is_nothing(world: World) -> None:
    for ref in ("cells:2", "cells:3"):
        rollout(world.fleet, world.history, _plan(model_ref=ref, canary=0), sleep=lambda _: _devices_answer(world))

    rollback(world.fleet, world.history, _plan(), sleep=lambda _: _devices_answer(world))
    assert {world.api.tag(i, "scopehive.model") for i in world.ids.values()} == {"cells:2"}
    rollback(world.fleet, world.history, _plan(), sleep=lambda _: _devices_answer(world))
    assert {world.api.tag(i, "scopehive.model") for i in world.ids.values()} == {"cells:1"}
    with pytest.raises(FleetError, match="no rollout to undo"):
        rollback(world.fleet, world.history, _plan())


def test_a_bad_token_gets_a_message_that_says_what_to_do(world: World) -> None:
    url = world.fleet.sdk.settings.get("api_endpoint")
    fleet = BalenaFleet(connect(BalenaSettings(api_url=str(url), token="wrong")), "lab/hive")
    with pytest.raises(FleetError, match="refused the token \\(set BALENA_API_KEY"):
        fleet.devices()
