// Live page for a scientist: stream, the running experiment, this frame's status and focus, counts
// and densities per class, and charts with labelled axes. Machine fields stay in /healthz.
"use strict";
(function () {
  const img = document.getElementById("stream");
  if (!img) return;
  img.src = "/stream.mjpg";
  const REASONS = { out_of_focus: "out of focus", overexposed: "overexposed", underexposed: "too dark", no_model: "no model loaded", skipped: "skipped (unusable)" };
  const elapsed = (s) => { s = Math.round(s); return (s >= 3600 ? Math.floor(s / 3600) + " h " : "") + (Math.floor(s / 60) % 60) + " min " + (s % 60) + " s"; };
  function text(id, value, cls) { const el = document.getElementById(id); el.textContent = value; if (cls !== undefined) el.className = cls; return el; }
  function show(s) {
    Object.assign(window.charts.classColours, s.colours || {});
    const e = s.experiment;
    text("live-experiment", e ? "Running: " + e.request.name + " · " + elapsed(e.elapsed_s) + (e.calibration ? " · " + e.calibration.name : "") : "No experiment running (start one on the Experiments page).", e ? "" : "muted");
    const analysed = s.analysed || (s.count !== null && s.count !== undefined ? "ok" : null);
    if (analysed === "ok") text("live-frame", "Analysed · " + s.count + " object(s) · " + (s.fps || 0).toFixed(1) + " frames/s", "");
    else if (analysed) text("live-frame", "Excluded: " + (REASONS[analysed] || analysed) + " (no count written)", "excluded");
    const ref = s.focus_reference || 0, focus = s.focus;
    if (typeof focus === "number" && ref > 0) {
      document.getElementById("focus-bar").style.width = Math.min(100, (100 * focus) / ref) + "%";
      document.getElementById("focus-bar").style.background = analysed === "out_of_focus" ? "#b54708" : "#067647";
      document.getElementById("focus-gate").style.left = 100 * (s.focus_gate || 0) + "%";
      text("focus-text", Math.round((100 * focus) / ref) + " % of sharp");
    }
    const t = document.getElementById("live-counts"); t.innerHTML = "";
    const fov = s.fov_mm2, head = t.insertRow();
    ["Class", "Objects", fov ? "per mm²" : ""].forEach((h) => { const th = document.createElement("th"); th.textContent = h; head.append(th); });
    for (const [name, n] of Object.entries(s.counts || {})) {
      const r = t.insertRow(); r.insertCell().textContent = name;
      r.insertCell().textContent = analysed === "ok" ? n : "–";
      r.insertCell().textContent = fov && analysed === "ok" ? (n / fov).toFixed(1) : "";
    }
    text("live-calibration", s.um_per_pixel ? "Calibration " + s.um_per_pixel.toPrecision(4) + " µm/px" + (fov ? " · field of view " + fov.toPrecision(3) + " mm²" : "") : "Not calibrated: sizes in pixels.");
  }
  async function poll() { const r = await panel.send("/panel/api/live/stats", "GET"); if (r.ok) show(r.data); }
  if (window.EventSource) {
    const source = new EventSource("/api/live");
    source.onmessage = (ev) => { try { show(JSON.parse(ev.data)); } catch (err) { /* keep last */ } };
    source.onerror = () => { source.close(); setInterval(poll, 2000); };
  } else setInterval(poll, 2000);

  const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  async function history() {
    const r = await panel.send("/panel/api/live/history?seconds=300", "GET");
    if (r.ok) {
      const pts = r.data.points.filter((p) => !p.model || p.model === (r.data.points[r.data.points.length - 1] || {}).model);
      const classes = [...new Set(pts.flatMap((p) => Object.keys(p.classes || {})))];
      const series = {};
      for (const c of classes) series[c] = pts.map((p) => [p.time, typeof p.count === "number" && p.classes[c] ? p.classes[c].count : null]);
      window.charts.lines("chart-counts", series, "time (local)", "objects per frame", clock);
      const focus = pts.filter((p) => typeof p.focus === "number");
      const excluded = focus.map((p) => [p.time, typeof p.count === "number" ? null : p.focus]);
      window.charts.lines("chart-focus", { "focus score": focus.map((p) => [p.time, p.focus]), "excluded frames": excluded }, "time (local)", "focus score (Laplacian variance)", clock);
    }
    const h = await panel.send("/panel/api/live/sizes", "GET");
    if (h.ok) window.charts.histogram("chart-sizes", h.data, "size, sqrt(width × height) (" + h.data.unit + ")", "objects (last " + h.data.objects + ")");
  }
  history(); setInterval(history, 5000);
})();
