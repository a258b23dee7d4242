// The image page: the image at screen size, its details and tags; for the owner, editing
// (description, tags, private/public, access key), share links (share.js) and delete. Someone else's private image
// opens with its key: /view/<id>?accesskey=<key>.

import { api, currentUser, errorMessage, flash, loadUser, onSessionChange } from "./session.js";
import { altText, displayable, el, formatBytes, formatDate, splitTags } from "./images.js";
import { bindShareLinks, showShareLinks } from "./share.js";

const $ = (id) => document.getElementById(id);
const view = $("image-view");
const imageId = Number(view.dataset.imageId);
const accessKey = new URLSearchParams(location.search).get("accesskey");
let image = null;

// The content URL, with the key when the page was opened with one (an <img> cannot send headers).
function contentUrl(extra = {}) {
  const params = new URLSearchParams(extra);
  if (accessKey) params.set("accesskey", accessKey);
  const query = params.toString();
  return query ? `${image.url}?${query}` : image.url;
}

const isOwner = () => !!(image && currentUser() && currentUser().id === image.creator);

function render() {
  document.title = `${image.name} · ImageRepo`;
  $("image-title").textContent = image.name;
  const full = $("image-full");
  const shown = displayable(image);
  full.hidden = !shown;
  if (shown) {
    const src = contentUrl();
    if (full.getAttribute("src") !== src) full.src = src;
    full.alt = altText(image);
    if (image.width && image.height) { full.width = image.width; full.height = image.height; }
  }
  const unviewable = $("image-unviewable");
  unviewable.hidden = shown;
  unviewable.textContent = shown ? "" : `A browser cannot show ${image.contentType}; download the original to view it.`;
  $("image-description").textContent = image.description;

  const me = currentUser();
  const rows = [
    ["Size", formatBytes(image.size)],
    ["Type", image.contentType],
    ["Dimensions", image.width && image.height ? `${image.width} × ${image.height} px` : "unknown"],
    ["Owner", isOwner() ? `you (${me.name})` : `user #${image.creator}`],
    ["Visibility", image.isPrivate ? "private" : "public"],
    ["Uploaded", formatDate(image.createdAt)],
    ["Changed", formatDate(image.updatedAt)],
    ["SHA-256", el("code", { class: "digest" }, image.sha256)],
  ];
  $("image-meta").replaceChildren(...rows.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
  $("download").href = contentUrl({ download: "1" });

  $("tag-list").replaceChildren(
    ...(image.tags.length
      ? image.tags.map((tag) => el("li", {}, el("a", { class: "tag", href: `/?tag=${encodeURIComponent(tag)}` }, tag)))
      : [el("li", { class: "hint" }, "No tags.")]),
  );
  const owner = isOwner();
  $("tags-form").hidden = !owner;
  $("owner-panel").hidden = !owner;
  if (owner) renderOwner();
}

function renderOwner() {
  if (document.activeElement !== $("tags-input")) $("tags-input").value = image.tags.join(", ");
  if (document.activeElement !== $("description-input")) $("description-input").value = image.description;
  $("private-switch").checked = image.isPrivate;
  $("key-panel").hidden = !image.isPrivate;
  $("access-key").textContent = image.accessKey || "";
  $("key-link").value = image.accessKey
    ? `${location.origin}/view/${image.id}?accesskey=${encodeURIComponent(image.accessKey)}`
    : "";
  $("delete-name").textContent = image.name;
}

async function load() {
  view.setAttribute("aria-busy", "true");
  try {
    await fetchAndRender();
  } finally {
    view.setAttribute("aria-busy", "false");
  }
}

async function fetchAndRender() {
  const headers = accessKey ? { "X-Access-Key": accessKey } : {};
  const response = await api(`/images/${imageId}`, { headers });
  const status = $("image-status");
  if (!response.ok) {
    view.hidden = true;
    // The server answers a wrong key exactly like an absent image (404), so probing ids with
    // keys tells nothing; the page can only say which of the two it might be.
    const why = {
      404: accessKey
        ? "No such image, or the access key is wrong."
        : "No such image, or it is private. Someone else's private image opens with the link its owner shares (with its key).",
      429: "Too many wrong access keys; try again later.",
    }[response.status];
    status.textContent = why || `Could not load the image: ${await errorMessage(response)}`;
    return;
  }
  image = await response.json();
  status.textContent = "";
  view.hidden = false;
  render();
  showShareLinks(image, isOwner());
}

// Sends a change, shows the server's refusal in `errorBox`, redraws with the answer.
async function change(path, method, json, errorBox) {
  errorBox.textContent = "";
  const response = await api(path, { method, json });
  if (!response.ok) {
    errorBox.textContent = await errorMessage(response);
    return false;
  }
  image = await response.json();
  render();
  return true;
}

function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function bindOwner() {
  const tagsForm = $("tags-form");
  tagsForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const tags = splitTags($("tags-input").value);
    if (await change(`/images/${imageId}/tags`, "PUT", { tags }, tagsForm.querySelector(".form-error"))) {
      $("tags-input").value = image.tags.join(", ");
      flash("Tags saved.");
    }
  });
  const descriptionForm = $("description-form");
  descriptionForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const description = $("description-input").value;
    if (await change(`/images/${imageId}`, "PATCH", { description }, descriptionForm.querySelector(".form-error"))) {
      flash("Description saved.");
    }
  });
  $("private-switch").addEventListener("change", async (event) => {
    const isPrivate = event.target.checked;
    if (await change(`/images/${imageId}`, "PATCH", { isPrivate }, $("private-error"))) {
      flash(isPrivate ? "Now private." : "Now public.");
    } else {
      event.target.checked = !isPrivate;
    }
  });
  $("new-key").addEventListener("click", async () => {
    if (await change(`/images/${imageId}`, "PATCH", { accessKey: randomKey() }, $("private-error"))) {
      flash("New access key: links with the old one no longer open it.");
    }
  });
  $("copy-key-link").addEventListener("click", async () => {
    const field = $("key-link");
    try {
      await navigator.clipboard.writeText(field.value);
      flash("Link copied.");
    } catch (_) {
      field.select();
      flash("Select and copy the link.");
    }
  });
  const dialog = $("delete-dialog");
  $("delete-open").addEventListener("click", () => dialog.showModal());
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "delete") return;
    dialog.returnValue = "";
    const response = await api(`/images/${imageId}`, { method: "DELETE" });
    if (response.ok) {
      location.assign("/");
    } else {
      $("private-error").textContent = `Could not delete: ${await errorMessage(response)}`;
    }
  });
}

async function main() {
  bindOwner();
  bindShareLinks();
  await loadUser();
  onSessionChange(() => load());
  await load();
}

main();
