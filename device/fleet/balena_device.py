"""This device's own tags on the balena API, with its device API key and plain `requests`.

balena-sdk is a trainer-side dependency; a device needs three OData calls. A device key may read
its own device and read and write its own tags, which is all we use: the assignment
`scopehive.model` is read, and the answer `scopehive.model.running` / `scopehive.model.error` is
written. Writing a tag never restarts a container (changing a variable would).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import requests

ASSIGN_TAG = "scopehive.model"
RUNNING_TAG = "scopehive.model.running"
ERROR_TAG = "scopehive.model.error"


class BalenaDeviceError(RuntimeError):
    """The balena API could not be asked; the message says what to check."""


class BalenaDevice:
    """One device's view of the balena API (v7 OData)."""

    def __init__(self, api_url: str, api_key: str, uuid: str, timeout_s: float = 15.0) -> None:
        self.base = api_url.rstrip("/") + "/v7/"
        self.uuid = uuid
        self.timeout_s = timeout_s
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {api_key}"
        self._id: int | None = None

    @classmethod
    def from_environment(cls, api_url: str = "", environ: Mapping[str, str] | None = None) -> BalenaDevice:
        env = os.environ if environ is None else environ
        url = api_url or env.get("BALENA_API_URL", "")
        missing = [n for n, v in (("BALENA_API_URL", url), ("BALENA_API_KEY", env.get("BALENA_API_KEY")),
                                  ("BALENA_DEVICE_UUID", env.get("BALENA_DEVICE_UUID"))) if not v]
        if missing:
            raise BalenaDeviceError(
                f"fleet mode needs {', '.join(missing)}: add the io.balena.features.balena-api label to the "
                "device service (docker-compose.yml) or set SCOPEHIVE_FLEET__ENABLED=false"
            )
        return cls(url, env["BALENA_API_KEY"], env["BALENA_DEVICE_UUID"])

    def _get(self, resource: str, params: dict[str, str]) -> list[dict[str, object]]:
        try:
            response = self.session.get(self.base + resource, params=params, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise BalenaDeviceError(f"balena API unreachable at {self.base} ({exc}); retrying later") from exc
        if response.status_code == 401:
            raise BalenaDeviceError("balena API refused this device's key (BALENA_API_KEY): is the device still in the fleet?")
        response.raise_for_status()
        return list(response.json()["d"])

    def device_id(self) -> int:
        if self._id is None:
            rows = self._get("device", {"$filter": f"uuid eq '{self.uuid}'", "$select": "id"})
            if not rows:
                raise BalenaDeviceError(f"device {self.uuid} is not known to the balena API at {self.base}")
            self._id = int(str(rows[0]["id"]))
        return self._id

    def tags(self) -> dict[str, str]:
        rows = self._get("device_tag", {"$filter": f"device/uuid eq '{self.uuid}'", "$select": "tag_key,value"})
        return {str(row["tag_key"]): str(row["value"]) for row in rows}

    def set_tag(self, key: str, value: str) -> None:
        """Create or update one of this device's tags (POST; on 409 PATCH by natural key)."""
        device = self.device_id()
        try:
            response = self.session.post(self.base + "device_tag", json={"device": device, "tag_key": key, "value": value},
                                         timeout=self.timeout_s)
            if response.status_code == 409:
                response = self.session.patch(f"{self.base}device_tag(device={device},tag_key='{key}')",
                                              json={"value": value}, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise BalenaDeviceError(f"balena API unreachable at {self.base} ({exc}); retrying later") from exc
        response.raise_for_status()
