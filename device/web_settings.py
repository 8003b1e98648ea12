"""Settings of the device's web side: the server (`web:`: worker pool, client caps, access log) and the
panel (`panel:`: login, uploads, storage). Plain pydantic, so the config reads them without loading Flask."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

RESERVED_WORKERS = 8  # always free for /healthz, the panel and uploads, whatever the streams do


class WebSettings(BaseModel):
    """A stream or SSE client holds one worker for as long as it watches; the caps keep enough
    workers free for everything else, and the client past a cap gets a 503 at once."""

    model_config = ConfigDict(extra="forbid")

    max_stream_clients: int = Field(16, ge=1, le=1000, description="Most simultaneous MJPEG viewers (/stream.mjpg); the next one gets 503")
    max_sse_clients: int = Field(32, ge=1, le=1000, description="Most simultaneous live-statistics (SSE, /api/live) clients; the next one gets 503")
    threads: int = Field(0, ge=0, le=2000, description="Worker threads; 0 = the two caps plus 8 spare for /healthz and the panel")
    connection_limit: int = Field(512, ge=16, le=10000, description="Open connections accepted at once (more wait in the listen backlog)")
    access_log: bool = Field(False, description="Log one line per request (tokens and passwords redacted)")

    def worker_threads(self) -> int:
        """The bounded pool: never fewer workers than the caps plus the reserve, or a full house of
        viewers would starve /healthz."""
        floor = self.max_stream_clients + self.max_sse_clients + RESERVED_WORKERS
        return max(self.threads, floor)


class PanelSettings(BaseModel):
    """Login, uploads and storage of the web panel.

    Secrets never live in the config file: fields ending in `_env` name the environment variable
    that holds them (balena device variables), so the config can be shared and logged.
    """

    model_config = ConfigDict(extra="forbid")

    password_env: str = Field(
        "SCOPEHIVE_PANEL_PASSWORD",
        description="Environment variable holding the panel password (hashed in memory at start)",
    )
    password_file: str = Field(
        "",
        description="File with a werkzeug password hash (python -m device.panel set-password); "
        "empty = <data_dir>/panel/password.hash. Used when the environment variable is unset",
    )
    storage: str = Field(
        "",
        description="Object storage URL: file:///folder or s3://bucket/prefix?endpoint=host:port&secure=0; "
        "empty = the folder <data_dir>/panel/store",
    )
    s3_access_key_env: str = Field("SCOPEHIVE_S3_ACCESS_KEY", description="Environment variable with the S3 access key")
    s3_secret_key_env: str = Field("SCOPEHIVE_S3_SECRET_KEY", description="Environment variable with the S3 secret key")
    max_upload_mb: int = Field(200, gt=0, description="Largest request body accepted (uploads, imports), in MB")
    max_image_pixels: int = Field(
        64_000_000, gt=0, description="Largest image accepted (width x height); bigger ones are refused"
    )
    stream_token_env: str = Field(
        "SCOPEHIVE_STREAM_TOKEN",
        description="Environment variable with a token that lets Grafana embed the stream "
        "(/stream.mjpg?token=...) without a login; unset = the stream needs a login",
    )
    protect_stream: bool = Field(
        True, description="Require a login (or the stream token) for the stream, snapshot and live stats"
    )
    session_hours: float = Field(12.0, gt=0, le=24 * 30, description="How long a login lasts")
    secure_cookies: bool = Field(False, description="Send cookies only over HTTPS (set when served behind TLS)")
