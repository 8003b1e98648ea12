"""The overlay screenshots in docs/images/, taken from the real device's /snapshot.jpg:

- overlay-two-models.png: the demo model twice on one feed (the second with a higher score
  threshold): solid and dashed boxes, one legend block and count per model;
- overlay-excluded-frame.png: an out-of-focus frame: the legend says why it was not analysed, no count.

Run from the repository root: `.venv/bin/python bench/overlay_screenshots.py` (about 30 s).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "device" / "models" / "demo"
TOKEN = "overlay-screenshots"
SOURCE = "synthetic://?seed=7&width=960&height=720&fps=3&read_noise=0.5&shot_noise=0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def snapshot(env: dict[str, str], frames: int = 6, source: str = SOURCE) -> np.ndarray:
    """Run the device until it has processed a few frames and return its snapshot."""
    port = _free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SCOPEHIVE_")}
    with tempfile.TemporaryDirectory() as data:
        cmd = [sys.executable, "-m", "device", "run", "--source", source, "--model", str(DEMO), "--data-dir", data,
               "--port", str(port)]
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**clean, "SCOPEHIVE_STREAM_TOKEN": TOKEN, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 90
            while time.monotonic() < deadline:
                try:
                    live = requests.get(f"{url}/api/live", params={"events": 1, "token": TOKEN}, timeout=5)
                    stats = json.loads(live.text.removeprefix("data: ")) if live.ok else {}
                    if (stats.get("frame_index") or 0) >= frames:
                        body = requests.get(f"{url}/snapshot.jpg", params={"token": TOKEN}, timeout=5).content
                        return cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
                except requests.RequestException:
                    pass
                time.sleep(0.3)
            raise SystemExit("the device did not deliver a frame in 90 s")
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    beside = json.dumps([{"name": "strict", "bundle": str(DEMO), "score_threshold": 0.7}])
    shots = {"overlay-two-models.png": snapshot({"SCOPEHIVE_MODELS": beside}),
             "overlay-excluded-frame.png": snapshot({"SCOPEHIVE_QUALITY__FOCUS_MIN": "1e12"},
                                                    source=SOURCE.replace("fps=3", "fps=3&defocus=4"))}
    for name, image in shots.items():
        crop = image[: image.shape[0] * 2 // 3, : image.shape[1] * 2 // 3]  # the legend and the boxes near it
        path = args.out / name
        cv2.imwrite(str(path), crop, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
