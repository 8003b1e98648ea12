"""Benchmark: the panel's model loop on this machine, through a real trainer worker.

    .venv/bin/python bench/train_loop.py overhead   # submit -> queued -> training -> first epoch
    .venv/bin/python bench/train_loop.py warm       # warm vs cold start, minutes to the same validation mAP

`overhead` starts `python -m trainer worker` on loopback (a folder store), submits one small job
as the panel does and prints how long the submit call took (the worker fetches the package and
checks every image before it answers), then how long until the job trains and until its first
epoch is done: what a user waits for before the progress bar moves.

`warm` is the lab's second Train press: a model trained on the first frames runs on the device;
the project has grown; the next model is trained twice on the grown package, from random
weights (cold) and from the running model's (warm, what the panel does by default), with the
validation mAP scored after every epoch. It prints both curves and the minutes each start needs
to reach the cold run's best mAP. Prints, does not assert; the load average is printed because
training is CPU bound and a shared machine runs slower.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-0123456789abcdef"
SCENE = {"width": 320, "height": 240, "density": 120.0}


def _package(path: Path, count: int, seed: int) -> Path:
    from device.datasets.package import write_synthetic_package

    write_synthetic_package(path, count=count, seed=seed, **SCENE)  # type: ignore[arg-type]
    return path


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def overhead(work: Path, images: int) -> None:
    store = work / "store"
    key = "training/bench/loop/train.zip"
    (store / key).parent.mkdir(parents=True)
    _package(store / key, images, seed=1)
    port = _free_port()
    env = {**os.environ, "SCOPEHIVE_TRAINER_TOKEN": TOKEN, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "trainer", "worker", "--store", f"file://{store}", "--work", str(work / "w"),
                             "--host", "127.0.0.1", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url, headers = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {TOKEN}", "X-ScopeHive-Device": "bench"}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(url + "/healthz", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise SystemExit("the worker did not start") from None
                time.sleep(0.2)
        load = os.getloadavg()[0]
        t0 = time.monotonic()
        body = {"project": "loop", "package": key, "options": {"epochs": 2, "input_size": 320, "crop": 160, "batch_size": 8}}
        job = requests.post(url + "/v1/jobs", json=body, headers=headers, timeout=300).json()
        submitted = time.monotonic() - t0
        seen: dict[str, float] = {}
        while "epoch1" not in seen and time.monotonic() - t0 < 900:
            state = requests.get(f"{url}/v1/jobs/{job['id']}", headers=headers, timeout=30).json()
            now = time.monotonic() - t0
            if state["state"] == "running":
                seen.setdefault("running", now)
            if state["progress"].get("state") == "training":
                seen.setdefault("training", now)
            if (state["progress"].get("epoch") or 0) >= 1:
                seen["epoch1"] = now
            if state["state"] in ("failed", "cancelled", "interrupted"):
                raise SystemExit(f"the job ended {state['state']}: {state['message']}")
            time.sleep(0.25)
        requests.post(f"{url}/v1/jobs/{job['id']}/cancel", json={}, headers=headers, timeout=30)
    finally:
        proc.terminate()
        proc.wait(60)
    print(f"job overhead ({images} images of {SCENE['width']}x{SCENE['height']}, load average {load:.1f} at start):")
    print(f"  submit call (package fetched, every image checked, plan made): {submitted:.1f} s")
    print(f"  submit -> job running on the worker:                           {seen.get('running', float('nan')):.1f} s")
    if seen.get("training", 0.0) < seen.get("epoch1", 0.0) - 0.5:  # progress.json is first written after TensorFlow is up
        print(f"  submit -> the training process reports (TensorFlow up):        {seen['training']:.1f} s")
    print(f"  submit -> first epoch done (the progress bar moves):            {seen.get('epoch1', float('nan')):.1f} s")


def _train(package: Path, out: Path, epochs: int, init_from: Path | None) -> list[dict[str, Any]]:
    """Train in a child process (as the worker does); returns (elapsed minutes, epoch, val mAP@0.5) per scored epoch."""
    cmd = [sys.executable, "-m", "trainer", "train", str(package), "--out", str(out), "--quiet", "--epochs", str(epochs),
           "--eval-every", "1", "--input-size", "320", "--crop", "160", "--batch-size", "8", "--seed", "3", "--val-fraction", "0.25"]
    if init_from is not None:
        cmd += ["--init-from", str(init_from)]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    curve: list[dict[str, Any]] = []
    while proc.poll() is None:
        time.sleep(0.5)
        try:
            progress = json.loads((out / "progress.json").read_text())
        except (OSError, ValueError):
            continue
        val = progress.get("val") or {}
        epoch = progress.get("epoch") or 0
        if val.get("map50") is not None and (not curve or curve[-1]["epoch"] != epoch):
            curve.append({"minutes": (time.monotonic() - t0) / 60, "epoch": epoch, "map50": float(val["map50"])})
    if proc.returncode != 0:
        raise SystemExit(f"training failed ({proc.returncode})")
    return curve


def _reach(curve: list[dict[str, Any]], target: float) -> str:
    for point in curve:
        if point["map50"] >= target - 1e-9:
            return f"{point['minutes']:.1f} min (epoch {point['epoch']})"
    return "not reached"


def warm(work: Path, first: int, grown: int, epochs: int) -> None:
    load = os.getloadavg()[0]
    running = work / "running"
    _train(_package(work / "first.zip", first, seed=1), running, epochs, None)
    grown_zip = _package(work / "grown.zip", grown, seed=1)  # the same first frames (same seed) and more
    cold = _train(grown_zip, work / "cold", epochs, None)
    warm_curve = _train(grown_zip, work / "warm", epochs, running)
    target = max(p["map50"] for p in cold)
    print(f"warm vs cold start ({first} -> {grown} images of {SCENE['width']}x{SCENE['height']}, {epochs} epochs each, "
          f"load average {load:.1f} at start):")
    for name, curve in (("cold", cold), ("warm", warm_curve)):
        points = ", ".join(f"e{p['epoch']} {p['map50']:.3f}" for p in curve)
        print(f"  {name}: validation mAP@0.5 by epoch: {points}")
    print(f"  minutes to the cold run's best mAP@0.5 {target:.3f}: cold {_reach(cold, target)}, warm {_reach(warm_curve, target)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("overhead", "warm"))
    parser.add_argument("--images", type=int, default=16, help="overhead: images in the package")
    parser.add_argument("--first", type=int, default=16, help="warm: images of the running model's training")
    parser.add_argument("--grown", type=int, default=32, help="warm: images after the project grew")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-train-loop-") as tmp:
        if args.what == "overhead":
            overhead(Path(tmp), args.images)
        else:
            warm(Path(tmp), args.first, args.grown, args.epochs)


if __name__ == "__main__":
    main()
