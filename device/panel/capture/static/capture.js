// Capture page: refresh the preview a few times a second, capture, drag-and-drop upload, delete.
"use strict";
(function () {
  const preview = document.getElementById("preview");
  if (preview) {
    const base = "/snapshot.jpg";
    preview.src = base + "?t=" + Date.now();
    const refresh = () => { preview.src = base + "?t=" + Date.now(); };
    preview.addEventListener("load", () => setTimeout(refresh, 300));
    preview.addEventListener("error", () => setTimeout(refresh, 2000));
  }
  const count = document.getElementById("image-count");
  const grid = document.getElementById("image-grid");
  const slug = grid.dataset.slug;
  const plural = (n, noun, many) => n + " " + (n === 1 ? noun : (many || noun + "s"));
  function setCount(n) {
    count.textContent = n;
    document.getElementById("image-noun").textContent = n === 1 ? "image" : "images";
  }
  // Names of one session share their start ("capture-2026-12-02T10-…"): keep the start and the end,
  // where they differ (time, number, extension); the whole name is the tooltip. Same rule as the page's
  // first render (capture/index.html).
  const shortName = (n) => (n.length <= 24 ? n : n.slice(0, 7) + "…" + n.slice(-16));
  function addThumbs(images) {
    for (const m of images) {
      const a = document.createElement("a");
      a.href = "/panel/annotate?image=" + m.id; a.dataset.id = m.id;
      a.dataset.name = m.file_name;
      a.title = m.file_name + " (" + m.width + "x" + m.height + ", " + m.dtype + ")";
      a.innerHTML = '<img alt=""><span class="name muted"></span><button type="button" class="delete-image" title="delete this image and its boxes">✕</button>';
      a.querySelector("img").src = "/panel/api/projects/" + slug + "/images/" + m.id + "/thumb.jpg";
      a.querySelector("span").textContent = shortName(m.file_name);
      grid.prepend(a);
    }
  }
  grid.addEventListener("click", async (e) => {
    const button = e.target.closest(".delete-image");
    if (!button) return;
    e.preventDefault();
    const a = button.closest("a");
    const name = a.dataset.name;  // the whole name: the thumbnail's label may be shortened
    if (!window.confirm("Delete image " + name + " with its boxes? This cannot be undone.")) return;
    const r = await panel.send("/panel/api/projects/" + slug + "/images/" + a.dataset.id, "DELETE");
    if (!r.ok) { panel.message(r.data.error || "the image was not deleted", "error"); return; }
    a.remove(); setCount(r.data.total);
    panel.message("Deleted " + name + (r.data.boxes ? " and its " + plural(r.data.boxes, "box", "boxes") : "") + ".", "ok");
  });
  const button = document.getElementById("capture-btn");
  if (button) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      const r = await panel.send(button.dataset.url, "POST");
      button.disabled = false;
      if (!r.ok) { panel.message(r.data.error || "capture failed", "error"); return; }
      setCount(r.data.total);
      addThumbs([r.data.image]);
      const m = r.data.image;
      panel.message("Saved " + m.file_name + " (" + m.width + "x" + m.height + ", " + m.dtype + (m.channels === 1 ? ", 1 channel" : ", " + m.channels + " channels") + ")", "ok");
    });
  }
  const zone = document.getElementById("dropzone");
  async function upload(files) {
    if (!files.length) return;
    const form = new FormData();
    for (const f of files) form.append("files", f, f.name);
    panel.message("Uploading " + plural(files.length, "file") + "…");
    const r = await panel.send(zone.dataset.url, "POST", form, true);
    if (!r.ok) {
      panel.message((r.data.error || "upload failed") + (r.data.problems ? "\n" + r.data.problems.join("\n") : ""), "error");
      return;
    }
    setCount(r.data.total);
    addThumbs(r.data.images);
    panel.message("Uploaded " + plural(r.data.images.length, "image") + ".", "ok");
  }
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); upload([...e.dataTransfer.files]); });
  document.getElementById("file-input").addEventListener("change", (e) => upload([...e.target.files]));
})();
