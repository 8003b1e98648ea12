// Annotation page: zoom/pan, draw/move/resize/delete boxes, undo/redo, autosave with revisions,
// model proposals (accepted one by one or in bulk), image deletion. Drawing lives in view.js.
// Boxes are kept in original-image pixels; the view transform is screen = image * zoom + offset.
// Two classes are never confused: S.classId is the class of the NEXT box drawn; the selected
// box (clicked, never just drawn) shows and changes its own class.
"use strict";
(function () {
  const cfg = JSON.parse(document.getElementById("annotate-data").textContent);
  const canvas = document.getElementById("canvas");
  if (!canvas) return;
  const view = window.AnnotateView(canvas, cfg);
  const HANDLE = 7;
  const S = {
    index: 0, doc: { revision: 0, boxes: [], negative: false }, selected: -1,
    classId: cfg.classes.length ? cfg.classes[0] : 0, undo: [], redo: [], drag: null, proposals: [],
    saving: false, pending: false, dirty: false, loading: true, loadSeq: 0, view,
  };
  window.annotator = S;
  const $ = (id) => document.getElementById(id);
  const api = (id, tail) => "/panel/api/projects/" + cfg.slug + "/images/" + id + tail;
  const current = () => cfg.images[S.index];
  const plural = (n, noun, many) => n + " " + (n === 1 ? noun : (many || noun + "s"));

  let frame = 0;
  function draw() { if (!frame) frame = requestAnimationFrame(() => { frame = 0; view.render(S); }); }
  S.redraw = () => view.render(S);  // synchronous, for measurements

  function status(text, isError) { const el = $("save-state"); el.textContent = text; el.className = isError ? "error" : "muted"; }
  function progress() {
    const done = cfg.images.filter((m) => m.annotated).length;
    $("progress").textContent = "annotated " + done + "/" + cfg.images.length;
    $("position").textContent = cfg.images.length ? (S.index + 1) + " / " + cfg.images.length : "0 / 0";
  }
  function legend() {
    const counts = {};
    for (const b of S.doc.boxes) counts[b.class_id] = (counts[b.class_id] || 0) + 1;
    for (const el of document.querySelectorAll("#legend .item")) el.querySelector(".count").textContent = counts[el.dataset.class] || 0;
  }
  function classPanel() {
    $("class-picker").value = String(S.classId);
    $("next-swatch").style.background = cfg.colors[String(S.classId)] || "#fff";
    const box = S.selected >= 0 ? S.doc.boxes[S.selected] : null;
    $("selected-picker").disabled = !box; $("selected-picker").value = box ? String(box.class_id) : "";
    $("selected-group").className = box ? "" : "muted";
    $("selected-swatch").style.background = box ? cfg.colors[String(box.class_id)] || "#fff" : "transparent";
  }
  function select(i) { S.selected = i; classPanel(); draw(); }
  function fit() {
    const r = canvas.getBoundingClientRect();
    canvas.width = Math.max(1, Math.round(r.width)); canvas.height = Math.max(1, Math.round(r.height));
    view.thaw();
    if (!view.image) { draw(); return; }
    const m = current();
    view.zoom = Math.min(canvas.width / m.width, canvas.height / m.height) * 0.98;
    view.ox = (canvas.width - m.width * view.zoom) / 2; view.oy = (canvas.height - m.height * view.zoom) / 2;
    draw();
  }
  function zoomAt(factor, sx, sy) {
    const [ix, iy] = view.toImage(sx, sy);
    view.zoom = Math.min(40, Math.max(0.01, view.zoom * factor));
    view.ox = sx - ix * view.zoom; view.oy = sy - iy * view.zoom; draw();
  }

  async function load(index) {
    if (S.dirty || S.saving) await flush();
    const token = ++S.loadSeq;  // a newer navigation wins; stale responses are dropped
    S.loading = true; view.clear();
    S.index = index; S.undo = []; S.redo = []; S.proposals = []; S.doc = { revision: 0, boxes: [], negative: false };
    select(-1); toggleProposals();
    const m = current();
    $("file-name").textContent = m.file_name; $("file-name").title = m.file_name + " (" + m.width + "x" + m.height + ")";
    history.replaceState(null, "", "?image=" + m.id);
    $("qupath-download").href = api(m.id, "/objects.geojson");
    progress(); legend();
    const r = await panel.send(api(m.id, "/annotation"), "GET");
    if (token !== S.loadSeq) return;
    if (!r.ok) { status(r.data.error || "could not load the boxes", true); return; }
    const img = new Image();
    img.onload = () => {
      if (token !== S.loadSeq) return;
      S.doc = r.data; $("negative").checked = !!S.doc.negative;
      view.setImage(img, m.width, m.height); S.loading = false; legend(); fit(); status("rev " + S.doc.revision);
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
  function change(mutator, before) {
    if (S.loading) return;
    S.undo.push(before || snapshot()); S.redo = [];
    mutator(); S.dirty = true; legend(); classPanel(); draw(); save();
  }
  function restore(from, to) {
    if (S.loading || !from.length) return;
    to.push(snapshot());
    const s = JSON.parse(from.pop());
    S.doc.boxes = s.boxes; S.doc.negative = s.negative; $("negative").checked = s.negative;
    S.dirty = true; select(-1); legend(); save();
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
      S.doc = r.data.current; S.undo = []; S.redo = []; S.pending = false;
      $("negative").checked = !!S.doc.negative; select(-1); legend(); status("reloaded after a conflict", true); return;
    }
    if (!r.ok) { status("not saved: " + (r.data.error || r.status), true); panel.message("Not saved: " + (r.data.error || r.status), "error"); return; }
    S.doc.revision = r.data.revision;
    m.annotated = r.data.boxes.length > 0 || r.data.negative;
    progress(); status("saved · rev " + S.doc.revision);
    if (S.pending) save();
  }
  async function flush() { while (S.saving) await new Promise((ok) => setTimeout(ok, 30)); if (S.dirty) await save(); }

  function hit(ix, iy) {
    const tol = HANDLE / view.zoom, boxes = S.doc.boxes;
    if (S.selected >= 0) {  // the selected box's corners first: resizing it must win over a neighbour
      const b = boxes[S.selected];
      for (const [cx, cy, corner] of [[b.x1, b.y1, "tl"], [b.x2, b.y1, "tr"], [b.x1, b.y2, "bl"], [b.x2, b.y2, "br"]]) {
        if (Math.abs(ix - cx) <= tol && Math.abs(iy - cy) <= tol) return { i: S.selected, corner };
      }
    }
    let best = -1, area = Infinity;  // the smallest box under the pointer: nested objects stay reachable
    for (let i = boxes.length - 1; i >= 0; i--) {
      const b = boxes[i];
      if (ix >= b.x1 && ix <= b.x2 && iy >= b.y1 && iy <= b.y2 && (b.x2 - b.x1) * (b.y2 - b.y1) < area) { best = i; area = (b.x2 - b.x1) * (b.y2 - b.y1); }
    }
    return best >= 0 ? { i: best, corner: null } : null;
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
    const [sx, sy] = pointer(e); const [ix, iy] = view.toImage(sx, sy);
    if (e.button === 2 || e.button === 1 || e.shiftKey) { S.drag = { kind: "pan", sx, sy, ox: view.ox, oy: view.oy }; view.freezePan(S); return; }
    const proposal = S.proposals.findIndex((b) => ix >= b.x1 && ix <= b.x2 && iy >= b.y1 && iy <= b.y2);
    if (proposal >= 0) {
      const [p] = S.proposals.splice(proposal, 1);
      if (annotated(p)) { draw(); status("that box is already annotated: left out"); } else change(() => S.doc.boxes.push(clampBox(p)));
      toggleProposals(); return;
    }
    const h = hit(ix, iy);
    if (h) {
      select(h.i);
      S.drag = { kind: h.corner ? "resize" : "move", corner: h.corner, ix, iy, orig: { ...S.doc.boxes[h.i] }, before: snapshot(), moved: false };
      view.freeze(S, h.i);
    } else {
      select(-1);
      S.drag = { kind: "new", ix, iy, box: { x1: ix, y1: iy, x2: ix, y2: iy, class_id: S.classId } };
      view.freeze(S, -1);
    }
    draw();
  });
  window.addEventListener("mousemove", (e) => {
    if (!S.drag) return;
    const [sx, sy] = pointer(e); const [ix, iy] = view.toImage(sx, sy); const d = S.drag;
    if (d.kind === "pan") { view.ox = d.ox + sx - d.sx; view.oy = d.oy + sy - d.sy; }
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
    view.thaw();
    if (d.kind === "new") {
      const b = clampBox(d.box);  // the new box is NOT selected: number keys keep choosing the next class
      if ((b.x2 - b.x1) * view.zoom >= 4 && (b.y2 - b.y1) * view.zoom >= 4) change(() => S.doc.boxes.push(b));
      else draw();
    } else if ((d.kind === "move" || d.kind === "resize") && d.moved) {
      const i = S.selected;
      change(() => { S.doc.boxes[i] = clampBox(S.doc.boxes[i]); }, d.before);
    } else draw();
  });
  canvas.addEventListener("wheel", (e) => { e.preventDefault(); const [sx, sy] = pointer(e); zoomAt(e.deltaY < 0 ? 1.15 : 1 / 1.15, sx, sy); }, { passive: false });

  // Class ids are stable ids (cfg.classes, in list order), not positions: keys 1-9 pick by position.
  function setNextClass(id) { if (cfg.classes.includes(id)) { S.classId = id; classPanel(); } }
  function setSelectedClass(id) {
    const i = S.selected;
    if (i < 0 || !cfg.classes.includes(id) || S.doc.boxes[i].class_id === id) return;
    change(() => { S.doc.boxes[i].class_id = id; });
  }
  function deleteSelected() { const i = S.selected; if (i >= 0) { S.selected = -1; change(() => S.doc.boxes.splice(i, 1)); } }
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    const k = e.key;
    if ((e.ctrlKey || e.metaKey) && (k === "z" || k === "Z")) { e.preventDefault(); if (e.shiftKey) restore(S.redo, S.undo); else restore(S.undo, S.redo); return; }
    if ((e.ctrlKey || e.metaKey) && (k === "y" || k === "Y")) { e.preventDefault(); restore(S.redo, S.undo); return; }
    if (k === "ArrowLeft") { e.preventDefault(); step(-1); }
    else if (k === "ArrowRight") { e.preventDefault(); step(1); }
    else if (k === "+" || k === "=") zoomAt(1.25, canvas.width / 2, canvas.height / 2);
    else if (k === "-" || k === "_") zoomAt(0.8, canvas.width / 2, canvas.height / 2);
    else if (k === "0") fit();
    else if (k === "Delete" || k === "Backspace") { e.preventDefault(); deleteSelected(); }
    else if (/^[1-9]$/.test(k)) {
      const id = cfg.classes[Number(k) - 1];
      if (S.selected >= 0) setSelectedClass(id); else setNextClass(id);
    } else if (k === "Escape") select(-1);
  });

  // Model proposals: dashed until accepted; in bulk by score and class, or one click each.
  function toggleProposals() {
    const el = $("proposal-actions");
    if (!el) return;
    el.hidden = S.proposals.length === 0;
    $("proposal-count").textContent = plural(S.proposals.length, "proposal") + " left";
  }
  function iou(a, b) {
    const w = Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1), h = Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1);
    const inter = w > 0 && h > 0 ? w * h : 0;
    const union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter;
    return union > 0 ? inter / union : 0;
  }
  // the same rule as the server's (annotate/__init__.py new_proposals): a proposal on top of a box of
  // its class is that box again (boxes drawn or accepted since the proposals came are not doubled)
  const annotated = (p) => S.doc.boxes.some((b) => b.class_id === p.class_id && iou(b, p) >= 0.5);
  function accept(test) {
    const taken = S.proposals.filter(test);
    if (!taken.length) { status("no proposal matches"); return; }
    S.proposals = S.proposals.filter((p) => !test(p));
    const fresh = [];
    taken.forEach((p) => { if (!annotated(p) && !fresh.some((f) => f.class_id === p.class_id && iou(f, p) >= 0.5)) fresh.push(p); });
    if (fresh.length) change(() => fresh.forEach((b) => S.doc.boxes.push(clampBox(b))));
    const skipped = taken.length - fresh.length;
    toggleProposals(); draw();
    status("accepted " + plural(fresh.length, "box", "boxes") + (skipped ? " (" + skipped + " already annotated, left out)" : ""));
  }
  if ($("preannotate")) {
    $("preannotate").addEventListener("click", async () => {
      status("asking the model…");
      const r = await panel.send(api(current().id, "/preannotate"), "POST");
      if (!r.ok) { panel.message(r.data.error || "pre-annotation failed", "error"); status(""); return; }
      S.proposals = r.data.proposals; draw(); toggleProposals();
      const known = r.data.already_annotated ? " (" + r.data.already_annotated + " already annotated, not proposed again)" : "";
      status(plural(S.proposals.length, "proposal") + " from " + r.data.model + known + (S.proposals.length ? ": accept them in bulk or click one" : ""));
    });
    $("accept-matching").addEventListener("click", () => {
      const score = Number($("accept-score").value) || 0, cls = $("accept-class").value;
      accept((p) => p.score >= score && (cls === "" || String(p.class_id) === cls));
    });
    $("accept-all").addEventListener("click", () => accept(() => true));
    $("reject-all").addEventListener("click", () => { S.proposals = []; draw(); toggleProposals(); });
  }

  $("delete-image").addEventListener("click", async () => {
    const m = current();
    if (!window.confirm("Delete image " + m.file_name + " with its " + plural(S.doc.boxes.length, "box", "boxes") + "? This cannot be undone.")) return;
    await flush();
    const r = await panel.send(api(m.id, ""), "DELETE");
    if (!r.ok) { panel.message(r.data.error || "the image was not deleted", "error"); return; }
    cfg.images.splice(S.index, 1);
    panel.message("Deleted " + m.file_name + (r.data.boxes ? " and its " + plural(r.data.boxes, "box", "boxes") : "") + ".", "ok");
    if (!cfg.images.length) { window.location.reload(); return; }
    load(Math.min(S.index, cfg.images.length - 1));
  });
  $("prev").addEventListener("click", () => step(-1));
  $("next").addEventListener("click", () => step(1));
  $("zoom-in").addEventListener("click", () => zoomAt(1.25, canvas.width / 2, canvas.height / 2));
  $("zoom-out").addEventListener("click", () => zoomAt(0.8, canvas.width / 2, canvas.height / 2));
  $("zoom-fit").addEventListener("click", fit);
  $("undo").addEventListener("click", () => restore(S.undo, S.redo));
  $("redo").addEventListener("click", () => restore(S.redo, S.undo));
  $("class-picker").addEventListener("change", (e) => { setNextClass(Number(e.target.value)); canvas.focus(); });
  $("selected-picker").addEventListener("change", (e) => { setSelectedClass(Number(e.target.value)); canvas.focus(); });
  $("negative").addEventListener("change", (e) => {
    if (S.loading) { e.target.checked = !!S.doc.negative; return; }
    change(() => { S.doc.negative = e.target.checked; });
  });
  $("only-unannotated").addEventListener("change", (e) => { if (e.target.checked && current().annotated) step(1); });
  window.addEventListener("resize", fit);
  window.addEventListener("beforeunload", (e) => { if (S.dirty || S.saving) { e.preventDefault(); e.returnValue = ""; } });
  const start = cfg.images.findIndex((m) => m.id === cfg.start);
  classPanel();
  load(start >= 0 ? start : 0);
})();
