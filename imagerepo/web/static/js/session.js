// The browser's session with the API. The tokens are in HttpOnly cookies this script cannot
// read (set by /web/session); it reads only the CSRF cookies and echoes them in X-CSRF-TOKEN on
// every state-changing request (double submit: another site can neither read them nor set
// that header).

const page = document.body.dataset;
const ACCESS_CSRF = page.csrfAccessCookie || "csrf_access_token";
const REFRESH_CSRF = page.csrfRefreshCookie || "csrf_refresh_token";
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export function readCookie(name) {
  for (const part of document.cookie.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return null;
}

// The cookies expire with their tokens: no access cookie but a refresh cookie means the access
// token ran out and a new one is one request away.
export const hasSession = () => readCookie(REFRESH_CSRF) !== null || readCookie(ACCESS_CSRF) !== null;
const accessExpired = () => readCookie(ACCESS_CSRF) === null && readCookie(REFRESH_CSRF) !== null;

export function csrfHeader() {
  const token = readCookie(ACCESS_CSRF);
  return token ? { "X-CSRF-TOKEN": token } : {};
}

let refreshing = null;
export function refreshAccess() {
  if (!refreshing) {
    refreshing = fetch("/web/session/refresh", {
      method: "POST",
      headers: { "X-CSRF-TOKEN": readCookie(REFRESH_CSRF) || "" },
    })
      // Read the body even though only the status matters: an unread body keeps the request open.
      .then(async (r) => { await r.text(); return r.ok; })
      .catch(() => false)
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

// Call before a request the page cannot retry by itself (an <img>, an upload).
export async function ensureFreshAccess() {
  if (accessExpired()) await refreshAccess();
}

// fetch() for the JSON API with the session: CSRF header on changes, a new access token when
// it has run out, one retry after a 401 that a refresh cures.
export async function api(path, { method = "GET", json, headers = {} } = {}) {
  const send = () => {
    const all = new Headers(headers);
    if (json !== undefined) all.set("Content-Type", "application/json");
    if (UNSAFE.has(method)) for (const [k, v] of Object.entries(csrfHeader())) all.set(k, v);
    return fetch(path, {
      method,
      headers: all,
      body: json === undefined ? undefined : JSON.stringify(json),
      credentials: "same-origin",
    });
  };
  await ensureFreshAccess();
  let response = await send();
  if (response.status === 401 && readCookie(REFRESH_CSRF) !== null) {
    await response.text();
    if (await refreshAccess()) response = await send();
    else await endSession();
  }
  return response;
}

export async function errorMessage(response) {
  if (response.status === 0) return "the connection failed";
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch (_) { /* not JSON */ }
  return `the server answered ${response.status}`;
}

// -- who is logged in -------------------------------------------------------------------------
let user = null;
const listeners = [];
export const currentUser = () => user;
export function onSessionChange(listener) { listeners.push(listener); }
function setUser(next) {
  user = next;
  renderAccount();
  for (const listener of listeners) listener(user);
}

export async function loadUser() {
  if (!hasSession()) { setUser(null); return null; }
  const response = await api("/me");
  setUser(response.ok ? await response.json() : null);
  return user;
}

export async function logIn(username, password) {
  const response = await fetch("/web/session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  if (!response.ok) return errorMessage(response);
  await response.text();
  await loadUser();
  return null;
}

// Revokes the tokens and clears the cookies; works with a dead session too.
export async function endSession() {
  const token = readCookie(ACCESS_CSRF) || readCookie(REFRESH_CSRF) || "";
  try {
    await (await fetch("/web/session", { method: "DELETE", headers: { "X-CSRF-TOKEN": token } })).text();
  } catch (_) { /* offline: the cookies expire by themselves */ }
  setUser(null);
}

// -- the account corner and its dialogs (base.html) ------------------------------------------
const $ = (id) => document.getElementById(id);

export function flash(text) {
  const box = $("flash");
  box.textContent = text;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => { box.textContent = ""; }, 5000);
}

function renderAccount() {
  const who = $("whoami");
  who.textContent = user ? `Signed in as ${user.name}` : "";
  who.hidden = !user;
  $("logout").hidden = !user;
  $("login-open").hidden = !!user;
  $("signup-open").hidden = !!user;
}

export function openDialog(id) {
  const dialog = $(id);
  const form = dialog.querySelector("form");
  if (form) { form.reset(); form.querySelector(".form-error").textContent = ""; }
  dialog.showModal();
}

function bindForm(formId, handler) {
  const form = $(formId);
  const error = form.querySelector(".form-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const submit = form.querySelector("[type=submit]");
    submit.disabled = true;
    error.textContent = "";
    try {
      const problem = await handler(Object.fromEntries(new FormData(form)));
      if (problem) error.textContent = problem;
      else form.closest("dialog").close();
    } catch (err) {
      error.textContent = `Something went wrong: ${err.message}`;
    } finally {
      submit.disabled = false;
    }
  });
}

function bindAccount() {
  for (const dialog of document.querySelectorAll("dialog")) {
    for (const button of dialog.querySelectorAll("[data-close]")) {
      button.addEventListener("click", () => dialog.close());
    }
  }
  $("login-open").addEventListener("click", () => openDialog("login-dialog"));
  $("signup-open").addEventListener("click", () => openDialog("signup-dialog"));
  $("logout").addEventListener("click", async () => {
    await endSession();
    flash("Logged out.");
  });
  bindForm("login-form", async ({ username, password }) => {
    const problem = await logIn(username, password);
    if (!problem) flash(`Welcome back, ${user.name}.`);
    return problem;
  });
  bindForm("signup-form", async ({ name, email, password }) => {
    const response = await fetch("/register", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name, email, password }),
    });
    if (!response.ok) return errorMessage(response);
    await response.text();
    const problem = await logIn(name, password);
    if (!problem) flash(`Welcome, ${user.name}. Your account is ready.`);
    return problem;
  });
}

bindAccount();
