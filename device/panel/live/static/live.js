// Live page for a scientist: stream, the running experiment, this frame's status and focus, counts
// and densities per class, and charts with labelled axes. Machine fields stay in /healthz.
"use strict";
(function () {
  const img = document.getElementById("stream");
  if (!img) return;
  img.src = "/stream.mjpg";
  const REASONS = { out_of_focus: "out of focus", overexposed: "overexposed", underexposed: "too dark", no_model: "no model loaded", skipped: "skipped (runs every k-th frame)", failed: "failed (unusable frame)" };
  const STYLES = ["solid", "dashed", "corners", "dotted"];
  const elapsed = (s) => { s = Math.round(s); return (s >= 3600 ? Math.floor(s / 3600) + " h " : "") + (Math.floor(s / 60) % 60) + " min " + (s % 60) + " s"; };
  // The reference is the 90th percentile of recent frames' focus scores, so about one frame in ten is
  // sharper than it: such a frame reads "sharper than the reference", never "124 %".
  function focusText(focus, ref) {
    const share = Math.round((100 * focus) / ref);
    return share > 100 ? "sharper than the reference" : share + " % of the reference";
  }
  window.live = { focusText };
  function text(id, value, cls) { const el = document.getElementById(id); el.textContent = value; if (cls !== undefined) el.className = cls; return el; }
  function show(s) {
    Object.assign(window.charts.classColours, s.colours || {});
    const e = s.experiment;
    text("live-experiment", e ? "Running: " + e.request.name + " · " + elapsed(e.elapsed_s) + (e.calibration ? " · " + e.calibration.name : "") : "No experiment running (start one on the Experiments page).", e ? "" : "muted");
    const analysed = s.analysed || (s.count !== null && s.count !== undefined ? "ok" : null);
    const estimate = typeof s.count_estimate === "number" && s.count_estimate !== s.count ? " (≈ " + s.count_estimate + " corrected for crowding)" : "";
    if (analysed === "ok") text("live-frame", "Analysed · " + s.count + " object(s)" + estimate + " · " + (s.fps || 0).toFixed(1) + " frames/s", "");
    else if (analysed) text("live-frame", "Excluded: " + (REASONS[analysed] || analysed) + " (no count written)", "excluded");
    const ref = s.focus_reference || 0, focus = s.focus;
    if (typeof focus === "number" && ref > 0) {
      document.getElementById("focus-bar").style.width = Math.min(100, (100 * focus) / ref) + "%";
      document.getElementById("focus-bar").style.background = analysed === "out_of_focus" ? "#b54708" : "#067647";
      document.getElementById("focus-gate").style.left = 100 * (s.focus_gate || 0) + "%";
      text("focus-text", focusText(focus, ref));
    }
    const t = document.getElementById("live-counts"); t.innerHTML = "";
    const fov = s.fov_mm2, head = t.insertRow();
    ["Class", "Objects", fov ? "per mm²" : ""].forEach((h) => { const th = document.createElement("th"); th.textContent = h; head.append(th); });
    for (const [name, n] of Object.entries(s.counts || {})) {
      const r = t.insertRow(); r.insertCell().textContent = name;
      r.insertCell().textContent = analysed === "ok" ? n : "–";
      r.insertCell().textContent = fov && analysed === "ok" ? (n / fov).toFixed(1) : "";
    }
    models(s);
    text("live-calibration", s.um_per_pixel ? "Calibration " + s.um_per_pixel.toPrecision(4) + " µm/px" + (fov ? " · field of view " + fov.toPrecision(3) + " mm²" : "") : "Not calibrated: sizes in pixels.");
  }
  // Where a model's frames ran: on this device, on a hive server, or locally because the hive did not answer.
  function route(m) {
    const r = m.route;
    if (!r) return m.hive ? "hive (no frame analysed yet)" : "–";
    if (r.startsWith("remote:")) return "hive " + r.slice(7);
    if (r === "fallback") return "this device (fallback: the hive did not answer)";
    return "this device";
  }
  function models(s) {
    const t = document.getElementById("live-models"); if (!t) return;
    const entries = Object.entries(s.feed || {});
    t.innerHTML = "";
    const classes = [...new Set(entries.flatMap(([, m]) => Object.keys(m.colours || {})))];
    const head = t.insertRow();
    ["Slot", "Model", "Box style", "Runs on", "Objects", ...classes, "vs main"].forEach((h) => { const th = document.createElement("th"); th.textContent = h; head.append(th); });
    const main = (s.feed || {}).main;
    entries.forEach(([slot, m], i) => {
      const r = t.insertRow(); r.dataset.slot = slot;
      r.insertCell().textContent = slot;
      r.insertCell().textContent = m.model || "no model";
      r.insertCell().textContent = STYLES[i % STYLES.length];
      const where = r.insertCell(); where.className = "route" + (m.route === "fallback" ? " fallback" : ""); where.textContent = route(m);
      const n = r.insertCell(); n.className = "count";
      if (typeof m.count === "number") n.textContent = m.count;
      else { n.textContent = m.excluded || "not analysed"; n.classList.add("excluded"); }
      for (const c of classes) r.insertCell().textContent = m.counts && c in m.counts ? m.counts[c] : "–";
      const d = r.insertCell(); d.className = "delta";
      d.textContent = slot === "main" ? "" : (typeof m.count === "number" && main && typeof main.count === "number" ? (m.count - main.count >= 0 ? "+" : "") + (m.count - main.count) : "–");
    });
    // Drift alarm (docs/drift.md): what changed against the model's baseline, in the device's own words.
    const drift = s.drift || {};
    const driftBanner = document.getElementById("live-drift");
    driftBanner.hidden = !drift.alarm;
    if (drift.alarm) driftBanner.textContent = "Drift alarm: the model's numbers may not be trustworthy. " + drift.message + ".";
    const down = entries.filter(([, m]) => m.hive && m.hive.down);
    const banner = document.getElementById("live-hive");
    banner.hidden = !down.length;
    if (down.length) banner.textContent = "The hive is down for " + down.map(([slot]) => slot).join(", ") + ": " +
      (down.some(([, m]) => !m.hive.local) ? "frames it does not answer are not analysed (no local model). " : "frames run on this device's own model (fallback). ") + down[0][1].hive.reason;
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
      // excluded frames as markers in the warning colour of "Excluded" above, never the green of ok
      window.charts.lines("chart-focus", { "focus score": focus.map((p) => [p.time, p.focus]), "excluded (not analysed)": excluded },
        "time (local)", "focus score (Laplacian variance)", clock, { "excluded (not analysed)": { colour: window.charts.EXCLUDED, marker: true } });
    }
    const h = await panel.send("/panel/api/live/sizes", "GET");
    if (h.ok) window.charts.histogram("chart-sizes", h.data, "size, sqrt(width × height) (" + h.data.unit + ")", "objects (last " + h.data.objects + ")");
  }
  history(); setInterval(history, 5000);
})();
