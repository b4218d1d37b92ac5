// Models page: every model with its task, versions, aliases, headline metrics;
// promote or roll back an alias, delete a version.
import { api, seg } from "./api.js";
import { h, fill, num, when, problem, table, metricEntries } from "./dom.js";

function metricCell(metrics) {
  const shown = metricEntries(metrics)
    .filter(([k]) => !/(^| )(rows|users)$/.test(k) && !k.startsWith("popularity "))
    .slice(0, 3);
  if (!shown.length) return h("span", { class: "muted" }, "–");
  return h("span", {}, shown.map(([k, v], i) => [i ? " · " : "", h("span", { class: `metric metric-${k.replace(/ /g, "-")}` }, `${k.replace(/^model /, "")} ${num(v)}`)]));
}

export async function modelsPage(main) {
  fill(main, h("h1", {}, "Models"), h("p", { class: "muted" }, "Loading…"));
  const status = h("div", { "aria-live": "polite" });
  let list;
  try {
    list = await api("GET", "/models");
  } catch (err) {
    fill(main, h("h1", {}, "Models"), problem(err));
    return;
  }
  const rows = list.models.map((m) => {
    const versions = h("span", {}, m.versions.map((v, i) => [i ? " " : "",
      h("a", { href: `#/models/${seg(m.name)}/versions/${v}`, "aria-label": `${m.name} version ${v}` }, `v${v}`)]));
    const aliases = h("span", { class: "aliases" }, Object.entries(m.aliases).map(([a, v]) => h("span", { class: "badge" }, `${a} → v${v}`)));
    return [
      h("a", { href: `#/models/${seg(m.name)}/versions/${m.serving_version ?? m.latest_version}`, class: "model-name" }, m.name),
      m.task || m.kind || "–",
      versions,
      aliases,
      metricCell(m.metrics),
      h("span", {}, when(m.created_at)),
      h("a", { href: `#/try/${seg(m.name)}` }, "Try it"),
    ];
  });
  fill(main,
    h("h1", {}, "Models"),
    status,
    list.models.length
      ? table(["Model", "Task", "Versions", "Aliases", "Latest metrics", "Created", ""], rows, { class: "models stack" })
      : h("p", {}, "No models yet. ", h("a", { href: "#/train" }, "Train one"), "."),
    list.models.length ? manageForms(list.models, status, () => modelsPage(main)) : null);
}

function manageForms(models, status, reload) {
  const modelSel = h("select", { id: "alias-model" }, models.map((m) => h("option", { value: m.name }, m.name)));
  const versionSel = h("select", { id: "alias-version" });
  const deleteSel = h("select", { id: "delete-version" });
  const aliasInput = h("input", { id: "alias-name", value: "production", required: true, pattern: "[a-z0-9][a-z0-9._-]{0,63}" });
  const aliasesSel = h("select", { id: "alias-remove" });
  const sync = () => {
    const m = models.find((x) => x.name === modelSel.value);
    const opts = () => m.versions.slice().reverse().map((v) => h("option", { value: v }, `v${v}`));
    fill(versionSel, opts());
    fill(deleteSel, opts());
    fill(aliasesSel, Object.entries(m.aliases).map(([a, v]) => h("option", { value: a }, `${a} (v${v})`)));
  };
  modelSel.addEventListener("change", sync);
  sync();
  const act = async (button, f, done) => {
    button.disabled = true;
    fill(status);
    try {
      await f();
      await reload();
      document.querySelector("main [aria-live]")?.append(h("div", { class: "notice", role: "status" }, done));
    } catch (err) {
      fill(status, problem(err));
    } finally {
      button.disabled = false;
    }
  };
  const setBtn = h("button", { type: "submit", id: "alias-set" }, "Point alias");
  const rmBtn = h("button", { type: "button", class: "quiet", id: "alias-delete" }, "Remove alias");
  const delBtn = h("button", { type: "button", class: "danger", id: "version-delete" }, "Delete version");
  rmBtn.addEventListener("click", () => {
    if (!aliasesSel.value) return;
    act(rmBtn, () => api("DELETE", `/models/${seg(modelSel.value)}/aliases/${seg(aliasesSel.value)}`),
      `Alias ${aliasesSel.value} of ${modelSel.value} removed.`);
  });
  delBtn.addEventListener("click", () => {
    const v = deleteSel.value;
    if (!v || !confirm(`Delete ${modelSel.value} version ${v}? Its files are removed.`)) return;
    act(delBtn, () => api("DELETE", `/models/${seg(modelSel.value)}/versions/${v}`), `${modelSel.value} v${v} deleted.`);
  });
  const form = h("form", { class: "panel", id: "alias-form" },
    h("h2", {}, "Promote, roll back, retire"),
    h("p", { class: "muted" }, "Serving uses the version the production alias points at, else the latest."),
    h("div", { class: "form-grid" },
      h("div", { class: "field" }, h("label", { for: "alias-model" }, "Model"), modelSel),
      h("div", { class: "field" }, h("label", { for: "alias-name" }, "Alias"), aliasInput),
      h("div", { class: "field" }, h("label", { for: "alias-version" }, "Version"), versionSel)),
    h("div", { class: "row" }, setBtn),
    h("div", { class: "form-grid" },
      h("div", { class: "field" }, h("label", { for: "alias-remove" }, "Existing alias"), aliasesSel),
      h("div", { class: "field" }, h("label", { for: "delete-version" }, "Version to delete"), deleteSel)),
    h("div", { class: "row" }, rmBtn, delBtn));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = modelSel.value, alias = aliasInput.value.trim(), version = Number(versionSel.value);
    act(setBtn, () => api("PUT", `/models/${seg(name)}/aliases/${seg(alias)}`, { version }), `${alias} of ${name} now points at v${version}.`);
  });
  return form;
}
