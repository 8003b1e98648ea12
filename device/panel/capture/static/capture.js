// Capture page: refresh the preview a few times a second, capture, and drag-and-drop upload.
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
  function addThumbs(images) {
    const slug = document.getElementById("dropzone").dataset.url.split("/")[4];
    for (const m of images) {
      const a = document.createElement("a");
      a.href = "/panel/annotate?image=" + m.id;
      a.innerHTML = '<img alt=""><span class="muted"></span>';
      a.querySelector("img").src = "/panel/api/projects/" + slug + "/images/" + m.id + "/thumb.jpg";
      a.querySelector("span").textContent = m.file_name;
      grid.prepend(a);
    }
  }
  const button = document.getElementById("capture-btn");
  if (button) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      const r = await panel.send(button.dataset.url, "POST");
      button.disabled = false;
      if (!r.ok) { panel.message(r.data.error || "capture failed", "error"); return; }
      count.textContent = r.data.total;
      addThumbs([r.data.image]);
      panel.message("Saved " + r.data.image.file_name + " (" + r.data.image.width + "x" + r.data.image.height + ", " + r.data.image.dtype + ")", "ok");
    });
  }
  const zone = document.getElementById("dropzone");
  async function upload(files) {
    if (!files.length) return;
    const form = new FormData();
    for (const f of files) form.append("files", f, f.name);
    panel.message("Uploading " + files.length + " file(s)...");
    const r = await panel.send(zone.dataset.url, "POST", form, true);
    if (!r.ok) {
      panel.message((r.data.error || "upload failed") + (r.data.problems ? "\n" + r.data.problems.join("\n") : ""), "error");
      return;
    }
    count.textContent = r.data.total;
    addThumbs(r.data.images);
    panel.message("Uploaded " + r.data.images.length + " image(s).", "ok");
  }
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); upload([...e.dataTransfer.files]); });
  document.getElementById("file-input").addEventListener("change", (e) => upload([...e.target.files]));
})();
