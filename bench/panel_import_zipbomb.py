"""Benchmark: peak memory while the panel imports zip bombs (target: < 300 MB above idle).

Each case posts a small zip to the real import route (/panel/datasets/import, panel defaults:
200 MB upload limit) through Flask's test client in this process, and reads the process's peak
RSS (VmHWM, reset before each case through /proc/self/clear_refs) against the RSS just before.

  one-entry bomb   images/bomb.png inflating to --gb GB (the bomb from issue 11)
  unused entry     a real COCO dataset plus raw/stack.bin inflating to --gb GB (must import)
  many entries     --gb GB spread over 100 MB "images" (each under the one-file limit)
  within budget    4 x 100 MB "images": unpacked (under the 464 MB budget), then each one is read and refused
"""

from __future__ import annotations

import argparse
import html
import io
import os
import re
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from device_common import ROOT  # noqa: F401  (puts the repo on sys.path)

MB = 1 << 20


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} missing from /proc/self/status")


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)


def make_zip(path: Path, zeros: dict[str, int], extra: dict[str, bytes]) -> None:
    """Stream the bomb to disk (never in memory): entries of `size` zero bytes, plus `extra` files."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in extra.items():
            archive.writestr(name, data)
        chunk = bytes(MB)
        for name, size in zeros.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w", force_zip64=True) as fh:
                for _ in range(size // MB):
                    fh.write(chunk)


def coco_files() -> dict[str, bytes]:
    from device.datasets.formats import export_archive
    from device.datasets.package import synthetic_images
    from device.sources.synthetic import CLASSES

    archive = zipfile.ZipFile(io.BytesIO(export_archive("coco", list(synthetic_images(3, seed=1)), CLASSES)))
    return {n: archive.read(n) for n in archive.namelist()}


def listing(count: int) -> bytes:
    """A COCO file naming the fake images, so the importer reads every one of them."""
    import json

    images = [{"id": i + 1, "file_name": f"part{i:03d}.png", "width": 64, "height": 64} for i in range(count)]
    return json.dumps({"images": images, "annotations": [], "categories": [{"id": 1, "name": "cell"}]}).encode()


def client(data_dir: Path):  # type: ignore[no-untyped-def]
    from flask import Flask

    from device import panel
    from device.config import DeviceConfig

    os.environ["SCOPEHIVE_PANEL_PASSWORD"] = "bench password 1"
    app = Flask("bench")
    app.config["SCOPEHIVE"] = DeviceConfig(data_dir=data_dir)
    panel.init_app(app)
    test = app.test_client()
    with test.session_transaction() as session:
        session["csrf"] = "bench-token"
    test.post("/panel/login", data={"password": "bench password 1", "csrf_token": "bench-token"})
    with test.session_transaction() as session:
        session["csrf"] = "bench-token"
    test.post("/panel/projects/", data={"name": "Bench", "classes": "cell, crystal, debris", "csrf_token": "bench-token"})
    return test


def run_case(test, name: str, path: Path) -> None:  # type: ignore[no-untyped-def]
    idle = rss_mb("VmRSS")
    reset_peak()
    start = time.perf_counter()
    with path.open("rb") as fh:
        response = test.post("/panel/datasets/import", data={"format": "coco", "archive": (fh, path.name), "csrf_token": "bench-token"},
                             content_type="multipart/form-data", follow_redirects=True)
    seconds = time.perf_counter() - start
    peak = rss_mb("VmHWM")
    page = html.unescape(response.data.decode())
    said = re.search(r"(Imported [^<]*|Nothing was imported[^<]*)", page)
    message = said.group(1).replace("\n", " ")[:150] if said else "?"
    print(f"{name:<16} zip {path.stat().st_size / MB:5.1f} MB  HTTP {response.status_code}  idle {idle:5.0f} MB  "
          f"peak {peak:5.0f} MB  above idle {peak - idle:5.0f} MB  {seconds:5.1f} s\n    {message}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=float, default=2.0, help="inflated size of each bomb, GB")
    args = parser.parse_args()
    size = int(args.gb * 1024) * MB
    with tempfile.TemporaryDirectory(prefix="bench-zipbomb-") as tmp:
        root = Path(tmp)
        test = client(root / "data")
        coco = coco_files()
        cases = {
            "one-entry bomb": ({"images/bomb.png": size}, {}),
            "unused entry": ({"raw/stack.bin": size}, coco),
            "many entries": ({f"images/part{i:03d}.png": 100 * MB for i in range(size // (100 * MB))}, {}),
            "within budget": ({f"images/part{i:03d}.png": 100 * MB for i in range(4)}, {"annotations.json": listing(4)}),
        }
        print(f"python {sys.version.split()[0]}, panel defaults (200 MB upload limit), bombs of {args.gb:g} GB inflated")
        for name, (zeros, extra) in cases.items():
            path = root / f"{name.replace(' ', '-')}.zip"
            make_zip(path, zeros, extra)
            run_case(test, name, path)
            path.unlink()


if __name__ == "__main__":
    main()
