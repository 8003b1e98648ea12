"""Tiny SVG charts with labelled axes for the self-contained HTML report (no plotting library on
the device: a report must open on any computer, years later, from one file)."""

from __future__ import annotations

import math
from html import escape

W, H = 560, 260
LEFT, RIGHT, TOP, BOTTOM = 58, 12, 24, 44
COLOURS = ("#2f6fdb", "#067647", "#b54708", "#8e24aa", "#c62828", "#00838f")


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if raw <= m * step)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 or float(v).is_integer() else f"{v:.3g}"


class _Frame:
    """Plot area, scales and axes of one chart."""

    def __init__(self, x: tuple[float, float], y: tuple[float, float]) -> None:
        self.x0, self.x1 = x if x[1] > x[0] else (x[0], x[0] + 1)
        self.y0, self.y1 = y if y[1] > y[0] else (y[0], y[0] + 1)

    def px(self, x: float) -> float:
        return LEFT + (x - self.x0) / (self.x1 - self.x0) * (W - LEFT - RIGHT)

    def py(self, y: float) -> float:
        return H - BOTTOM - (y - self.y0) / (self.y1 - self.y0) * (H - TOP - BOTTOM)

    def axes(self, title: str, xlabel: str, ylabel: str) -> list[str]:
        out = [f'<text x="{W / 2}" y="15" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
               f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" stroke="#333"/>',
               f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}" stroke="#333"/>']
        for t in _ticks(self.x0, self.x1):
            out.append(f'<text x="{self.px(t):.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">{_fmt(t)}</text>')
        for t in _ticks(self.y0, self.y1):
            out.append(f'<line x1="{LEFT}" y1="{self.py(t):.1f}" x2="{W - RIGHT}" y2="{self.py(t):.1f}" stroke="#eee"/>')
            out.append(f'<text x="{LEFT - 5}" y="{self.py(t) + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
        out.append(f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 8}" text-anchor="middle">{escape(xlabel)}</text>')
        out.append(f'<text transform="translate(14 {(TOP + H - BOTTOM) / 2}) rotate(-90)" text-anchor="middle">{escape(ylabel)}</text>')
        return out


def _svg(parts: list[str], label: str) -> str:
    body = "".join(parts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" role="img" aria-label="{escape(label)}" '
            f'viewBox="0 0 {W} {H}" width="{W}" height="{H}" font-family="sans-serif" font-size="11">{body}</svg>')


def line_chart(title: str, xs: list[float], series: dict[str, list[float | None]], xlabel: str, ylabel: str,
               colours: dict[str, str] | None = None) -> str:
    """One line per series, in `colours[name]` (a class's colour, device/colours.py) or the next of
    COLOURS; None values break the line (e.g. a slice with only excluded frames)."""
    values = [v for s in series.values() for v in s if v is not None]
    frame = _Frame((min(xs, default=0.0), max(xs, default=1.0)), (0.0, max(values, default=1.0) * 1.1 or 1.0))
    parts = frame.axes(title, xlabel, ylabel)
    for k, (name, ys) in enumerate(series.items()):
        colour = (colours or {}).get(name) or COLOURS[k % len(COLOURS)]
        path, pen = [], "M"
        for x, y in zip(xs, ys, strict=False):
            if y is None:
                pen = "M"
                continue
            path.append(f"{pen}{frame.px(x):.1f},{frame.py(y):.1f}")
            pen = "L"
        parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{escape(colour)}" stroke-width="1.8"/>')
        parts.append(f'<text x="{W - RIGHT - 4}" y="{TOP + 12 + 13 * k}" text-anchor="end" fill="{escape(colour)}">{escape(name)}</text>')
    return _svg(parts, title)


def histogram(title: str, edges: list[float], counts: list[int], xlabel: str, ylabel: str = "objects",
              colour: str = COLOURS[0]) -> str:
    frame = _Frame((edges[0], edges[-1]), (0.0, max(counts, default=1) * 1.1 or 1.0))
    parts = frame.axes(title, xlabel, ylabel)
    for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=False):
        x, w = frame.px(lo), max(frame.px(hi) - frame.px(lo) - 1, 1)
        parts.append(f'<rect x="{x:.1f}" y="{frame.py(n):.1f}" width="{w:.1f}" height="{frame.py(0) - frame.py(n):.1f}" fill="{escape(colour)}"/>')
    return _svg(parts, title)
