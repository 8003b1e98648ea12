"""The metrics sections of the device config: where points go (InfluxDB) and the durable outbox."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from device.redact import redact


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InfluxSettings(_Section):
    """Where metrics go. An empty url is the embedded default: keep them in the local store only."""

    url: str = Field("", description="InfluxDB base URL (v2 write API), e.g. http://influxdb:8086; empty = local store only")
    token: str = Field("", description="API token (InfluxDB 2/3) or 'user:password' (1.8 compatibility)")
    org: str = Field("scopehive", description="Organisation (ignored by InfluxDB 1.x)")
    bucket: str = Field("scopehive", description="Bucket (database/retention policy on 1.x)")
    batch_size: int = Field(5000, ge=1, le=100_000, description="Most points sent in one request")
    flush_interval_s: float = Field(0.5, gt=0, le=60, description="How often the sender looks for new points")
    timeout_s: float = Field(10.0, gt=0, le=300, description="HTTP timeout of one write")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        """Only http(s) reaches the write API; anything else would fail at the first write, later."""
        parts = urlsplit(url.strip())
        if url.strip() and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise ValueError(f"'{redact(url)}' is not an InfluxDB URL: use http://host:port or https://host:port")
        return url.strip()


class OutboxSettings(_Section):
    """The durable local store every point passes through."""

    max_mb: float = Field(256.0, gt=0, description="Disk budget; past it the oldest points are dropped and counted")
    history_s: float = Field(3600.0, gt=0, description="Sent points kept this long for the panel's charts")
