// Annotation canvas: zoom/pan, draw/move/resize/delete boxes, undo/redo, autosave with revisions.
// Boxes are kept in original-image pixels; the view transform is screen = image * zoom + offset.
"use strict";
(function () {
  const cfg = JSON.parse(document.getElementById("annotate-data").textContent);
  const canvas = document.getElementById("canvas");
  if (!canvas) return;
  const ctx = canvas.getContext("2d");
  const HANDLE = 7;
  const S = {
    index: 0, image: null, doc: { revision: 0, boxes: [], negative: false }, selected: -1,
    classId: cfg.classes.length ? cfg.classes[0] : 0, zoom: 1, ox: 0, oy: 0, undo: [], redo: [], drag: null, proposals: [],
    saving: false, pending: false, dirty: false, loading: true, loadSeq: 0,
  };
  window.annotator = S;
  const $ = (id) => document.getElementById(id);
  const api = (id, tail) => "/panel/api/projects/" + cfg.slug + "/images/" + id + tail;
  const current = () => cfg.images[S.index];

  function status(text, isError) { const el = $("save-state"); el.textContent = text; el.className = isError ? "error" : "muted"; }
  function progress() {
    const done = cfg.images.filter((m) => m.annotated).length;
    $("progress").textContent = "annotated " + done + "/" + cfg.images.length;
    $("position").textContent = (S.index + 1) + " / " + cfg.images.length;
  }
  function resize() {
    const r = canvas.getBoundingClientRect();
    canvas.width = Math.max(1, Math.round(r.width)); canvas.height = Math.max(1, Math.round(r.height));
  }
  function fit() {
    if (!S.image) return;
    resize();
    const m = current();
    S.zoom = Math.min(canvas.width / m.width, canvas.height / m.height) * 0.98;
    S.ox = (canvas.width - m.width * S.zoom) / 2; S.oy = (canvas.height - m.height * S.zoom) / 2;
    draw();
  }
  const toImage = (x, y) => [(x - S.ox) / S.zoom, (y - S.oy) / S.zoom];
  function zoomAt(factor, sx, sy) {
    const [ix, iy] = toImage(sx, sy);
    S.zoom = Math.min(40, Math.max(0.02, S.zoom * factor));
    S.ox = sx - ix * S.zoom; S.oy = sy - iy * S.zoom; draw();
  }

  function drawBox(b, color, dashed, selected) {
    const x = b.x1 * S.zoom + S.ox, y = b.y1 * S.zoom + S.oy, w = (b.x2 - b.x1) * S.zoom, h = (b.y2 - b.y1) * S.zoom;
    ctx.setLineDash(dashed ? [6, 4] : []); ctx.lineWidth = selected ? 3 : 2; ctx.strokeStyle = color;
    ctx.strokeRect(x, y, w, h);
    if (selected) {
      ctx.fillStyle = color;
      for (const [hx, hy] of [[x, y], [x + w, y], [x, y + h], [x + w, y + h]]) ctx.fillRect(hx - HANDLE / 2, hy - HANDLE / 2, HANDLE, HANDLE);
    }
    ctx.setLineDash([]);
  }
  function draw() {
    ctx.fillStyle = "#20242c"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (!S.image) return;
    ctx.imageSmoothingEnabled = S.zoom < 2;
    ctx.drawImage(S.image, S.ox, S.oy, current().width * S.zoom, current().height * S.zoom);
    S.doc.boxes.forEach((b, i) => drawBox(b, cfg.colors[b.class_id] || "#fff", false, i === S.selected));
    S.proposals.forEach((b) => drawBox(b, cfg.colors[b.class_id] || "#fff", true, false));
    if (S.drag && S.drag.kind === "new") drawBox(S.drag.box, cfg.colors[S.classId] || "#fff", false, false);
  }

  async function load(index) {
    if (S.dirty || S.saving) await flush();
    const token = ++S.loadSeq;  // a newer navigation wins; stale responses are dropped
    S.loading = true; S.image = null;
    S.index = index; S.selected = -1; S.undo = []; S.redo = []; S.proposals = [];
    const m = current();
    $("file-name").textContent = m.file_name;
    history.replaceState(null, "", "?image=" + m.id);
    progress(); toggleProposalButtons(); draw();
    const r = await panel.send(api(m.id, "/annotation"), "GET");
    if (token !== S.loadSeq) return;
    if (!r.ok) { status(r.data.error || "could not load the boxes", true); return; }
    const img = new Image();
    img.onload = () => {
      if (token !== S.loadSeq) return;
      S.doc = r.data; $("negative").checked = !!S.doc.negative;
      S.image = img; S.loading = false; fit(); status("rev " + S.doc.revision);
    };
    img.onerror = () => status("the image could not be shown: reload the page", true);
    img.src = api(m.id, "/display.jpg");
  }
  function step(delta) {
    const only = $("only-unannotated").checked;
    for (let i = S.index + delta; i >= 0 && i < cfg.images.length; i += delta) {
      if (!only || !cfg.images[i].annotated) { load(i); return; }
    }
    status(only ? "no more unannotated images this way" : "no more images this way");
  }

  // Changes: snapshot for undo, then save at once. Saves are serialised so revisions chain.
  const snapshot = () => JSON.stringify({ boxes: S.doc.boxes, negative: S.doc.negative });
  function change(mutator) {
    if (S.loading) return;
    S.undo.push(snapshot()); S.redo = [];
    mutator(); S.dirty = true; draw(); save();
  }
  function restore(from, to) {
    if (S.loading || !from.length) return;
    to.push(snapshot());
    const s = JSON.parse(from.pop());
    S.doc.boxes = s.boxes; S.doc.negative = s.negative; $("negative").checked = s.negative;
    S.selected = -1; S.dirty = true; draw(); save();
  }
  async function save() {
    if (S.saving) { S.pending = true; return; }
    S.saving = true; S.pending = false; S.dirty = false;
    const m = current();
    status("saving…");
    const body = { revision: S.doc.revision, boxes: S.doc.boxes.map(({ x1, y1, x2, y2, class_id }) => ({ x1, y1, x2, y2, class_id })), negative: S.doc.negative };
    const r = await panel.send(api(m.id, "/annotation"), "PUT", body);
    S.saving = false;
    if (r.status === 409) {
      panel.message("This image was changed in another tab or by someone else, so your last change was not saved. Reloaded the latest boxes (revision " + r.data.current.revision + ").", "error");
      S.doc = r.data.current; S.undo = []; S.redo = []; S.pending = false; S.selected = -1;
      $("negative").checked = !!S.doc.negative; draw(); status("reloaded after a conflict", true); return;
    }
    if (!r.ok) { status("not saved: " + (r.data.error || r.status), true); panel.message("Not saved: " + (r.data.error || r.status), "error"); return; }
    S.doc.revision = r.data.revision;
    m.annotated = r.data.boxes.length > 0 || r.data.negative;
    progress(); status("saved · rev " + S.doc.revision);
    if (S.pending) save();
  }
  async function flush() { while (S.saving) await new Promise((ok) => setTimeout(ok, 30)); if (S.dirty) await save(); }

  function hit(ix, iy) {
    const tol = HANDLE / S.zoom;
    for (let i = S.doc.boxes.length - 1; i >= 0; i--) {
      const b = S.doc.boxes[i];
      for (const [cx, cy, corner] of [[b.x1, b.y1, "tl"], [b.x2, b.y1, "tr"], [b.x1, b.y2, "bl"], [b.x2, b.y2, "br"]]) {
        if (Math.abs(ix - cx) <= tol && Math.abs(iy - cy) <= tol) return { i, corner };
      }
    }
    for (let i = S.doc.boxes.length - 1; i >= 0; i--) {
      const b = S.doc.boxes[i];
      if (ix >= b.x1 && ix <= b.x2 && iy >= b.y1 && iy <= b.y2) return { i, corner: null };
    }
    return null;
  }
  function clampBox(b) {
    const m = current();
    const x1 = Math.max(0, Math.min(b.x1, b.x2)), x2 = Math.min(m.width, Math.max(b.x1, b.x2));
    const y1 = Math.max(0, Math.min(b.y1, b.y2)), y2 = Math.min(m.height, Math.max(b.y1, b.y2));
    const r = (v) => Math.round(v * 100) / 100;
    return { x1: r(x1), y1: r(y1), x2: r(x2), y2: r(y2), class_id: b.class_id };
  }
  function pointer(e) { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }

  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  canvas.addEventListener("mousedown", (e) => {
    canvas.focus();
    if (S.loading) return;
    const [sx, sy] = pointer(e); const [ix, iy] = toImage(sx, sy);
    if (e.button === 2 || e.button === 1 || e.shiftKey) { S.drag = { kind: "pan", sx, sy, ox: S.ox, oy: S.oy }; return; }
    const proposal = S.proposals.findIndex((b) => ix >= b.x1 && ix <= b.x2 && iy >= b.y1 && iy <= b.y2);
    if (proposal >= 0) { const [p] = S.proposals.splice(proposal, 1); change(() => S.doc.boxes.push(clampBox(p))); toggleProposalButtons(); return; }
    const h = hit(ix, iy);
    if (h) {
      S.selected = h.i;
      const b = S.doc.boxes[h.i];
      S.drag = { kind: h.corner ? "resize" : "move", corner: h.corner, ix, iy, orig: { ...b }, before: snapshot(), moved: false };
    } else {
      S.selected = -1;
      S.drag = { kind: "new", ix, iy, box: { x1: ix, y1: iy, x2: ix, y2: iy, class_id: S.classId } };
    }
    draw();
  });
  window.addEventListener("mousemove", (e) => {
    if (!S.drag) return;
    const [sx, sy] = pointer(e); const [ix, iy] = toImage(sx, sy); const d = S.drag;
    if (d.kind === "pan") { S.ox = d.ox + sx - d.sx; S.oy = d.oy + sy - d.sy; }
    else if (d.kind === "new") { d.box.x2 = ix; d.box.y2 = iy; }
    else {
      const b = S.doc.boxes[S.selected], o = d.orig, dx = ix - d.ix, dy = iy - d.iy; d.moved = true;
      if (d.kind === "move") { b.x1 = o.x1 + dx; b.x2 = o.x2 + dx; b.y1 = o.y1 + dy; b.y2 = o.y2 + dy; }
      else {
        if (d.corner.includes("l")) b.x1 = o.x1 + dx; else b.x2 = o.x2 + dx;
        if (d.corner.includes("t")) b.y1 = o.y1 + dy; else b.y2 = o.y2 + dy;
      }
    }
    draw();
  });
  window.addEventListener("mouseup", () => {
    const d = S.drag; S.drag = null;
    if (!d) return;
    if (d.kind === "new") {
      const b = clampBox(d.box);
      if ((b.x2 - b.x1) * S.zoom >= 4 && (b.y2 - b.y1) * S.zoom >= 4) {
        change(() => { S.doc.boxes.push(b); S.selected = S.doc.boxes.length - 1; });
      } else draw();
    } else if ((d.kind === "move" || d.kind === "resize") && d.moved) {
      S.undo.push(d.before); S.redo = [];
      S.doc.boxes[S.selected] = clampBox(S.doc.boxes[S.selected]); S.dirty = true; draw(); save();
    }
  });
  canvas.addEventListener("wheel", (e) => { e.preventDefault(); const [sx, sy] = pointer(e); zoomAt(e.deltaY < 0 ? 1.15 : 1 / 1.15, sx, sy); }, { passive: false });

  // Class ids are stable ids (cfg.classes, in list order), not positions: keys 1-9 pick by position.
  function setClass(id) {
    if (!cfg.classes.includes(id)) return;
    S.classId = id; $("class-picker").value = String(id);
    if (S.selected >= 0 && S.doc.boxes[S.selected].class_id !== id) change(() => { S.doc.boxes[S.selected].class_id = id; });
  }
  function deleteSelected() { if (S.selected >= 0) change(() => { S.doc.boxes.splice(S.selected, 1); S.selected = -1; }); }
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    const k = e.key;
    if ((e.ctrlKey || e.metaKey) && (k === "z" || k === "Z")) { e.preventDefault(); if (e.shiftKey) restore(S.redo, S.undo); else restore(S.undo, S.redo); return; }
    if ((e.ctrlKey || e.metaKey) && (k === "y" || k === "Y")) { e.preventDefault(); restore(S.redo, S.undo); return; }
    if (k === "ArrowLeft") { e.preventDefault(); step(-1); }
    else if (k === "ArrowRight") { e.preventDefault(); step(1); }
    else if (k === "+" || k === "=") zoomAt(1.25, canvas.width / 2, canvas.height / 2);
    else if (k === "-" || k === "_") zoomAt(0.8, canvas.width / 2, canvas.height / 2);
    else if (k === "Delete" || k === "Backspace") { e.preventDefault(); deleteSelected(); }
    else if (/^[1-9]$/.test(k)) setClass(cfg.classes[Number(k) - 1]);
    else if (k === "Escape") { S.selected = -1; draw(); }
  });

  function toggleProposalButtons() { const el = $("proposal-actions"); if (el) el.hidden = S.proposals.length === 0; }
  if ($("preannotate")) {
    $("preannotate").addEventListener("click", async () => {
      status("asking the model…");
      const r = await panel.send(api(current().id, "/preannotate"), "POST");
      if (!r.ok) { panel.message(r.data.error || "pre-annotation failed", "error"); status(""); return; }
      S.proposals = r.data.proposals; draw(); toggleProposalButtons();
      status(S.proposals.length + " proposals from " + r.data.model + ": click one to accept it");
    });
    $("accept-all").addEventListener("click", () => { const p = S.proposals; S.proposals = []; change(() => p.forEach((b) => S.doc.boxes.push(clampBox(b)))); toggleProposalButtons(); });
    $("reject-all").addEventListener("click", () => { S.proposals = []; draw(); toggleProposalButtons(); });
  }
  $("prev").addEventListener("click", () => step(-1));
  $("next").addEventListener("click", () => step(1));
  $("zoom-in").addEventListener("click", () => zoomAt(1.25, canvas.width / 2, canvas.height / 2));
  $("zoom-out").addEventListener("click", () => zoomAt(0.8, canvas.width / 2, canvas.height / 2));
  $("zoom-fit").addEventListener("click", fit);
  $("undo").addEventListener("click", () => restore(S.undo, S.redo));
  $("redo").addEventListener("click", () => restore(S.redo, S.undo));
  $("class-picker").addEventListener("change", (e) => setClass(Number(e.target.value)));
  $("negative").addEventListener("change", (e) => {
    if (S.loading) { e.target.checked = !!S.doc.negative; return; }
    change(() => { S.doc.negative = e.target.checked; });
  });
  $("only-unannotated").addEventListener("change", (e) => { if (e.target.checked && current().annotated) step(1); });
  window.addEventListener("resize", fit);
  window.addEventListener("beforeunload", (e) => { if (S.dirty || S.saving) { e.preventDefault(); e.returnValue = ""; } });
  const start = cfg.images.findIndex((m) => m.id === cfg.start);
  load(start >= 0 ? start : 0);
})();
