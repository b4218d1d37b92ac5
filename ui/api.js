// Calls to this server's API, with the API key (if one was given) from session storage.

const KEY = "myelin.apiKey";

export function apiKey() { return sessionStorage.getItem(KEY); }
export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY);
}

/** An API error: HTTP status and the problem+json fields. */
export class ApiProblem extends Error {
  constructor(status, body) {
    super((body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.title = (body && body.title) || "";
    this.detail = (body && body.detail) || `HTTP ${status}`;
    this.code = (body && body.code) || "";
  }
}

function headers(extra = {}) {
  const h = { Accept: "application/json", ...extra };
  const key = apiKey();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

const listeners = [];
/** Calls `f(problem)` on every 401 answer (the page then asks for a key). */
export function onUnauthorized(f) { listeners.push(f); }

async function check(res) {
  if (res.ok) return res;
  let body = null;
  try { body = await res.json(); } catch { body = null; }
  const p = new ApiProblem(res.status, body);
  if (res.status === 401) listeners.forEach((f) => f(p));
  throw p;
}

/** `method path` with an optional JSON body; resolves to the parsed JSON (null for 204). */
export async function api(method, path, body) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await check(await fetch(path, init));
  if (res.status === 204) return null;
  return res.json();
}

/** POSTs a file (streamed by the browser, not read into the page) with its content type. */
export async function upload(path, file, contentType) {
  const res = await check(await fetch(path, { method: "POST", headers: headers({ "Content-Type": contentType }), body: file }));
  return res.json();
}

/**
 * Follows a server-sent event stream with the key in the Authorization header
 * (EventSource cannot send one). Calls onEvent(name, data) per event; resolves at the end.
 */
export async function follow(path, onEvent, signal) {
  const res = await check(await fetch(path, { headers: headers({ Accept: "text/event-stream" }), signal }));
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      let name = "message";
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length === 0) continue;
      let parsed;
      try { parsed = JSON.parse(data.join("\n")); } catch { continue; }
      onEvent(name, parsed);
    }
  }
}

/** URL path segment. */
export const seg = encodeURIComponent;
