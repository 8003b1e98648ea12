// Small canvas charts with labelled axes and units (no chart library: the panel runs offline).
"use strict";
window.charts = (function () {
  const PAD = { l: 48, r: 10, t: 10, b: 34 };
  const EXCLUDED = "#b54708";  // frames not analysed: the Live page's warning colour, apart from the green of ok
  const COLOURS = ["#2f6fdb", "#8e24aa", "#00838f", "#c62828", "#5d4037"];  // no green (ok) nor orange (excluded)
  const classColours = {};  // class name -> the project's colour (from the live stats): as on the stream
  const colour = (name, i) => classColours[name] || COLOURS[i % COLOURS.length];
  function ticks(lo, hi, n) {
    if (!(hi > lo)) hi = lo + 1;
    const raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    const out = []; for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) out.push(+v.toFixed(10));
    return out;
  }
  const fmt = (v) => (Math.abs(v) >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toPrecision(2));
  function setup(id) {
    const c = document.getElementById(id), ctx = c.getContext("2d");
    c.width = c.clientWidth || 300; c.height = c.clientHeight || 180;
    ctx.clearRect(0, 0, c.width, c.height); ctx.font = "11px system-ui"; ctx.fillStyle = "#475467";
    return { c, ctx };
  }
  function axes(g, x, y, xlabel, ylabel, xfmt) {
    const { c, ctx } = g, w = c.width - PAD.l - PAD.r, h = c.height - PAD.t - PAD.b;
    const px = (v) => PAD.l + ((v - x[0]) / (x[1] - x[0] || 1)) * w;
    const py = (v) => PAD.t + h - ((v - y[0]) / (y[1] - y[0] || 1)) * h;
    ctx.strokeStyle = "#d0d5dd"; ctx.lineWidth = 1; ctx.textAlign = "right";
    for (const t of ticks(y[0], y[1], 4)) { ctx.beginPath(); ctx.moveTo(PAD.l, py(t)); ctx.lineTo(PAD.l + w, py(t)); ctx.stroke(); ctx.fillText(fmt(t), PAD.l - 4, py(t) + 4); }
    ctx.textAlign = "center";
    for (const t of ticks(x[0], x[1], 5)) ctx.fillText((xfmt || fmt)(t), px(t), PAD.t + h + 13);
    ctx.fillText(xlabel, PAD.l + w / 2, c.height - 3);
    ctx.save(); ctx.translate(11, PAD.t + h / 2); ctx.rotate(-Math.PI / 2); ctx.fillText(ylabel, 0, 0); ctx.restore();
    ctx.strokeStyle = "#475467"; ctx.beginPath(); ctx.moveTo(PAD.l, PAD.t); ctx.lineTo(PAD.l, PAD.t + h); ctx.lineTo(PAD.l + w, PAD.t + h); ctx.stroke();
    return { px, py, w, h };
  }
  function empty(g, text) { g.ctx.textAlign = "left"; g.ctx.fillText(text, 8, 16); }
  // One line per series at the top right: its swatch (a line, or the marker it is drawn with) and its name.
  function legend(g, names, style) {
    const { ctx } = g, x = g.c.width - PAD.r - 2;
    const width = Math.max(...names.map((n) => ctx.measureText(n).width));
    ctx.fillStyle = "rgba(255,255,255,0.85)"; ctx.fillRect(x - width - 24, PAD.t, width + 26, 12 * names.length + 4);
    ctx.textAlign = "right";
    names.forEach((n, i) => {
      const s = style(n, i), y = PAD.t + 10 + 12 * i;
      ctx.fillStyle = s.colour; ctx.strokeStyle = s.colour;
      if (s.marker) marker(ctx, x - width - 13, y - 4); else { ctx.lineWidth = 2; ctx.beginPath(); ctx.moveTo(x - width - 20, y - 4); ctx.lineTo(x - width - 6, y - 4); ctx.stroke(); }
      ctx.fillText(n, x, y);
    });
    ctx.fillStyle = "#475467";
  }
  function marker(ctx, x, y) { ctx.beginPath(); ctx.arc(x, y, 3, 0, 2 * Math.PI); ctx.fill(); }
  // series: {name: [[x, y|null], ...]}; null breaks the line (a frame that was not analysed).
  // styles: {name: {colour, marker}}: a series' own colour, and markers (one per point) instead of a line.
  function lines(id, series, xlabel, ylabel, xfmt, styles) {
    const g = setup(id), names = Object.keys(series);
    const style = (n, i) => ({ colour: colour(n, i), marker: false, ...((styles || {})[n] || {}) });
    const pts = names.flatMap((n) => series[n]);
    const ys = pts.map((p) => p[1]).filter((v) => v !== null);
    if (!ys.length) { empty(g, "no analysed frames yet"); return; }
    const xs = pts.map((p) => p[0]);
    const a = axes(g, [Math.min(...xs), Math.max(...xs)], [0, Math.max(...ys) * 1.1 || 1], xlabel, ylabel, xfmt);
    names.forEach((n, i) => {
      const s = style(n, i);
      if (s.marker) { g.ctx.fillStyle = s.colour; for (const [x, y] of series[n]) if (y !== null) marker(g.ctx, a.px(x), a.py(y)); return; }
      g.ctx.strokeStyle = s.colour; g.ctx.lineWidth = 1.5; g.ctx.beginPath(); let pen = false;
      for (const [x, y] of series[n]) { if (y === null) { pen = false; continue; } if (pen) g.ctx.lineTo(a.px(x), a.py(y)); else g.ctx.moveTo(a.px(x), a.py(y)); pen = true; }
      g.ctx.stroke();
    });
    legend(g, names, style);
    return a;
  }
  // hist: {edges: [...], classes: {name: [counts]}}: bars side by side per bin
  function histogram(id, hist, xlabel, ylabel) {
    const g = setup(id), names = Object.keys(hist.classes || {});
    if (!names.length) { empty(g, "no objects detected yet"); return; }
    const e = hist.edges, top = Math.max(...names.flatMap((n) => hist.classes[n]));
    const a = axes(g, [e[0], e[e.length - 1]], [0, top * 1.1 || 1], xlabel, ylabel);
    names.forEach((n, k) => {
      g.ctx.fillStyle = colour(n, k);
      hist.classes[n].forEach((count, i) => {
        const x0 = a.px(e[i]), bw = (a.px(e[i + 1]) - x0) / names.length;
        g.ctx.fillRect(x0 + k * bw, a.py(count), Math.max(bw - 1, 1), a.py(0) - a.py(count));
      });
    });
    legend(g, names, (n, k) => ({ colour: colour(n, k), marker: false }));
  }
  return { lines, histogram, COLOURS, EXCLUDED, classColours };
})();
