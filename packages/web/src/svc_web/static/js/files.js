// Files: resumable upload (tus 1.0.0: creation then PATCH chunks, resumed from the server's
// offset after a break) with a progress bar, list, download, delete; 413 and 415 in words.
import * as api from "./api.js";
import { $, el, busy, fail, say, when } from "./ui.js";

const CHUNK = 1024 * 1024;
const TUS = { "Tus-Resumable": "1.0.0" };
let cursor = null;

const EXPLAIN = {
  413: "That file is too large for the platform (the limit is 50 MiB unless configured otherwise).",
  415: "That type of file is not accepted. Allowed: PNG, JPEG, GIF, WebP, PDF, ZIP, plain text, CSV and JSON.",
  422: "That file is empty: there is nothing to upload.",
};

function uploadError(request) {
  if (EXPLAIN[request.status]) return new api.ApiError(EXPLAIN[request.status], { status: request.status });
  return api.xhrError(request);
}

function size(n) {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

function progress(done, total) {
  const pct = total ? Math.floor((done / total) * 100) : 0;
  $("#upload-progress").value = pct;
  $("#upload-percent").textContent = `${pct}%`;
}

function metadata(name) {
  const bytes = new TextEncoder().encode(name);
  return `filename ${btoa(String.fromCharCode(...bytes))}`;
}

async function withToken(call) {
  // one retry after a renewal when the access token was refused (expired)
  const first = await call();
  if (first.status !== 401) return first;
  await api.refresh();
  return call();
}

async function upload(file) {
  if (file.size === 0) throw new api.ApiError(EXPLAIN[422]);
  progress(0, file.size);
  const created = await withToken(() => api.xhr("POST", "/files/uploads", null, { ...TUS, "Upload-Length": String(file.size), "Upload-Metadata": metadata(file.name) }));
  if (created.status !== 201) throw uploadError(created);
  const id = created.getResponseHeader("Location").split("/").pop();
  let offset = 0;
  let breaks = 0;
  while (offset < file.size) {
    const chunk = file.slice(offset, offset + CHUNK);
    const start = offset;
    try {
      const sent = await withToken(() => api.xhr("PATCH", `/files/uploads/${id}`, chunk,
        { ...TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": String(start) },
        (loaded) => progress(start + loaded, file.size)));
      if (sent.status === 409 || sent.status >= 500) throw new api.ApiError("resync");
      if (sent.status !== 204) throw uploadError(sent);
      offset = Number(sent.getResponseHeader("Upload-Offset"));
      breaks = 0;
    } catch (err) {
      if (err.status || breaks >= 5) throw err.message === "resync" ? new api.ApiError("The upload kept failing. Try again later.") : err;
      // a break: ask the server how much it kept, and go on from there
      breaks += 1;
      say("Connection lost; resuming the upload…");
      await new Promise((r) => setTimeout(r, 1000 * breaks));
      const head = await withToken(() => api.xhr("HEAD", `/files/uploads/${id}`, null, TUS));
      if (head.status !== 200) throw new api.ApiError("The upload could not be resumed. Start it again.");
      offset = Number(head.getResponseHeader("Upload-Offset"));
      say("Uploading…");
    }
    progress(offset, file.size);
  }
  return api.send("GET", `/files/${id}`);
}

async function download(file) {
  const response = await withToken(() => fetch(`${api.base()}/files/${file.id}/content`, { headers: { Authorization: `Bearer ${api.token()}` } }));
  if (!response.ok) throw new api.ApiError(api.describe(response.status, await response.json().catch(() => null)));
  const url = URL.createObjectURL(await response.blob());
  const a = el("a", { href: url, download: file.filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function item(file) {
  const node = el("li", { "data-file": file.id },
    el("div", { class: "row" }, el("strong", { text: file.filename }), el("span", { class: "muted", text: `${file.content_type}, ${size(file.size)}, ${when(file.created_at)}` })),
    el("div", { class: "row" }),
  );
  const actions = node.lastChild;
  const dl = el("button", { type: "button", text: "Download", "aria-label": `Download ${file.filename}` });
  dl.addEventListener("click", () => busy(dl, "Downloading…", () => download(file)));
  const del = el("button", { type: "button", class: "secondary", text: "Delete", "aria-label": `Delete ${file.filename}` });
  del.addEventListener("click", () => busy(del, "Deleting…", async () => {
    await api.send("DELETE", `/files/${file.id}`);
    node.remove();
  }));
  actions.append(dl, del);
  return node;
}

async function load(more = false) {
  const q = more && cursor ? `&cursor=${encodeURIComponent(cursor)}` : "";
  const page = await api.send("GET", `/files?limit=10${q}`);
  if (!more) $("#file-list").replaceChildren();
  page.items.forEach((f) => $("#file-list").append(item(f)));
  cursor = page.next_cursor;
  $("#files-more").hidden = !cursor;
}

export function show() {
  return load().catch(fail);
}

export function init() {
  $("#files-more").addEventListener("click", (e) => busy(e.target, "Loading older files…", () => load(true)));
  $("#upload-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const form = e.target;
    const file = form.file.files[0];
    if (!file) return;
    busy(form.querySelector("button"), "Uploading…", async () => {
      const stored = await upload(file);
      $("#file-list").prepend(item(stored));
      form.file.value = "";
    });
  });
}

export function reset() {
  $("#file-list").replaceChildren();
  progress(0, 0);
}
