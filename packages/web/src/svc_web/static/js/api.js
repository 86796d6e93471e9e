// The API client: where the gateway is, the session's tokens (module state only), requests with
// the access token, its renewal, and every error turned into words a person can read.
//
// Tokens live in this module's variables and nowhere else: never localStorage or sessionStorage,
// which any script running in the page (an injected one included) can read and which outlive the
// tab. A reload therefore logs the person out; that is the price of not leaving tokens behind.

let apiUrl = "";
let access = null;
let refreshToken = null;
let refreshTimer = null;
let refreshing = null;
const listeners = { token: [], revoked: [] };

export class ApiError extends Error {
  constructor(message, { status = 0, code = "", errors = null, body = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.errors = errors;
    this.body = body;
  }
}

const CODES = {
  invalid_credentials: "That username or password is not right.",
  login_throttled: "Too many failed log-ins. Wait a while and try again.",
  username_taken: "That username is taken. Pick another one.",
  email_taken: "An account with that email already exists.",
  session_revoked: "Your session has ended (you logged out elsewhere or it was revoked). Please log in again.",
  refresh_token_invalid: "Your session has expired. Please log in again.",
  refresh_token_reused: "Your session was ended for safety. Please log in again.",
  order_not_pending: "This order can no longer be changed: it is not pending any more.",
  order_not_deletable: "A paid or refunded order cannot be deleted.",
  order_already_paid: "This order is already paid.",
  payment_not_refundable: "This payment cannot be refunded.",
  idempotency_in_progress: "That payment is still being processed. Wait a moment.",
  card_declined: "The card was declined. Try another card.",
  insufficient_funds: "The card has insufficient funds. Try another card.",
  upload_offset_mismatch: "The upload got out of step with the server. Try again.",
  not_found: "That no longer exists (or is not yours).",
};

const STATUSES = {
  400: "The request was not understood.",
  401: "Please log in again.",
  403: "That is not allowed.",
  404: "That no longer exists (or is not yours).",
  409: "That conflicts with the current state. Reload and try again.",
  413: "That is too large.",
  415: "That type of content is not accepted.",
  422: "Some of what you entered is not valid.",
  429: "Too many requests. Wait a minute and try again.",
};

export function describe(status, body) {
  if (body && typeof body === "object") {
    if (body.code === "payment_failed" && body.payment) {
      return CODES[body.payment.failure_code] || "The payment failed. Try another card.";
    }
    if (CODES[body.code]) return CODES[body.code];
    if (body.errors && typeof body.errors === "object") {
      const parts = Object.entries(body.errors).map(([field, msgs]) => `${field}: ${[].concat(msgs).join(" ")}`);
      if (parts.length) return `Please check: ${parts.join("; ")}.`;
    }
    if (status === 429 || body.message === "API rate limit exceeded") return STATUSES[429];
    if (body.status && body.detail && status !== 500) return body.detail;
  }
  if (status >= 500) return "The service is having trouble right now. Try again shortly.";
  return STATUSES[status] || "Something went wrong. Try again.";
}

export async function configure() {
  const response = await fetch("config.json");
  const config = await response.json();
  apiUrl = config.api_url || window.location.origin;
}

export const base = () => apiUrl;
export const token = () => access?.token || null;
export const loggedIn = () => access !== null;
export const username = () => access?.username || "";
export function on(event, fn) { listeners[event].push(fn); }

function claims(jwt) {
  const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
}

function keep(pair) {
  const c = claims(pair.access_token);
  access = { token: pair.access_token, username: c.username, sub: c.sub };
  refreshToken = pair.refresh_token;
  clearTimeout(refreshTimer);
  // renew a minute before expiry (or halfway for short-lived tokens)
  const lead = Math.min(60, pair.expires_in / 2);
  refreshTimer = setTimeout(() => refresh().catch(() => {}), Math.max(1, pair.expires_in - lead) * 1000);
  listeners.token.forEach((fn) => fn(access.token));
}

export function forget() {
  access = null;
  refreshToken = null;
  clearTimeout(refreshTimer);
}

function revoked(message) {
  forget();
  listeners.revoked.forEach((fn) => fn(message));
}

export function refresh() {
  if (!refreshToken) return Promise.reject(new ApiError(CODES.refresh_token_invalid, { status: 401 }));
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const pair = await send("POST", "/auth/refresh", { refresh_token: refreshToken }, { auth: false });
        keep(pair);
      } catch (err) {
        if (err.status === 401) revoked(err.message);
        throw err;
      } finally {
        refreshing = null;
      }
    })();
  }
  return refreshing;
}

async function parse(response) {
  const type = response.headers.get("Content-Type") || "";
  if (response.status === 204) return null;
  if (type.includes("json")) return response.json().catch(() => null);
  return null;
}

export async function send(method, path, body, { auth = true, headers = {}, retried = false } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (auth && access) init.headers.Authorization = `Bearer ${access.token}`;
  let response;
  try {
    response = await fetch(apiUrl + path, init);
  } catch {
    throw new ApiError("The platform cannot be reached. Check your connection and try again.");
  }
  const data = await parse(response);
  if (response.ok) return data;
  if (response.status === 401 && auth) {
    if (data?.code === "session_revoked") {
      revoked(CODES.session_revoked);
      throw new ApiError(CODES.session_revoked, { status: 401, code: "session_revoked" });
    }
    if (!retried && refreshToken) {
      await refresh();
      return send(method, path, body, { auth, headers, retried: true });
    }
  }
  throw new ApiError(describe(response.status, data), { status: response.status, code: data?.code || "", errors: data?.errors, body: data });
}

export async function login(usernameOrEmail, password) {
  keep(await send("POST", "/auth/login", { username: usernameOrEmail, password }, { auth: false }));
}

export async function register(name, email, password) {
  await send("POST", "/auth/register", { username: name, email, password }, { auth: false });
  await login(name, password);
}

export async function logout() {
  try {
    await send("POST", "/auth/logout", undefined, { retried: true });
  } finally {
    forget();
  }
}

export function newKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// One request with upload progress (fetch reports none): resolves with the XHR.
export function xhr(method, path, body, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(method, apiUrl + path);
    for (const [k, v] of Object.entries(headers)) request.setRequestHeader(k, v);
    if (access) request.setRequestHeader("Authorization", `Bearer ${access.token}`);
    request.upload.onprogress = (e) => onProgress?.(e.loaded);
    request.onload = () => resolve(request);
    request.onerror = () => reject(new ApiError("The upload was interrupted."));
    request.send(body);
  });
}

export function xhrError(request) {
  let data = null;
  try { data = JSON.parse(request.responseText); } catch { /* not JSON */ }
  return new ApiError(describe(request.status, data), { status: request.status, code: data?.code || "", body: data });
}

// Money: integer minor units shown with the currency's own number of decimals.
export function decimals(currency) {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}

export function money(minor, currency) {
  const d = decimals(currency);
  return new Intl.NumberFormat(undefined, { style: "currency", currency, minimumFractionDigits: d, maximumFractionDigits: d }).format(minor / 10 ** d);
}

export function toMinor(text, currency) {
  const d = decimals(currency);
  const clean = String(text).trim().replace(",", ".");
  if (!/^\d+(\.\d+)?$/.test(clean)) return null;
  const [whole, frac = ""] = clean.split(".");
  if (frac.length > d) return null;
  return Number(whole) * 10 ** d + Number((frac + "0".repeat(d)).slice(0, d) || 0);
}
