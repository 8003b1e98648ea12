"""Settings of the device's web server (`web:` in the config): worker pool, client caps, access log."""

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
