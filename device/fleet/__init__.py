"""Fleet mode: the device follows the model balena assigns it and shares the engines it builds.

The device's wiring needs one call: `start_watcher(config.fleet, runtime, config.data_dir)`.
"""

from device.fleet.settings import FleetSettings

__all__ = ["FleetSettings"]
