"""One real device process of the simulated fleet: the `python -m device run` steps plus the fleet
watcher, configured entirely from the environment the way balena configures a container.

device/app.py does not start the watcher yet (and device/config.py has no `fleet` section yet),
so this runs the same flat list of steps as device.app.run_device with `start_watcher` added;
the fleet settings come from config.fleet once that section exists, else from SCOPEHIVE_FLEET__*.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType

from device.config import DeviceConfig, load_config
from device.fleet.settings import FleetSettings
from device.fleet.watcher import start_watcher
from device.runtime import Runtime

_PREFIX = "SCOPEHIVE_FLEET__"


def _settings() -> tuple[DeviceConfig, FleetSettings]:
    if "fleet" in DeviceConfig.model_fields:
        config = load_config()
        return config, config.fleet  # type: ignore[attr-defined]
    fleet_env = {k[len(_PREFIX):].lower(): v for k, v in os.environ.items() if k.startswith(_PREFIX)}
    rest = {k: v for k, v in os.environ.items() if not k.startswith(_PREFIX)}
    return load_config(environ=rest), FleetSettings.model_validate(fleet_env)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    config, fleet = _settings()
    runtime = Runtime(config)
    runtime.init_outbox()
    runtime.init_source()
    runtime.init_model()
    runtime.start_sender()
    runtime.start_capture()
    watcher = start_watcher(fleet, runtime, config.data_dir)

    def _stop(signum: int, frame: FrameType | None) -> None:
        runtime.stop()

    signal.signal(signal.SIGTERM, _stop)
    try:
        runtime.run(config.max_frames)
    finally:
        if watcher is not None:
            watcher.stop()
        runtime.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
