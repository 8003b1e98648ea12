"""The `track` point: one per finished track, written when the track ends."""

from __future__ import annotations

from device.metrics.points import FieldValue, Point
from device.tracking.motility import TrackRecord


def track_point(record: TrackRecord, tags: dict[str, str], um_per_pixel: float | None, ts_us: int) -> Point:
    """Class (tag), duration, frames, path length, speeds, straightness, start/end positions.

    `ts_us` is the end time plus the track's rank among those ending in the same frame: same
    measurement, tags and time would make InfluxDB keep only one of them.
    """
    fields: dict[str, FieldValue] = {
        "track_id": record.track_id, "frames": record.frames, "duration_s": round(record.duration_s, 4),
        "start_x": round(record.start_xy[0], 2), "start_y": round(record.start_xy[1], 2),
        "end_x": round(record.end_xy[0], 2), "end_y": round(record.end_xy[1], 2),
    }
    if not record.measured:  # never wholly in view for two frames: no path, no speed (not a zero speed)
        return Point("track", tags, fields, ts_us)
    fields.update(path_px=round(record.path_px, 3), net_px=round(record.net_px, 3), speed_px_s=round(record.speed_px_s, 4),
                  straight_speed_px_s=round(record.straight_speed_px_s, 4), straightness=round(record.straightness, 4))
    if um_per_pixel:
        fields.update(path_um=round(record.path_px * um_per_pixel, 3), speed_um_s=round(record.speed_px_s * um_per_pixel, 4),
                      straight_speed_um_s=round(record.straight_speed_px_s * um_per_pixel, 4))
    return Point("track", tags, fields, ts_us)
