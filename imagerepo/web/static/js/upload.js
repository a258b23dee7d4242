// Uploads: one multipart POST /images per file (XMLHttpRequest, for its upload progress), two
// at a time, each with its own row: preview, progress bar, and the outcome or the server's
// refusal (not an image, too large, invalid, over quota) next to the file.

import { csrfHeader, ensureFreshAccess, refreshAccess } from "./session.js";
import { el, formatBytes } from "./images.js";

const PARALLEL = 2;
const maxBytes = Number(document.body.dataset.maxUploadBytes || 0);
const queue = [];
let running = 0;

function post(file, options, onProgress) {
  return new Promise((resolve) => {
    const form = new FormData();
    form.append("file", file, file.name);
    if (options.description) form.append("description", options.description);
    if (options.tags) form.append("tags", options.tags);
    form.append("isPrivate", options.isPrivate ? "1" : "0");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/images");
    for (const [name, value] of Object.entries(csrfHeader())) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      resolve({ status: xhr.status, body });
    });
    // A server that refuses a large body early may close the connection before the browser
    // has read its answer.
    xhr.addEventListener("error", () => resolve({ status: 0, body: null }));
    xhr.send(form);
  });
}

function refusal({ status, body }) {
  const message = body && body.error && body.error.message;
  if (status === 0) return "the connection was closed (is the file too large?)";
  const label = {
    401: "Not logged in",
    413: "Too large",
    415: "Not an image",
    422: "Refused",
    429: "Too many requests",
  }[status] || `Refused (${status})`;
  return message ? `${label}: ${message}` : label;
}

async function run(job) {
  const { file, options, row, onCreated } = job;
  row.status.textContent = "Uploading…";
  await ensureFreshAccess();
  const progress = (fraction) => {
    row.progress.value = Math.round(fraction * 100);
    row.progress.textContent = `${Math.round(fraction * 100)}%`;
  };
  let answer = await post(file, options, progress);
  if (answer.status === 401 && (await refreshAccess())) answer = await post(file, options, progress);
  row.item.classList.remove("pending");
  if (answer.status === 201 && answer.body) {
    row.progress.value = 100;
    row.item.classList.add("done");
    row.status.textContent = "";
    row.status.append("Uploaded · ", el("a", { href: `/view/${answer.body.id}` }, "open"));
    onCreated(answer.body);
  } else {
    row.item.classList.add("failed");
    row.progress.hidden = true;
    row.status.textContent = refusal(answer);
  }
}

function pump() {
  while (running < PARALLEL && queue.length) {
    const job = queue.shift();
    running += 1;
    run(job).finally(() => { running -= 1; pump(); });
  }
}

function rowFor(file, list) {
  const progress = el("progress", { max: 100, value: 0, "aria-label": `Upload of ${file.name}` }, "0%");
  const status = el("span", { class: "upload-status", role: "status" }, "Waiting…");
  const preview = el("span", { class: "upload-preview", "aria-hidden": "true" });
  if (file.type.startsWith("image/") && file.type !== "image/svg+xml" && file.type !== "image/tiff") {
    const url = URL.createObjectURL(file);
    const img = el("img", { src: url, alt: "" });
    img.addEventListener("load", () => URL.revokeObjectURL(url));
    img.addEventListener("error", () => { URL.revokeObjectURL(url); img.remove(); });
    preview.append(img);
  }
  const item = el(
    "li", { class: "upload-item pending" },
    preview,
    el("span", { class: "upload-name" }, file.name),
    el("span", { class: "upload-size" }, formatBytes(file.size)),
    progress,
    status,
  );
  list.prepend(item);
  return { item, progress, status };
}

// Queues `files` (a FileList or array) with the options chosen now.
export function uploadFiles(files, options, list, onCreated) {
  for (const file of files) {
    const row = rowFor(file, list);
    if (maxBytes && file.size > maxBytes) {
      row.item.classList.remove("pending");
      row.item.classList.add("failed");
      row.progress.hidden = true;
      row.status.textContent = `Too large: the limit is ${formatBytes(maxBytes)}`;
      continue;
    }
    queue.push({ file, options, row, onCreated });
  }
  pump();
}
