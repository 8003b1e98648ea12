"""Benchmark: synthetic microscope frames/s at 1280x960 on one core (target >= 60)."""

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402

from device.sources.synthetic import SyntheticMicroscope  # noqa: E402


def main() -> None:
    cv2.setNumThreads(1)
    for density in (30, 120):
        scope = SyntheticMicroscope(seed=0, density=density)
        for _ in range(5):
            scope.read()
        n = 300
        start = time.perf_counter()
        objects = 0
        for _ in range(n):
            objects += len(scope.read().truth)
        elapsed = time.perf_counter() - start
        print(f"synthetic 1280x960 density={density}/MP: {n / elapsed:.1f} frames/s on 1 core "
              f"({objects / n:.0f} objects/frame, target >= 60)")


if __name__ == "__main__":
    main()
