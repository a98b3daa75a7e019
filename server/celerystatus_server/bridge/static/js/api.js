// HTTP access to the bridge: the tab's token (sessionStorage only) and JSON requests.

const TOKEN_KEY = "celery-status.token";

export class AuthRequired extends Error {}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export const token = {
  get() {
    try { return sessionStorage.getItem(TOKEN_KEY); } catch { return null; }
  },
  set(value) {
    try { sessionStorage.setItem(TOKEN_KEY, value); } catch { /* private mode: kept in memory below */ }
    memoryToken = value;
  },
  clear() {
    try { sessionStorage.removeItem(TOKEN_KEY); } catch { /* nothing stored */ }
    memoryToken = null;
  },
  current() {
    return this.get() || memoryToken;
  },
};
let memoryToken = null;

/** GET a JSON document; 401 raises AuthRequired, other failures ApiError (with the JSON body when there is one). */
export async function getJson(path, { signal, params } = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const headers = { Accept: "application/json" };
  const bearer = token.current();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  // credentials "omit": the token is the only credential; no cookie rides along.
  const response = await fetch(url, { headers, signal, credentials: "omit", cache: "no-store" });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (response.status === 401) throw new AuthRequired((body && body.error) || "token required");
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

/** The page's configuration: whether a token is needed, which optional APIs exist. */
export async function loadConfig() {
  try {
    return await getJson("/ui/config.json");
  } catch {
    return { auth_required: false, features: {}, ws_subprotocol: "celery-status.v1", ws_bearer_prefix: "bearer." };
  }
}

export function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
