"""Settings of the review inbox (the `inbox` config section), bounded so that the inbox can never
fill the disk, never keep every frame, and never go silent (docs/inbox.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class InboxSettings(BaseModel):
    """Which frames are kept for review, and how many (in count and in bytes)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(True, description="Keep frames worth a human look (near the threshold, models disagreeing, "
                          "drift alarm, spot checks)")
    max_frames: int = Field(200, ge=1, le=10_000, description="Most frames kept (1 to 10,000); a full inbox evicts the "
                            "oldest spot check first, then the oldest frame")
    max_mb: float = Field(500.0, ge=1.0, le=100_000.0, description="Most megabytes of frames kept on disk (1 to 100,000)")
    near_band: float = Field(0.1, ge=0.01, le=0.5, description="A detection is 'near the threshold' when its score is "
                             "below the threshold + near_band (0.01 to 0.5)")
    near_min: int = Field(5, ge=1, le=10_000, description="Detections near the threshold that make a frame worth a look")
    near_share: float = Field(0.3, ge=0.0, le=1.0, description="... and their least share of the frame's detections")
    disagree_margin: int = Field(3, ge=1, le=10_000, description="Two models on the feed disagree when their counts of "
                                 "one frame differ by more than this many objects ...")
    disagree_share: float = Field(0.2, ge=0.0, le=10.0, description="... and by more than this share of the larger count")
    flicker_min: int = Field(3, ge=1, le=10_000, description="Tracks of one frame seen again after missed frames "
                             "(detections that come and go: 'tracks that flicker') that make it worth a look ...")
    flicker_share: float = Field(0.2, ge=0.0, le=1.0, description="... and their least share of the frame's detections")
    spot_share: float = Field(0.005, ge=0.0, le=0.2, description="Share of analysed frames kept at random as spot checks "
                              "(0 to 0.2)")
    min_interval_s: float = Field(5.0, ge=0.0, le=3600.0, description="Fewest seconds between two kept frames of one "
                                  "reason (a drift alarm of an hour does not fill the inbox with one scene)")
    hash_distance: int = Field(6, ge=0, le=32, description="Frames whose 64-bit perceptual hashes differ in at most this "
                               "many bits are the same scene: kept once")
    seed: int | None = Field(None, description="Seed of the spot-check draw (tests); empty = random")
