"""Benchmark: where the device loop's CPU goes beside inference, per frame (cProfile on the process
CPU clock over the demo bundle's real runtime on replayed 1280x960 frames; ONNX Runtime's own
threads count inside `session.run`).

    .venv/bin/python bench/loop_profile.py [--frames 120]

Prints ms per frame for the whole loop, the detector (fit, normalise, inference, decode) and each
stage the loop adds on top of it, and what is left.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from device_common import ReplaySource  # noqa: E402
from device_loop import runtime_for  # noqa: E402

from device.sources.synthetic import SyntheticMicroscope  # noqa: E402

WARM = 5
# (label, file suffix, function name): the loop's stages beside the detector
STAGES = [
    ("detector (fit, normalise, inference, decode)", "device/inference/detector.py", "analyse"),
    ("focus / exposure score", "device/experiments/quality.py", "assess"),
    ("publishing the points (outbox)", "device/publish.py", "publish"),
    ("tracking", "device/tracking/stage.py", "__call__"),
    ("review inbox", "device/inbox/watch.py", "consider"),
]


def cumulative_ms(stats: pstats.Stats, suffix: str, function: str) -> float:
    raw = stats.stats  # type: ignore[attr-defined]
    return sum(v[3] for (path, _, name), v in raw.items() if path.endswith(suffix) and name == function) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--bundle", type=Path, default=ROOT / "device" / "models" / "demo")
    args = parser.parse_args()
    scope = SyntheticMicroscope(seed=1, width=1280, height=960)
    runtime = runtime_for(args.bundle, ReplaySource([scope.read().image for _ in range(20)]), {})
    try:
        runtime.run(max_frames=WARM)
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        runtime.run(max_frames=WARM + args.frames)
        profile.disable()
    finally:
        runtime.shutdown()
    stats = pstats.Stats(profile)
    total = cumulative_ms(stats, "device/runtime.py", "run") / args.frames
    print(f"{args.bundle.name}, {args.frames} frames of 1280x960, process CPU ms per frame (cProfile adds a little to each call)")
    print(f"  {'whole loop':<46} {total:6.2f}")
    named = 0.0
    for label, suffix, function in STAGES:
        ms = cumulative_ms(stats, suffix, function) / args.frames
        named += ms
        print(f"  {label:<46} {ms:6.2f}")
    detector = cumulative_ms(stats, STAGES[0][1], STAGES[0][2]) / args.frames
    print(f"  {'rest of the loop':<46} {total - named:6.2f}")
    print(f"  loop beyond the detector: {total - detector:.2f} ms a frame ({(total - detector) / total:.1%} of the loop's CPU)")


if __name__ == "__main__":
    main()
