"""The few balenaCloud calls a rollout needs, through balena-sdk, behind one small class.

Why tags and not variables: changing a fleet or device environment/service variable makes the
balena supervisor restart the service container, which would drop the microscope's stream. A
device tag changes nothing on the device; the device's own watcher (device/fleet) polls its tags
and switches the model in-process. Devices answer by writing `scopehive.model.running` (or
`scopehive.model.error`) on themselves: a device API key may read and write its own tags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ASSIGN_TAG = "scopehive.model"
RUNNING_TAG = "scopehive.model.running"
ERROR_TAG = "scopehive.model.error"
FLEET_DEFAULT_VAR = "SCOPEHIVE_FLEET__MODEL_REF"


class FleetError(RuntimeError):
    """A fleet operation that could not be done; the message says what to check."""


class BalenaSettings(BaseModel):
    """How to reach the balena API. Token from the environment (BALENA_API_KEY), never a file."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("balena-cloud.com", description="balena_host of the SDK (openBalena: your domain)")
    api_url: str = Field(
        "", description="Full API URL when it is not https://api.<host>/ (openBalena behind a proxy, tests)"
    )
    token: str = Field("", description="API key or session token; empty = BALENA_API_KEY from the environment")


@dataclass(frozen=True)
class FleetDevice:
    id: int
    uuid: str
    name: str
    device_type: str
    is_online: bool


def connect(settings: BalenaSettings) -> Any:
    """A balena-sdk client that keeps nothing on disk (no ~/.balena) and talks to `settings`."""
    import balena
    from balena.auth import Auth
    from balena.models import Models
    from balena.pine import PineClient

    sdk = balena.Balena({"balena_host": settings.host, "data_directory": False})
    if settings.api_url:
        # The SDK derives https://api.<host>/ when it is built; for any other URL re-point the
        # settings and rebuild the pieces that captured the old one (what Balena.__init__ does).
        base = settings.api_url.rstrip("/") + "/"
        sdk.settings.set("api_endpoint", base)
        sdk.settings.set("pine_endpoint", base + str(sdk.settings.get("api_version")) + "/")
        sdk.pine = PineClient(sdk.settings, balena.__version__)
        sdk.auth = Auth(sdk.pine, sdk.settings)
        sdk.models = Models(sdk.pine, sdk.settings)
    if settings.token:
        sdk.auth.login_with_token(settings.token)
    return sdk


class BalenaFleet:
    """Devices of one fleet, their model tags, and the fleet-wide default model variable."""

    def __init__(self, sdk: Any, fleet: str) -> None:
        self.sdk = sdk
        self.fleet = fleet

    def devices(self, device_type: str | None = None, uuids: list[str] | None = None) -> list[FleetDevice]:
        """The fleet's devices, optionally only one device type or the given uuids (prefixes ok)."""
        options = {
            "$select": ["id", "uuid", "device_name", "is_online"],
            "$expand": {"is_of__device_type": {"$select": "slug"}},
        }
        try:
            rows = self.sdk.models.device.get_all_by_application(self.fleet, options)
        except Exception as exc:
            raise FleetError(_explain(exc, f"list the devices of fleet '{self.fleet}'")) from exc
        found = [_device(row) for row in rows]
        if device_type:
            found = [d for d in found if d.device_type == device_type]
        if uuids:
            wanted = [u.lower() for u in uuids]
            missing = [u for u in wanted if not any(d.uuid.startswith(u) for d in found)]
            if missing:
                raise FleetError(
                    f"device(s) {', '.join(missing)} are not in fleet '{self.fleet}'"
                    + (f" with device type '{device_type}'" if device_type else "")
                    + ": check the uuids with `balena devices --fleet " + self.fleet + "`"
                )
            found = [d for d in found if any(d.uuid.startswith(u) for u in wanted)]
        return found

    def tags(self, device: FleetDevice) -> dict[str, str]:
        try:
            rows = self.sdk.models.device.tags.get_all_by_device(device.id)
        except Exception as exc:
            raise FleetError(_explain(exc, f"read the tags of device {device.name} ({device.uuid[:7]})")) from exc
        return {str(row["tag_key"]): str(row["value"]) for row in rows}

    def assign(self, device: FleetDevice, model_ref: str) -> None:
        """Point one device at `name:version`; the device switches by itself, without a restart."""
        try:
            self.sdk.models.device.tags.set(device.id, ASSIGN_TAG, model_ref)
        except Exception as exc:
            raise FleetError(_explain(exc, f"tag device {device.name} ({device.uuid[:7]})")) from exc

    def unassign(self, device: FleetDevice) -> None:
        """Remove the assignment: the device goes back to the fleet default or its own config."""
        try:
            self.sdk.models.device.tags.remove(device.id, ASSIGN_TAG)
        except Exception as exc:
            raise FleetError(_explain(exc, f"untag device {device.name} ({device.uuid[:7]})")) from exc

    def set_fleet_default(self, model_ref: str) -> None:
        """The model new devices start with. Changing it restarts every device's service once."""
        try:
            self.sdk.models.application.env_var.set(self.fleet, FLEET_DEFAULT_VAR, model_ref)
        except Exception as exc:
            raise FleetError(_explain(exc, f"set {FLEET_DEFAULT_VAR} on fleet '{self.fleet}'")) from exc


def _device(row: dict[str, Any]) -> FleetDevice:
    types = row.get("is_of__device_type") or [{}]
    return FleetDevice(
        id=int(row["id"]),
        uuid=str(row["uuid"]),
        name=str(row.get("device_name") or row["uuid"][:7]),
        device_type=str(types[0].get("slug", "")),
        is_online=bool(row.get("is_online")),
    )


def _explain(exc: Exception, action: str) -> str:
    status = getattr(exc, "status_code", None)
    if status == 401:
        return f"cannot {action}: the balena API refused the token (set BALENA_API_KEY to a valid API key)"
    if status == 404 or type(exc).__name__ in ("ApplicationNotFound", "DeviceNotFound"):
        return f"cannot {action}: not found on the balena API (check the fleet slug, e.g. myorg/scopehive)"
    return f"cannot {action}: {type(exc).__name__}: {exc}"
