// Small DOM helpers: elements from tag, attributes and children; formatting.

/** An element: attrs keys starting with "on" are listeners, others attributes. */
export function h(tag, attrs = {}, ...children) {
  const svg = ["svg", "g", "line", "polyline", "circle", "rect", "text", "title", "path"].includes(tag);
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.setAttribute("class", v);
    else if (k === "value" && !svg) el.value = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A number with at most 4 significant decimals. */
export function num(v, digits = 4) {
  if (v === null || v === undefined) return "–";
  if (typeof v !== "number") return String(v);
  if (Number.isInteger(v)) return String(v);
  return Number(v.toPrecision(digits)).toString();
}

/** A date-time as local "YYYY-MM-DD HH:MM". */
export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** Seconds as "1 h 2 min", "3 min 4 s" or "5 s". */
export function duration(secs) {
  if (secs === null || secs === undefined || !Number.isFinite(secs)) return "–";
  const s = Math.max(0, Math.round(secs));
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${s} s`;
}

/** A problem box for an error thrown by api(): status, title and the API's detail. */
export function problem(err) {
  const status = err && err.status ? `${err.status} ${err.title || ""}`.trim() : "Error";
  const detail = (err && (err.detail || err.message)) || String(err);
  return h("div", { class: "problem", role: "alert" },
    h("strong", {}, status),
    h("span", { class: "detail" }, detail),
    err && err.code ? h("span", { class: "muted" }, ` (${err.code})`) : null);
}

/** A table from column headers and rows of cells. */
export function table(headers, rows, opts = {}) {
  return h("div", { class: "scroll" },
    h("table", { class: opts.class || "" },
      opts.caption ? h("caption", { class: "muted" }, opts.caption) : null,
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { "data-label": headers[i] || null }, c)))))));
}

/**
 * Numeric entries of a metrics object as [name, value]; nested objects (a
 * recommender's `model` and `popularity` ranking metrics) as "model hr_at_10".
 */
export function metricEntries(metrics, prefix = "") {
  const out = [];
  for (const [k, v] of Object.entries(metrics || {})) {
    if (typeof v === "number") out.push([prefix + k, v]);
    else if (v && typeof v === "object" && !Array.isArray(v)) out.push(...metricEntries(v, `${prefix}${k} `));
  }
  return out;
}
