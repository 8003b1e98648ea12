// Live page: MJPEG stream, a stats table fed by the device's SSE endpoint, and history charts.
"use strict";
(function () {
  const img = document.getElementById("stream");
  if (!img) return;
  img.src = "/stream.mjpg";
  const table = document.getElementById("live-stats");
  function flat(obj, prefix, out) {
    for (const [k, v] of Object.entries(obj || {})) {
      const key = prefix ? prefix + "." + k : k;
      if (v && typeof v === "object" && !Array.isArray(v)) flat(v, key, out);
      else out.push([key, typeof v === "number" ? (Number.isInteger(v) ? v : v.toFixed(2)) : String(v)]);
    }
    return out;
  }
  function show(stats) {
    table.innerHTML = "";
    const { tracking, ...rest } = stats;  // shown by the tracking card (tracking.js)
    for (const [k, v] of flat(rest, "", []).slice(0, 40)) {
      const tr = table.insertRow(); tr.insertCell().textContent = k; tr.insertCell().textContent = v;
    }
  }
  async function poll() {
    const r = await panel.send("/panel/api/live/stats", "GET");
    if (r.ok) show(r.data);
  }
  if (window.EventSource) {
    const source = new EventSource("/api/live");
    source.onmessage = (e) => { try { show(JSON.parse(e.data)); } catch (err) { /* keep last */ } };
    source.onerror = () => { source.close(); setInterval(poll, 2000); };
  } else setInterval(poll, 2000);

  const pick = (p, names) => { for (const n of names) { const v = n.split(".").reduce((o, k) => (o == null ? undefined : o[k]), p); if (typeof v === "number") return v; } return null; };
  function chart(id, points, names, color) {
    const c = document.getElementById(id); const ctx = c.getContext("2d");
    c.width = c.clientWidth; c.height = c.clientHeight;
    ctx.clearRect(0, 0, c.width, c.height);
    const values = points.map((p) => pick(p, names)).filter((v) => v !== null);
    ctx.fillStyle = "#667085"; ctx.font = "11px system-ui";
    if (!values.length) { ctx.fillText("no data yet", 8, 16); return; }
    const lo = Math.min(0, ...values), hi = Math.max(...values) || 1;
    ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.beginPath();
    values.forEach((v, i) => {
      const x = 4 + (i / Math.max(1, values.length - 1)) * (c.width - 8);
      const y = c.height - 14 - ((v - lo) / (hi - lo || 1)) * (c.height - 24);
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    });
    ctx.stroke();
    ctx.fillText("max " + hi.toFixed(1) + "   last " + values[values.length - 1].toFixed(1), 8, c.height - 2);
  }
  async function history() {
    const r = await panel.send("/panel/api/live/history?seconds=300", "GET");
    if (!r.ok) return;
    const pts = r.data.points;
    chart("chart-fps", pts, ["fps"], "#2f6fdb");
    chart("chart-count", pts, ["count", "count_total", "total"], "#067647");
    chart("chart-latency", pts, ["latency_ms", "inference_ms"], "#b54708");
  }
  history(); setInterval(history, 5000);
})();
