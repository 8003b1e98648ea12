"""The panel's section of the device config: login, uploads, storage, stream embedding."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
