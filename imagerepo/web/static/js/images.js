// Helpers shared by the gallery and the image page. Every piece of user text (names,
// descriptions, tags) goes into the DOM as text (textContent), never as HTML.

// Types a browser shows in <img>; the rest (TIFF, DICOM) get a placeholder unless the server
// makes a JPEG variant of them.
const SHOWN = new Set(["image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp"]);
export const displayable = (image) => SHOWN.has(image.contentType);

// The height of the grid's thumbnails, where the server makes variants (the page says so);
// 0: the grid shows the originals.
export const THUMBNAIL_SIZE = Number(document.body.dataset.thumbnailSize || 0);

// The one place that decides which URL shows an image small (the grid): the thumbnail the
// listing names (GET /images?thumbnail=200), else a variant THUMBNAIL_SIZE px high asked of the
// content route; thumbnail() falls back to the original if the server refuses it.
export function thumbnailUrl(image) {
  if (image.thumbnailUrl) return image.thumbnailUrl;
  if (!THUMBNAIL_SIZE) return displayable(image) ? image.url : null;
  const params = new URLSearchParams({ height: String(THUMBNAIL_SIZE) });
  if (!displayable(image)) params.set("format", "jpeg");
  return `${image.url}?${params}`;
}

// An <img> for the grid, or the type's placeholder. A thumbnail the server will not make (a 4xx:
// an old server without variants, a type it cannot convert) falls back to the original once,
// then to the placeholder.
export function thumbnail(image, placeholder) {
  const url = thumbnailUrl(image);
  if (!url) return placeholder();
  const img = el("img", { src: url, alt: altText(image), loading: "lazy", decoding: "async" });
  if (image.width && image.height) {
    // The intrinsic size, so the grid reserves the cell's shape before the bytes arrive.
    img.width = image.width;
    img.height = image.height;
  }
  img.addEventListener("error", () => {
    if (displayable(image) && img.getAttribute("src") !== image.url) img.src = image.url;
    else img.replaceWith(placeholder());
  });
  return img;
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
