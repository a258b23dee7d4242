// Helpers shared by the gallery and the image page. Every piece of user text (names,
// descriptions, tags) goes into the DOM as text (textContent), never as HTML.

// Types a browser shows in <img>; the rest (TIFF, DICOM) get a placeholder until variants.
const SHOWN = new Set(["image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp"]);
export const displayable = (image) => SHOWN.has(image.contentType);

// The one place that decides which URL shows an image small (the grid). Phase 2 (variants):
// return the thumbnail variant's URL from the image JSON here, e.g. image.variants.thumbnail.
export function thumbnailUrl(image) {
  return displayable(image) ? image.url : null;
}

export const altText = (image) => image.description || image.name;

// el("a", {href: "/x", class: "y"}, "text", child): builds an element; strings become text nodes.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

export function formatBytes(bytes) {
  const units = ["bytes", "KiB", "MiB", "GiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export const formatDate = (iso) => new Date(iso).toLocaleString();

// "Sunset, beach ,, x" -> ["Sunset", "beach", "x"] (the server normalises case and spaces).
export const splitTags = (text) => text.split(",").map((t) => t.trim()).filter(Boolean);
