// Experiments page: start/stop with elapsed time, calibration by a line over a stage micrometer,
// the list of experiments with their downloads.
"use strict";
(function () {
  const status = document.getElementById("experiment-status");
  if (!status) return;
  const stopBtn = document.getElementById("stop-btn");
  const startForm = document.getElementById("start-form");
  const select = document.getElementById("profile-select");
  let active = null, activeSeen = 0;

  const fmtElapsed = (s) => { s = Math.max(0, Math.round(s)); const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
    return (h ? h + " h " : "") + m + " min " + (s % 60) + " s"; };
  function showActive() {
    if (active) {
      const elapsed = active.elapsed_s + (Date.now() - activeSeen) / 1000;
      status.innerHTML = "";
      const b = document.createElement("b"); b.textContent = active.request.name; status.append("Running: ", b);
      status.append(" (" + active.id + ") · elapsed ", Object.assign(document.createElement("span"), { id: "elapsed", textContent: fmtElapsed(elapsed) }));
      status.className = "running";
    } else { status.textContent = "No experiment is running."; status.className = "muted"; }
    stopBtn.hidden = !active; startForm.hidden = !!active;
  }
  function cell(row, text) { const td = row.insertCell(); td.textContent = text; return td; }
  function link(td, href, text) { const a = document.createElement("a"); a.href = href; a.textContent = text; td.append(a, " "); }
  function showList(experiments) {
    const t = document.getElementById("experiment-list"); t.innerHTML = "";
    const h = t.insertRow(); ["Name", "Id", "Started (UTC)", "Duration", "Calibration", "Downloads"].forEach((x) => { const th = document.createElement("th"); th.textContent = x; h.append(th); });
    if (!experiments.length) {
      const td = t.insertRow().insertCell(); td.colSpan = 6; td.className = "muted"; td.id = "no-experiments";
      td.textContent = "None yet: start one above; it is listed here with its CSV and report downloads.";
    }
    for (const e of experiments) {
      const r = t.insertRow(); r.className = "experiment-row"; r.dataset.id = e.id;
      cell(r, e.request.name); cell(r, e.id); cell(r, e.started_iso); cell(r, e.running ? "running" : fmtElapsed(e.elapsed_s));
      cell(r, e.calibration ? e.calibration.name + " (" + e.calibration.um_per_pixel.toPrecision(4) + " µm/px)" : "none");
      const td = r.insertCell(); const base = "/panel/api/experiments/" + encodeURIComponent(e.id);
      link(td, base + "/frames.csv", "frames CSV"); link(td, base + "/objects.csv", "objects CSV");
      link(td, base + "/objects.geojson", "objects GeoJSON (QuPath)");
      link(td, base + "/report.html", "report"); link(td, base + "/report.html?view=1", "view");
    }
  }
  function showProfiles(profiles) {
    const keep = select.value; select.length = 1;
    const t = document.getElementById("profile-list"); t.innerHTML = "";
    if (profiles.length) { const h = t.insertRow(); ["Profile", "µm / px", "Objective", "Camera"].forEach((x) => cell(h, x)); }
    for (const p of profiles) {
      select.add(new Option(p.name + " (" + p.um_per_pixel.toPrecision(4) + " µm/px)", p.name));
      const r = t.insertRow(); cell(r, p.name); cell(r, p.um_per_pixel.toPrecision(4)); cell(r, p.objective); cell(r, p.camera);
    }
    select.value = keep;
  }
  // Drift alarm (docs/drift.md): the numbers being recorded may not be trustworthy; the device says what changed.
  function showDrift(drift) {
    const banner = document.getElementById("experiment-drift");
    banner.hidden = !drift.alarm;
    banner.textContent = drift.alarm ? "Drift alarm: the model's numbers may not be trustworthy while this lasts. " + drift.message + "." : "";
  }
  async function refresh() {
    const r = await panel.send("/panel/api/experiments", "GET");
    if (!r.ok) { status.textContent = r.data.error || "cannot reach the device"; return; }
    active = r.data.active; activeSeen = Date.now();
    showDrift(r.data.drift || {});
    showActive(); showList(r.data.experiments); showProfiles(r.data.profiles);
  }
  startForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = Object.fromEntries(new FormData(startForm).entries());
    const r = await panel.send("/panel/api/experiments/start", "POST", body);
    if (!r.ok) { panel.message(r.data.error, "error"); return; }
    panel.message("Experiment " + r.data.request.name + " started (" + r.data.id + ")", "success");
    await refresh();
  });
  stopBtn.addEventListener("click", async () => {
    const r = await panel.send("/panel/api/experiments/stop", "POST", {});
    if (!r.ok) { panel.message(r.data.error, "error"); return; }
    panel.message("Experiment " + r.data.request.name + " stopped after " + fmtElapsed(r.data.elapsed_s), "success");
    await refresh();
  });
  setInterval(showActive, 1000);
  setInterval(refresh, 5000);
  refresh();

  // ---- calibration: drag a line on the grabbed frame (canvas pixels -> frame pixels)
  const canvas = document.getElementById("calib-canvas"), ctx = canvas.getContext("2d");
  const img = new Image(); let line = null, dragging = false;
  function draw() {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (img.naturalWidth) ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    if (line) { ctx.strokeStyle = "#ff2d55"; ctx.lineWidth = 2; ctx.beginPath(); ctx.moveTo(line.x1, line.y1); ctx.lineTo(line.x2, line.y2); ctx.stroke(); }
  }
  const scale = () => (img.naturalWidth ? img.naturalWidth / canvas.width : 1);
  function framePoint(ev) { const b = canvas.getBoundingClientRect(); return [(ev.clientX - b.left) * canvas.width / b.width, (ev.clientY - b.top) * canvas.height / b.height]; }
  document.getElementById("grab-btn").addEventListener("click", () => { img.src = "/panel/api/calibration/frame.jpg?t=" + Date.now(); });
  img.addEventListener("load", () => { canvas.width = img.naturalWidth; canvas.height = img.naturalHeight; line = null; draw(); window.calibrationReady = true; });
  canvas.addEventListener("mousedown", (ev) => { const [x, y] = framePoint(ev); line = { x1: x, y1: y, x2: x, y2: y }; dragging = true; });
  canvas.addEventListener("mousemove", (ev) => { if (!dragging) return; const [x, y] = framePoint(ev); line.x2 = x; line.y2 = y; draw(); });
  window.addEventListener("mouseup", () => {
    if (!dragging) return; dragging = false; draw();
    const px = Math.hypot(line.x2 - line.x1, line.y2 - line.y1) * scale();
    document.getElementById("calib-line").textContent = "line: " + px.toFixed(1) + " px";
  });
  document.getElementById("calib-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = Object.fromEntries(new FormData(ev.target).entries());
    const s = scale(), l = line || { x1: 0, y1: 0, x2: 0, y2: 0 };
    const body = { name: f.name, objective: f.objective, camera: f.camera,
      line: { x1: l.x1 * s, y1: l.y1 * s, x2: l.x2 * s, y2: l.y2 * s, length_um: Number(f.length_um) } };
    const r = await panel.send("/panel/api/calibration/profiles", "POST", body);
    if (!r.ok) { panel.message(r.data.error, "error"); return; }
    panel.message("Profile " + r.data.name + " saved: " + r.data.um_per_pixel.toPrecision(4) + " µm per pixel", "success");
    await refresh();
  });
})();
