// Share links on the image page (the plans API): the owner makes a link with an expiry (to the
// original, or a thumbnail height the plan gives), copies it, and revokes it. Anyone holding the
// link (/s/<token>) opens the image without an account. The panel stays hidden where the
// server has no share links, where the owner's plan gives none, and when the API answers the
// list with 403 or 404.

import { api, currentUser, errorMessage, flash } from "./session.js";
import { el, formatDate } from "./images.js";

const $ = (id) => document.getElementById(id);
const page = document.body.dataset;
const EXPIRIES = [
  [900, "15 minutes"],
  [3600, "1 hour"],
  [4 * 3600, "4 hours"],
  [8 * 3600, "8 hours"],
  [86400, "1 day"],
  [7 * 86400, "7 days"],
];
// A link's URL is in the answer that made it only (the server keeps no token): the ones made
// on this page stay copyable while it is open.
const madeHere = new Map();
let imageId = null;
let generation = 0;

function expiryChoices() {
  const min = Number(page.linkMinSeconds || 0);
  const max = Number(page.linkMaxSeconds || Infinity);
  let choices = EXPIRIES.filter(([seconds]) => seconds >= min && seconds <= max);
  if (!choices.length && min) choices = [[min, `${Math.round(min / 60)} minutes`]];
  return choices;
}

// What the plan gives links to: the original and/or thumbnails of some heights.
function variantChoices(plan) {
  const choices = [];
  if (!plan || plan.originalViaLinks) choices.push(["", "The original"]);
  for (const height of (plan && plan.thumbnailHeights) || []) choices.push([String(height), `A thumbnail ${height} px high`]);
  return choices;
}

const describe = (link) => (link.variant && link.variant.height ? `Thumbnail, ${link.variant.height} px high` : "The original")
  + (link.variant && link.variant.format ? ` (${link.variant.format.toUpperCase()})` : "");

const absolute = (url) => new URL(url, location.origin).href;

async function copy(text, field) {
  try {
    await navigator.clipboard.writeText(text);
    flash("Link copied.");
  } catch (_) {
    if (field) field.select();
    flash("Select and copy the link.");
  }
}

function linkItem(link) {
  const url = madeHere.get(link.id);
  return el("li", { class: "share-item", dataset: { linkId: link.id } },
    el("span", { class: "share-what" }, describe(link)),
    el("span", { class: "share-expiry" }, `expires ${formatDate(link.expiresAt)}`),
    el("span", { class: "actions" },
      url ? el("button", { type: "button", onclick: () => copy(url) }, "Copy") : null,
      el("button", {
        type: "button",
        class: "danger",
        "aria-label": `Revoke the link to ${describe(link).toLowerCase()}, expiring ${formatDate(link.expiresAt)}`,
        onclick: () => revoke(link),
      }, "Revoke")));
}

async function refreshList() {
  const mine = generation;
  const list = $("share-list");
  list.setAttribute("aria-busy", "true");
  const response = await api(`/images/${imageId}/links`);
  if (mine !== generation) return;
  list.setAttribute("aria-busy", "false");
  if (response.status === 403 || response.status === 404) {
    await response.text();
    $("share-links").hidden = true;
    return;
  }
  if (!response.ok) {
    list.replaceChildren(el("li", { class: "form-error" }, `Could not list the links: ${await errorMessage(response)}`));
    return;
  }
  const { links } = await response.json();
  list.replaceChildren(...(links.length ? links.map(linkItem) : [el("li", { class: "hint" }, "None.")]));
}

async function revoke(link) {
  const response = await api(`/images/${imageId}/links/${link.id}`, { method: "DELETE" });
  if (!response.ok && response.status !== 404) {
    flash(`Could not revoke the link: ${await errorMessage(response)}`);
    return;
  }
  await response.text();
  madeHere.delete(link.id);
  flash("Link revoked: it no longer opens the image.");
  await refreshList();
}

async function create(event) {
  event.preventDefault();
  const form = $("share-form");
  const error = form.querySelector(".form-error");
  const submit = form.querySelector("[type=submit]");
  error.textContent = "";
  submit.disabled = true;
  try {
    const height = $("share-variant").value;
    const json = { expiresIn: Number($("share-expiry").value) };
    if (height) json.variant = { height: Number(height) };
    const response = await api(`/images/${imageId}/links`, { method: "POST", json });
    if (!response.ok) {
      error.textContent = await errorMessage(response);
      return;
    }
    const link = await response.json();
    const url = absolute(link.url);
    madeHere.set(link.id, url);
    $("share-url").value = url;
    $("share-new").hidden = false;
    $("share-url").focus();
    $("share-url").select();
    await refreshList();
  } finally {
    submit.disabled = false;
  }
}

// The image page calls this once the image is loaded (again after a login or logout).
export function showShareLinks(image, owner) {
  generation += 1;
  const panel = $("share-links");
  const plan = currentUser() && currentUser().plan;
  const variants = variantChoices(plan);
  const expiries = expiryChoices();
  if (!page.shareLinks || !owner || (plan && !plan.expiringLinks) || !variants.length || !expiries.length) {
    panel.hidden = true;
    return;
  }
  if (imageId !== image.id) {
    imageId = image.id;
    madeHere.clear();
    $("share-new").hidden = true;
  }
  $("share-expiry").replaceChildren(...expiries.map(([seconds, text]) => el("option", { value: seconds }, text)));
  const oneHour = expiries.find(([seconds]) => seconds === 3600);
  if (oneHour) $("share-expiry").value = "3600";
  $("share-variant").replaceChildren(...variants.map(([value, text]) => el("option", { value }, text)));
  panel.hidden = false;
  refreshList();
}

export function bindShareLinks() {
  $("share-form").addEventListener("submit", create);
  $("share-copy").addEventListener("click", () => copy($("share-url").value, $("share-url")));
}
