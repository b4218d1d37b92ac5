// Try it: a form generated from the model's feature pipeline that calls
// /predict; for recommenders, a user's history beside their recommended and
// similar items.
import { api, seg } from "./api.js";
import { h, fill, num, problem } from "./dom.js";

export async function tryPage(main, name) {
  fill(main, h("h1", {}, "Try it"), h("p", { class: "muted" }, "Loading…"));
  let list;
  try {
    list = await api("GET", "/models");
  } catch (err) {
    fill(main, h("h1", {}, "Try it"), problem(err));
    return;
  }
  if (!list.models.length) {
    fill(main, h("h1", {}, "Try it"), h("p", {}, "No models yet. ", h("a", { href: "#/train" }, "Train one"), "."));
    return;
  }
  const chosen = list.models.find((m) => m.name === name) || list.models[0];
  const picker = h("select", { id: "try-model" }, list.models.map((m) => h("option", { value: m.name, selected: m.name === chosen.name }, `${m.name} (${m.task || m.kind})`)));
  picker.addEventListener("change", () => { location.hash = `#/try/${seg(picker.value)}`; });
  const body = h("div", {});
  fill(main, h("h1", {}, "Try it"),
    h("div", { class: "field" }, h("label", { for: "try-model" }, "Model"), picker), body);
  const version = chosen.serving_version ?? chosen.latest_version;
  let card;
  try {
    card = await api("GET", `/models/${seg(chosen.name)}/versions/${version}`);
  } catch (err) {
    fill(body, problem(err));
    return;
  }
  fill(body, h("p", { class: "muted" }, `Serving version v${version}.`));
  if (card.kind === "recommender") body.append(recommenderForm(chosen.name, card));
  else body.append(predictForm(chosen.name, card));
}

/** The input control of one pipeline column; read() gives its JSON value (null when empty). */
function control(column, id) {
  const enc = column.encoder || {};
  if (column.kind === "numeric") {
    const el = h("input", { id, type: "number", step: "any", placeholder: enc.median !== undefined ? `median ${num(enc.median)}` : "" });
    return { el, read: async () => (el.value === "" ? null : Number(el.value)) };
  }
  if (column.kind === "boolean") {
    const el = h("select", { id }, h("option", { value: "" }, "(missing)"), h("option", { value: "true" }, "true"), h("option", { value: "false" }, "false"));
    return { el, read: async () => (el.value === "" ? null : el.value === "true") };
  }
  if (column.kind === "categorical" && Array.isArray(enc.vocabulary)) {
    const el = h("select", { id }, h("option", { value: "" }, "(missing)"), enc.vocabulary.map((v) => h("option", { value: v }, v)));
    return { el, read: async () => (el.value === "" ? null : el.value) };
  }
  if (column.kind === "text") {
    const el = h("textarea", { id, rows: 3 });
    return { el, read: async () => (el.value === "" ? null : el.value) };
  }
  if (column.kind === "image" || column.kind === "audio") {
    const accept = column.kind === "image" ? "image/png,image/jpeg" : "audio/wav,audio/x-wav,.wav";
    const el = h("input", { id, type: "file", accept });
    return {
      el,
      read: () => new Promise((resolve, reject) => {
        const file = el.files && el.files[0];
        if (!file) { resolve(null); return; }
        const reader = new FileReader();
        reader.onload = () => resolve(String(reader.result));
        reader.onerror = () => reject(reader.error);
        reader.readAsDataURL(file);
      }),
    };
  }
  const el = h("input", { id });
  return { el, read: async () => (el.value === "" ? null : el.value) };
}

function predictForm(name, card) {
  const columns = (card.pipeline && card.pipeline.columns) || [];
  const controls = columns.map((c, i) => ({ name: c.name, ...control(c, `field-${i}`), kind: c.kind }));
  const result = h("div", { id: "prediction", "aria-live": "polite" });
  const submit = h("button", { type: "submit", id: "predict" }, "Predict");
  const form = h("form", { class: "panel", id: "try-form" },
    h("h2", {}, `Predict ${card.target || ""}`),
    h("div", { class: "form-grid" }, controls.map((c) => h("div", { class: "field" },
      h("label", { for: c.el.id }, c.name, " ", h("small", {}, c.kind)), c.el))),
    h("div", { class: "row" }, submit));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    try {
      const record = {};
      for (const c of controls) record[c.name] = await c.read();
      const answer = await api("POST", "/predict", { model: name, version: card.version, instances: [record] });
      fill(result, showPrediction(answer.predictions[0], answer));
    } catch (err) {
      fill(result, problem(err));
    } finally {
      submit.disabled = false;
    }
  });
  return h("div", { class: "grid" }, form, h("section", { class: "panel" }, h("h2", {}, "Answer"), result));
}

