// Tracking card of the live page: draw the counting line on the stream, set flow rate / depth,
// toggle track ids, reset counts, and show unique counts, crossings, speeds and concentrations.
"use strict";
(function () {
  const img = document.getElementById("stream");
  const card = document.getElementById("tracking-card");
  if (!img || !card) return;
  const api = "/panel/api/tracking";
  const layer = document.createElement("canvas");  // drawn over the stream while placing the line
  layer.id = "line-layer";
  layer.style.cssText = "position:absolute;left:0;top:0;cursor:crosshair;display:none";
  img.parentElement.style.position = "relative";
  img.parentElement.appendChild(layer);
  let start = null;

  function toFrame(e) {  // page pixels -> frame pixels of the stream image
    const r = img.getBoundingClientRect();
    const sx = img.naturalWidth / r.width, sy = img.naturalHeight / r.height;
    return [Math.round((e.clientX - r.left) * sx), Math.round((e.clientY - r.top) * sy)];
  }
  function placeLayer() {
    layer.style.left = img.offsetLeft + "px"; layer.style.top = img.offsetTop + "px";
    layer.width = img.clientWidth; layer.height = img.clientHeight;
  }
  document.getElementById("draw-line").onclick = () => {
    if (!img.naturalWidth) { panel.message("no stream yet: wait for the first frame", "error"); return; }
    placeLayer(); layer.style.display = "block"; start = null;
    panel.message("drag across the stream to draw the counting line", "");
  };
  layer.onmousedown = (e) => { start = [e.offsetX, e.offsetY, toFrame(e)]; };
  layer.onmousemove = (e) => {
    if (!start) return;
    const ctx = layer.getContext("2d"); ctx.clearRect(0, 0, layer.width, layer.height);
    ctx.strokeStyle = "#ffdc00"; ctx.lineWidth = 2; ctx.beginPath();
    ctx.moveTo(start[0], start[1]); ctx.lineTo(e.offsetX, e.offsetY); ctx.stroke();
  };
  layer.onmouseup = async (e) => {
    if (!start) return;
    const end = toFrame(e), from = start[2];
    start = null; layer.style.display = "none";
    layer.getContext("2d").clearRect(0, 0, layer.width, layer.height);
    const r = await panel.send(api + "/line", "POST", { line: [from[0], from[1], end[0], end[1]] });
    panel.message(r.ok ? "counting line set: " + r.data.line.map((v) => v.toFixed(0)).join(", ") : r.data.error, r.ok ? "ok" : "error");
    refresh();
  };
  document.getElementById("clear-line").onclick = async () => {
    const r = await panel.send(api + "/line", "POST", { line: null });
    panel.message(r.ok ? "counting line removed" : r.data.error, r.ok ? "ok" : "error"); refresh();
  };
  document.getElementById("reset-counts").onclick = async () => {
    const r = await panel.send(api + "/reset", "POST", {});
    if (r.ok) show(r.data);  // at once: the counts and concentrations shown are the new sample's
    panel.message(r.ok ? "counts and concentrations reset" : r.data.error, r.ok ? "ok" : "error"); refresh();
  };
  document.getElementById("show-ids").onchange = async (e) => {
    const r = await panel.send(api + "/settings", "POST", { show_ids: e.target.checked });
    if (!r.ok) panel.message(r.data.error, "error");
  };
  // Flow rate and depth: the text as typed goes to the device ("1,5" is 1.5 there; "abc" is refused
  // with a message); the boxes show the values in force (also one set in the config) until edited.
  const flowBox = document.getElementById("flow-rate"), depthBox = document.getElementById("depth");
  let edited = false;
  [flowBox, depthBox].forEach((box) => box.addEventListener("input", () => { edited = true; }));
  const shown = (v) => (typeof v === "number" ? String(v) : "");
  const inForce = (s) => "flow rate " + (typeof s.flow_rate_ul_min === "number" ? s.flow_rate_ul_min + " µL/min" : "none") +
    " · depth " + (typeof s.depth_um === "number" ? s.depth_um + " µm" : "none");
  function showSettings(s) {
    document.getElementById("flow-in-force").textContent = "in force: " + inForce(s);
    if (!edited && document.activeElement !== flowBox && document.activeElement !== depthBox) {
      flowBox.value = shown(s.flow_rate_ul_min); depthBox.value = shown(s.depth_um);
    }
  }
  document.getElementById("apply-flow").onclick = async () => {
    const r = await panel.send(api + "/settings", "POST", { flow_rate_ul_min: flowBox.value, depth_um: depthBox.value });
    if (r.ok) { edited = false; showSettings(r.data); panel.message("applied: " + inForce(r.data), "ok"); }
    else panel.message(r.data.error, "error");
    refresh();
  };

  const fmt = (v, d) => (typeof v === "number" ? v.toFixed(d) : "–");
  function show(s) {
    document.getElementById("crossing-count").textContent = s.crossed_forward ?? "no line";
    document.getElementById("crossing-reverse").textContent = s.crossed_reverse ?? "–";
    document.getElementById("unique-total").textContent = s.unique_total;
    document.getElementById("open-tracks").textContent = s.open_tracks;
    document.getElementById("show-ids").checked = s.show_ids;
    showSettings(s);
    const table = document.getElementById("tracking-table");
    table.innerHTML = "<tr><th>class</th><th>unique</th><th>crossed fwd / rev</th><th>median speed</th><th>motile</th><th>per µL (95 % CI)</th></tr>";
    for (const [name, unique] of Object.entries(s.unique || {})) {
      const m = (s.motility || {})[name] || {}, c = (s.crossings || {})[name], k = (s.concentration || {})[name];
      const speed = m.speed_median_um_s !== undefined ? fmt(m.speed_median_um_s, 1) + " µm/s" : (m.speed_median_px_s !== undefined ? fmt(m.speed_median_px_s, 1) + " px/s" : "–");
      const row = table.insertRow();
      [name, unique, c ? c.forward + " / " + c.reverse : "–", speed, m.motile_share !== undefined ? fmt(100 * m.motile_share, 0) + " %" : "–",
       k ? fmt(k.per_ul, 1) + " (" + fmt(k.per_ul_low, 1) + "–" + fmt(k.per_ul_high, 1) + ")" : "–"].forEach((v) => { row.insertCell().textContent = v; });
    }
  }
  async function refresh() {
    const r = await panel.send(api, "GET");
    if (r.ok) show(r.data);
  }
  refresh(); setInterval(refresh, 1000);
})();
