"""Small server-drawn SVG charts for the result page (no chart library in the panel)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

_W, _H, _PAD = 220, 160, 26


def _points(pairs: Sequence[Sequence[int]]) -> list[tuple[float, float]]:
    """(mean of true and found, found - true) per image."""
    return [((t + f) / 2.0, float(f - t)) for t, f in pairs]


def bland_altman(name: str, new: Sequence[Sequence[int]] | None, running: Sequence[Sequence[int]] | None = None) -> Markup:
    """Per image: count difference (found - true) against the mean count; the bias and 95 % limits
    of the new model as lines; the running model's points, if given, as hollow circles."""
    sets = [("new", _points(new or [])), ("running", _points(running or []))]
    every = [p for _, pts in sets for p in pts]
    if not every:
        return Markup(f'<figure class="bland-altman" data-class="{escape(name)}"><figcaption>{escape(name)}: no frames</figcaption></figure>')
    xmax = max(1.0, max(x for x, _ in every))
    ymax = max(1.0, max(abs(y) for _, y in every))
    diffs = [y for _, y in sets[0][1]]
    bias = sum(diffs) / len(diffs) if diffs else 0.0
    sd = (sum((d - bias) ** 2 for d in diffs) / (len(diffs) - 1)) ** 0.5 if len(diffs) > 1 else 0.0
    ymax = max(ymax, abs(bias) + 1.96 * sd)

    def sx(x: float) -> float:
        return _PAD + x / xmax * (_W - 2 * _PAD)

    def sy(y: float) -> float:
        return _H / 2 - y / ymax * (_H / 2 - _PAD)

    parts = [f'<line x1="{_PAD}" x2="{_W - _PAD}" y1="{sy(0):.1f}" y2="{sy(0):.1f}" stroke="#98a2b3"/>']
    for level, dash in ((bias, ""), (bias - 1.96 * sd, "4 3"), (bias + 1.96 * sd, "4 3")):
        parts.append(f'<line x1="{_PAD}" x2="{_W - _PAD}" y1="{sy(level):.1f}" y2="{sy(level):.1f}" stroke="#2f6fdb" stroke-dasharray="{dash}"/>')
    for x, y in sets[1][1]:
        parts.append(f'<circle class="running" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="none" stroke="#667085"/>')
    for x, y in sets[0][1]:
        parts.append(f'<circle class="new" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="#2f6fdb"/>')
    parts.append(f'<text x="2" y="12" font-size="10">+{ymax:.0f}</text><text x="2" y="{_H - 4}" font-size="10">-{ymax:.0f}</text>')
    caption = f"{escape(name)}: bias {bias:+.2f}, limits {bias - 1.96 * sd:+.2f} to {bias + 1.96 * sd:+.2f} (new)"
    return Markup(f'<figure class="bland-altman" data-class="{escape(name)}" style="margin:0"><figcaption class="muted">{caption}</figcaption>'
                  f'<svg width="{_W}" height="{_H}" role="img" aria-label="Bland-Altman plot of {escape(name)} counts">{"".join(parts)}</svg></figure>')
