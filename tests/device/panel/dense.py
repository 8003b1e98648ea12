"""The dense-image journey shared by the browser test and bench/annotator_dense.py: 1,000 boxes on one
frame (drawn, moved, deleted, panned, zoomed) and a 4000x3000 16-bit TIFF opened and zoomed, with
every canvas redraw timed in the browser (pixels flushed, not just commands queued)."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tests.device.panel.browser_support import drag

CELL, SIDE = 48, 38  # a 40 x 25 grid of 38 px boxes: 1,000 objects, gaps between them to draw in


def dense_boxes(count: int = 1000, columns: int = 40) -> list[dict[str, float]]:
    return [{"x1": 10 + (i % columns) * CELL, "y1": 10 + (i // columns) * CELL, "x2": 10 + (i % columns) * CELL + SIDE,
             "y2": 10 + (i // columns) * CELL + SIDE, "class_id": i % 3} for i in range(count)]


def write_frames(folder: Path) -> tuple[Path, Path]:
    """A 2000x1300 8-bit frame for the 1,000 boxes, and a 4000x3000 16-bit TIFF."""
    rng = np.random.default_rng(7)
    dense = (rng.normal(120, 12, (1300, 2000))).clip(0, 255).astype(np.uint8)
    big = (np.indices((3000, 4000)).sum(axis=0) * 5 + rng.integers(0, 2000, (3000, 4000))).astype(np.uint16)
    cv2.circle(big, (2000, 1500), 40, 60000, -1)
    paths = folder / "dense_1000.png", folder / "big_4000x3000_16bit.tiff"
    cv2.imwrite(str(paths[0]), dense)
    cv2.imwrite(str(paths[1]), big)
    return paths


def upload(page: Any, url: str, files: list[Path]) -> list[dict[str, Any]]:
    page.goto(f"{url}/panel/capture")
    before = int(page.inner_text("#image-count"))
    page.set_input_files("#file-input", [str(f) for f in files])
    page.wait_for_function(f"document.getElementById('image-count').textContent === '{before + len(files)}'", timeout=120_000)
    slug = page.get_attribute("#image-grid", "data-slug")
    return [{"slug": slug, "id": a.get_attribute("data-id"), "name": a.inner_text()} for a in page.locator("#image-grid a").all()]


def put_boxes(page: Any, slug: str, image_id: str, boxes: list[dict[str, float]]) -> None:
    page.evaluate(
        "([url, boxes]) => panel.send(url, 'PUT', {revision: 0, boxes, negative: false}).then(r => { if (!r.ok) throw new Error(r.data.error); })",
        [f"/panel/api/projects/{slug}/images/{image_id}/annotation", boxes],
    )


def open_image(page: Any, url: str, image_id: str) -> None:
    page.goto(f"{url}/panel/annotate?image={image_id}")
    page.wait_for_function("window.annotator && !window.annotator.loading", timeout=60_000)
    page.evaluate("window.annotator.view.measure = true")


def _screen(page: Any, ix: float, iy: float) -> tuple[float, float]:
    box = page.locator("#canvas").bounding_box()
    zoom, ox, oy = page.evaluate("[annotator.view.zoom, annotator.view.ox, annotator.view.oy]")
    return box["x"] + ox + ix * zoom, box["y"] + oy + iy * zoom


def _phase(page: Any, action: Any) -> list[float]:
    page.evaluate("annotator.view.times.length = 0")
    action()
    page.evaluate("new Promise(ok => requestAnimationFrame(() => requestAnimationFrame(ok)))")
    return list(page.evaluate("annotator.view.times"))


def layer_builds(page: Any) -> list[float]:
    """Times (ms) spent caching the still part of the scene when a drag starts (once per drag)."""
    return list(page.evaluate("annotator.view.freezeTimes"))


def dense_figures(page: Any) -> dict[str, list[float]]:
    """Redraw times (ms) per interaction on the open 1,000-box image."""
    out: dict[str, list[float]] = {}
    gap = 10 + SIDE + (CELL - SIDE) / 2  # between the first two columns
    x0, y0 = _screen(page, gap, 30)
    x1, y1 = _screen(page, gap + 3 * CELL, 30 + 3 * CELL)
    out["draw a box"] = _phase(page, lambda: drag(page, x0, y0, x1, y1, steps=30))
    cx, cy = _screen(page, 10 + 5 * CELL + SIDE / 2, 10 + 8 * CELL + SIDE / 2)
    out["move a box"] = _phase(page, lambda: drag(page, cx, cy, cx + 120, cy + 60, steps=30))
    sx, sy = _screen(page, 10 + 9 * CELL + SIDE / 2, 10 + 2 * CELL + SIDE / 2)

    def delete() -> None:
        page.mouse.click(sx, sy)
        page.keyboard.press("Delete")

    out["select and delete a box"] = _phase(page, delete)
    out["pan (1,000 boxes slide)"] = _phase(page, lambda: drag(page, cx, cy, cx - 200, cy - 120, steps=30, shift=True))

    def zoom() -> None:
        for _ in range(8):
            page.mouse.wheel(0, -120)
            page.wait_for_timeout(30)

    page.mouse.move(cx, cy)
    out["zoom (whole view redrawn)"] = _phase(page, zoom)
    return out


def big_image_figures(page: Any) -> dict[str, Any]:
    """Open the 4000x3000 frame, check the overview uses the downscaled copy and a zoom the full one."""
    overview = page.evaluate("annotator.view.source")
    small = page.evaluate("annotator.view.small ? [annotator.view.small.width, annotator.view.small.height] : null")
    canvas = page.locator("#canvas").bounding_box()
    cx, cy = canvas["x"] + canvas["width"] / 2, canvas["y"] + canvas["height"] / 2
    page.mouse.move(cx, cy)

    def zoom_in() -> None:
        for _ in range(16):
            page.mouse.wheel(0, -120)
            page.wait_for_timeout(30)

    zooming = _phase(page, zoom_in)
    zoomed = page.evaluate("[annotator.view.source, annotator.view.zoom]")
    panning = _phase(page, lambda: drag(page, cx, cy, cx - 150, cy - 90, steps=20, shift=True))
    return {"overview": overview, "small": small, "zoomed": zoomed, "zoom": zooming, "pan": panning}


def summary(times: list[float], what: str = "redraws") -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"{len(times)} {what}, median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms, max {ordered[-1]:.1f} ms"


def p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
