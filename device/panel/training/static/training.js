// Training job page: poll the job, move the progress bar, draw loss and validation curves,
// reload once the job ends (the result is drawn by the server).
"use strict";
(function () {
  const box = document.getElementById("job");
  if (!box) return;
  const svgNS = "http://www.w3.org/2000/svg";

  function curve(svg, points, colour) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    if (!points.length) return;
    const w = svg.width.baseVal.value, h = svg.height.baseVal.value, pad = 8;
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), y0 = Math.min(...ys, 0), y1 = Math.max(...ys, y0 + 1e-6);
    const path = document.createElementNS(svgNS, "polyline");
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", colour);
    path.setAttribute("stroke-width", "2");
    path.setAttribute("points", points.map((p) =>
      `${pad + (p[0] - x0) / (x1 - x0) * (w - 2 * pad)},${h - pad - (p[1] - y0) / (y1 - y0) * (h - 2 * pad)}`).join(" "));
    svg.appendChild(path);
    const label = document.createElementNS(svgNS, "text");
    label.setAttribute("x", pad);
    label.setAttribute("y", 12);
    label.setAttribute("font-size", "10");
    label.textContent = `last ${ys[ys.length - 1].toFixed(3)}`;
    svg.appendChild(label);
    svg.dataset.points = String(points.length);
  }

  function show(job) {
    const p = job.progress || {};
    document.getElementById("job-state").textContent = job.state;
    document.getElementById("job-message").textContent = job.message;
    box.dataset.state = job.state;
    const bar = document.getElementById("job-progress");
    bar.max = p.epochs || (job.plan && job.plan.epochs) || 1;
    bar.value = p.epoch || 0;
    document.getElementById("job-epoch").textContent = `epoch ${p.epoch || 0} of ${bar.max}`;
    document.getElementById("job-loss").textContent = p.loss ? `loss ${p.loss.toFixed(3)}` : "";
    document.getElementById("job-val").textContent = p.val ? `validation mAP@0.5 ${p.val.map50.toFixed(3)}` : "";
    document.getElementById("job-eta").textContent = p.eta_s && job.state === "running" ? `about ${(p.eta_s / 60).toFixed(1)} min left` : "";
    const history = p.history || [];
    curve(document.getElementById("loss-curve"), history.map((e) => [e.epoch, e.loss]), "#b42318");
    curve(document.getElementById("val-curve"), history.filter((e) => e.map50 !== undefined).map((e) => [e.epoch, e.map50]), "#067647");
  }

  async function poll() {
    let r;
    try {
      r = await fetch(box.dataset.api, { credentials: "same-origin" });
    } catch (e) {
      panel.message("The panel does not answer: retrying…", "error");
      return setTimeout(poll, 5000);
    }
    const data = await r.json().catch(() => ({ error: r.statusText }));
    if (!r.ok) {
      panel.message(data.error || `HTTP ${r.status}`, "error");
      return setTimeout(poll, 5000);
    }
    show(data);
    if (["done", "failed", "cancelled", "interrupted"].includes(data.state)) {
      if (box.dataset.final !== "1") window.location.reload();
      return;
    }
    setTimeout(poll, 1500);
  }
  poll();
})();
