// Small helpers shared by every panel page: CSRF-carrying fetch, messages, confirmations.
"use strict";
window.panel = {
  csrf() { return document.querySelector('meta[name="csrf-token"]').content; },
  async send(url, method, body, isForm) {
    const headers = { "X-CSRF-Token": panel.csrf() };
    if (!isForm && body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : (isForm ? body : JSON.stringify(body)),
    });
    let data = {};
    try { data = await response.json(); } catch (e) { data = { error: response.statusText }; }
    return { ok: response.ok, status: response.status, data };
  },
  message(text, kind) {
    let box = document.getElementById("page-message");
    if (!box) {
      box = document.createElement("div");
      box.id = "page-message";
      document.querySelector("main").prepend(box);
    }
    box.className = "flash " + (kind || "");
    box.setAttribute("role", "alert");
    box.textContent = text;
  },
};

// Any form or button with data-confirm asks first, saying what goes with the deletion.
document.addEventListener("submit", (e) => {
  const text = (e.submitter && e.submitter.dataset.confirm) || (e.target.dataset && e.target.dataset.confirm);
  if (text && !window.confirm(text)) e.preventDefault();
}, true);
