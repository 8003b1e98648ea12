"""Settings of the drift alarms (the `drift` config section): windows and thresholds, bounded.

Every bound refuses a value that would make the alarm meaningless (a window of one frame, a
threshold no change can reach), and says so in the loader's message (device/config.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DriftSettings(BaseModel):
    """How far the live distributions may part from the bundle's baseline, and over how many frames."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(True, description="Compare every analysed frame's detections with the model's baseline")
    window_frames: int = Field(300, ge=20, le=10_000, description="Analysed frames in the sliding window (skipped and "
                               "gated frames do not count); 20 to 10,000")
    min_objects: int = Field(300, ge=20, le=1_000_000, description="Fewest objects in the window before sizes, scores "
                             "and class mix are judged (fewer: only objects per frame is)")
    learn_frames: int = Field(300, ge=20, le=100_000, description="A bundle without a baseline: analysed frames it is "
                              "learnt from at the start of a run (20 to 100,000)")
    psi: float = Field(0.25, ge=0.05, le=5.0, description="Population stability index above which a histogram (size, "
                       "score, class mix) has parted (0.05 to 5; 0.25 is the usual 'major shift')")
    size_change: float = Field(0.25, ge=0.05, le=10.0, description="Relative change of the median object size that "
                               "counts (0.25 = 25 % larger or smaller)")
    score_change: float = Field(0.10, ge=0.02, le=1.0, description="Change of the median score that counts (absolute)")
    count_change: float = Field(0.40, ge=0.05, le=10.0, description="Relative change of the mean objects per frame "
                                "that raises the alarm (0.4 = 40 % more or fewer)")
    mix_change: float = Field(0.15, ge=0.02, le=1.0, description="Change of one class's share of all objects that counts "
                              "(0.15 = 15 percentage points)")
    confirm_frames: int = Field(10, ge=1, le=10_000, description="Consecutive analysed frames a change (or its end) must "
                                "hold before the alarm is raised (or cleared)")
    clear_ratio: float = Field(0.6, ge=0.1, le=1.0, description="The alarm clears when every statistic is below "
                               "clear_ratio x its threshold (hysteresis)")

    @model_validator(mode="after")
    def _window_holds_confirmation(self) -> DriftSettings:
        if self.confirm_frames > self.window_frames:
            raise ValueError(f"confirm_frames ({self.confirm_frames}) must not exceed window_frames ({self.window_frames}): "
                             "a change could never be confirmed within one window")
        return self