function showPrediction(p, answer) {
  const from = h("p", { class: "muted" }, `${answer.model} v${answer.version}`);
  if (p.value !== undefined) return [h("p", { class: "answer", id: "predicted-value", "data-value": p.value }, num(p.value, 6)), from];
  const entries = Object.entries(p.probabilities).sort((a, b) => b[1] - a[1]);
  return [
    h("p", { class: "answer" }, "Label: ", h("span", { id: "predicted-label" }, p.label)),
    h("ul", { class: "bars", id: "probabilities", "aria-label": "Probability per label" }, entries.map(([label, prob]) => {
      const fillEl = h("div", { class: "fill" });
      fillEl.style.width = `${(prob * 100).toFixed(1)}%`;
      return h("li", { class: label === p.label ? "top" : "", "data-label": label, "data-probability": String(prob) },
        h("span", {}, label), h("div", { class: "track", role: "presentation" }, fillEl), h("span", { class: "num" }, `${(prob * 100).toFixed(1)}%`));
    })),
    from,
  ];
}

function itemList(items, id, onSimilar) {
  if (!items || !items.length) return h("p", { class: "muted", id }, "none");
  return h("ol", { class: "items", id }, items.map((it) => {
    const id = typeof it === "string" ? it : it.item;
    const attrs = it.attributes && Object.keys(it.attributes).length
      ? h("div", { class: "attrs" }, Object.entries(it.attributes).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : v}`).join(" · ")) : null;
    return h("li", { "data-item": id },
      h("strong", {}, id), it.score !== undefined ? h("span", { class: "muted" }, ` ${num(it.score, 3)}`) : null, " ",
      onSimilar ? h("button", { type: "button", class: "quiet", onclick: () => onSimilar(id), "aria-label": `Items similar to ${id}` }, "similar") : null,
      attrs);
  }));
}

function recommenderForm(name, card) {
  const users = h("datalist", { id: "rec-users" });
  const user = h("input", { id: "rec-user", list: "rec-users", placeholder: "user id", autocomplete: "off" });
  api("GET", `/models/${seg(name)}/users?limit=500&version=${card.version}`)
    .then((out) => fill(users, out.users.map((u) => h("option", { value: u }))))
    .catch(() => {});
  const k = h("input", { id: "rec-k", type: "number", min: 1, value: 10 });
  const history = h("div", {}), recs = h("div", {}), similar = h("div", {}, h("p", { class: "muted" }, "Choose “similar” on an item."));
  const status = h("div", { "aria-live": "polite" });
  const showSimilar = async (item) => {
    fill(similar, h("p", { class: "muted" }, "Loading…"));
    try {
      const out = await api("GET", `/models/${seg(name)}/items/${seg(item)}/similar?k=${Number(k.value) || 10}&version=${card.version}`);
      fill(similar, h("p", {}, "Similar to ", h("strong", {}, item)), itemList(out.items, "similar-items", null));
    } catch (err) {
      fill(similar, problem(err));
    }
  };
  const submit = h("button", { type: "submit", id: "recommend" }, "Recommend");
  const form = h("form", { class: "panel", id: "rec-form" },
    h("h2", {}, "Recommendations for a user"),
    h("div", { class: "form-grid" },
      h("div", { class: "field" }, h("label", { for: "rec-user" }, "User"), user, users,
        h("small", {}, "Pick a user seen in training, or type any id (then popular or logged items).")),
      h("div", { class: "field" }, h("label", { for: "rec-k" }, "How many"), k)),
    h("div", { class: "row" }, submit), status);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    fill(status);
    try {
      const body = { model: name, version: card.version, k: Number(k.value) || 10, include_attributes: true, include_history: true };
      if (user.value.trim()) body.user = user.value.trim();
      const out = await api("POST", "/recommend", body);
      fill(history, itemList(out.history || [], "history-items", showSimilar));
      fill(recs, h("p", { class: "muted", id: "strategy" }, `strategy: ${out.strategy}`), itemList(out.items, "recommended-items", showSimilar));
    } catch (err) {
      fill(status, problem(err));
    }
  });
  return h("div", {}, form,
    h("div", { class: "grid" },
      h("section", { class: "panel" }, h("h2", {}, "History"), history),
      h("section", { class: "panel" }, h("h2", {}, "Recommended"), recs),
      h("section", { class: "panel" }, h("h2", {}, "Similar items"), similar)));
}
