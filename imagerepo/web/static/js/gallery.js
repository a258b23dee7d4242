// The gallery: my images and the public ones, newest first, a page at a time as the list
// scrolls (keyset cursors of GET /images), with search, tag and "mine only" filters kept in
// the address bar, and uploads.

import { api, currentUser, errorMessage, loadUser, onSessionChange, openDialog } from "./session.js";
import { THUMBNAIL_SIZE, altText, el, splitTags, thumbnail } from "./images.js";
import { uploadFiles } from "./upload.js";

const PAGE_SIZE = 24;
const $ = (id) => document.getElementById(id);
const grid = $("grid");
const status = $("grid-status");
const more = $("load-more");

let cursor = null;
let exhausted = false;
let loading = false;
let generation = 0; // a new filter or session starts a new listing; stale answers are dropped

function filtersFromLocation() {
  const params = new URLSearchParams(location.search);
  return { q: params.get("q") || "", tag: params.get("tag") || "", mine: params.get("mine") === "1" };
}

function showFilters(filters) {
  $("filter-q").value = filters.q;
  $("filter-tag").value = filters.tag;
  $("filter-mine").checked = filters.mine;
}

function listUrl(filters) {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (filters.q) params.set("q", filters.q);
  for (const tag of splitTags(filters.tag)) params.append("tag", tag);
  if (filters.mine && currentUser()) params.set("mine", "1");
  if (cursor) params.set("cursor", cursor);
  if (THUMBNAIL_SIZE) params.set("thumbnail", String(THUMBNAIL_SIZE));
  return `/images?${params}`;
}

function tagButton(tag) {
  return el("button", { type: "button", class: "tag", onclick: () => applyFilters({ q: "", tag, mine: false }) }, tag);
}

function card(image) {
  const me = currentUser();
  const link = el("a", { href: `/view/${image.id}`, class: "card-link" });
  link.append(thumbnail(image, () =>
    el("span", { class: "no-preview", role: "img", "aria-label": altText(image) }, image.contentType)));
  const badges = el("span", { class: "badges" },
    image.isPrivate ? el("span", { class: "badge private" }, "Private") : null,
    me && image.creator === me.id ? el("span", { class: "badge mine" }, "Yours") : null);
  const tags = image.tags.length ? el("div", { class: "tags" }, ...image.tags.map(tagButton)) : null;
  return el("li", { class: "card", dataset: { imageId: image.id } },
    link, el("div", { class: "card-meta" }, el("span", { class: "card-name" }, image.name), badges), tags);
}

function showCount(filters) {
  const count = grid.children.length;
  status.textContent = count === 0
    ? (filters.q || filters.tag || filters.mine ? "No image matches these filters." : "No images yet.")
    : `${count} image${count === 1 ? "" : "s"}${exhausted ? "" : " so far"}.`;
}

async function loadPage() {
  if (loading || exhausted) return;
  loading = true;
  grid.setAttribute("aria-busy", "true");
  const mine = generation;
  const filters = filtersFromLocation();
  status.textContent = "Loading…";
  try {
    const response = await api(listUrl(filters));
    if (mine !== generation) return;
    if (!response.ok) {
      status.textContent = `Could not list images: ${await errorMessage(response)}`;
      exhausted = true;
      return;
    }
    const page = await response.json();
    grid.append(...page.images.map(card));
    cursor = page.nextCursor;
    exhausted = !cursor;
    showCount(filters);
  } catch (err) {
    if (mine === generation) { status.textContent = `Could not list images: ${err.message}`; exhausted = true; }
  } finally {
    if (mine === generation) {
      loading = false;
      grid.setAttribute("aria-busy", "false");
      more.hidden = exhausted;
      // The observer fires on changes only: a page too short to push the button out of
      // reach needs the next page now.
      if (!exhausted && more.getBoundingClientRect().top < innerHeight + 600) requestAnimationFrame(loadPage);
    }
  }
}

function restart() {
  generation += 1;
  loading = false;
  cursor = null;
  exhausted = false;
  grid.replaceChildren();
  more.hidden = true;
  loadPage();
}

function applyFilters(filters) {
  const params = new URLSearchParams();
  if (filters.q) params.set("q", filters.q);
  if (filters.tag) params.set("tag", filters.tag);
  if (filters.mine) params.set("mine", "1");
  const query = params.toString();
  history.pushState(null, "", query ? `/?${query}` : "/");
  showFilters(filters);
  restart();
}

async function loadTagOptions() {
  const response = await api("/tags?limit=100");
  if (!response.ok) { await response.text(); return; }
  const { tags } = await response.json();
  $("tag-options").replaceChildren(...tags.map((t) => el("option", { value: t.name })));
}

function bindFilters() {
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    applyFilters({ q: $("filter-q").value.trim(), tag: $("filter-tag").value.trim(), mine: $("filter-mine").checked });
  });
  $("filter-clear").addEventListener("click", () => applyFilters({ q: "", tag: "", mine: false }));
  window.addEventListener("popstate", () => { showFilters(filtersFromLocation()); restart(); });
  more.addEventListener("click", loadPage);
  // Infinite scroll: the "Load more" button doubles as the sentinel (and stays for keyboards).
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadPage();
  }, { rootMargin: "600px" }).observe(more);
}

function bindUploads() {
  const list = $("upload-list");
  const zone = $("dropzone");
  const input = $("file-input");
  const options = () => ({
    description: $("upload-description").value.trim(),
    tags: $("upload-tags").value.trim(),
    isPrivate: $("upload-private").checked,
  });
  const created = (image) => {
    const filters = filtersFromLocation();
    if (!filters.q && !filters.tag) {
      grid.prepend(card(image));
      showCount(filters);
    }
  };
  input.addEventListener("change", () => {
    uploadFiles(input.files, options(), list, created);
    input.value = "";
  });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files.length) uploadFiles(event.dataTransfer.files, options(), list, created);
  });
  // A file dropped beside the zone must not make the browser navigate away to it.
  for (const type of ["dragover", "drop"]) document.addEventListener(type, (event) => event.preventDefault());
  const limit = Number(document.body.dataset.maxUploadBytes || 0);
  if (limit) $("upload-limit").textContent = `Up to ${Math.round(limit / 1048576)} MiB each; JPEG, PNG, GIF, WebP, BMP, TIFF or DICOM.`;
}

function showSession(user) {
  $("upload-section").hidden = !user;
  $("signed-out-hint").hidden = !!user;
  $("filter-mine").disabled = !user;
}

async function main() {
  bindFilters();
  bindUploads();
  $("hint-login").addEventListener("click", () => openDialog("login-dialog"));
  $("hint-signup").addEventListener("click", () => openDialog("signup-dialog"));
  showFilters(filtersFromLocation());
  await loadUser();
  showSession(currentUser());
  onSessionChange((user) => { showSession(user); restart(); loadTagOptions(); });
  restart();
  loadTagOptions();
}

main();
