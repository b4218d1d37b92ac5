// Version page: metrics, parameters, schema, curves, confusion matrix or
// residual histogram, data fingerprint.
import { api, seg } from "./api.js";
import { h, fill, num, when, problem, table, metricEntries } from "./dom.js";
import { historyCharts, histogram } from "./chart.js";

function kv(metrics) {
  const entries = metricEntries(metrics);
  const holdout = metrics && typeof metrics.holdout === "string" ? h("p", { class: "muted" }, `holdout: ${metrics.holdout}`) : null;
  if (!entries.length) return h("p", { class: "muted" }, "No validation metrics.");
  return [holdout, h("dl", { class: "kv" }, entries.map(([k, v]) => [h("dt", {}, k), h("dd", { class: `metric-${k.replace(/ /g, "-")}` }, num(v))]))];
}

// Parameters are stored as f32: show them to 6 significant digits.
function params(obj) {
  const entries = Object.entries(obj || {});
  if (!entries.length) return h("p", { class: "muted" }, "defaults");
  const show = (v) => (typeof v === "number" ? num(v, 6) : v && typeof v === "object" ? JSON.stringify(v) : String(v));
  return h("dl", { class: "kv" }, entries.map(([k, v]) => [h("dt", {}, k), h("dd", {}, show(v))]));
}

function confusion(matrix, labels) {
  const names = labels && labels.length === matrix.length ? labels : matrix.map((_, i) => String(i));
  return h("div", { class: "scroll" },
    h("table", { class: "cm", id: "confusion-matrix" },
      h("caption", { class: "muted" }, "Rows: true label · columns: predicted label (validation rows)"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "true \\ predicted"), names.map((n) => h("th", { scope: "col" }, n)))),
      h("tbody", {}, matrix.map((row, i) => h("tr", {}, h("th", { scope: "row" }, names[i]),
        row.map((c, j) => h("td", { class: i === j ? "hit" : "" }, c)))))));
}

function schemaTable(card) {
  const schema = card.schema;
  if (!schema || !schema.columns) return h("p", { class: "muted" }, "No tabular schema (recommenders read user and item ids).");
  return table(["Column", "Kind", "Missing", "Distinct", "Role"], schema.columns.map((c) => [
    c.name, h("span", { class: `kind kind-${c.kind}` }, c.kind + (c.inferred === false ? " (set)" : "")),
    h("span", {}, num(c.missing)), h("span", {}, num(c.distinct)),
    c.name === card.target ? "target" : c.excluded ? `excluded (${typeof c.excluded === "string" ? c.excluded : JSON.stringify(c.excluded)})` : "feature",
  ]), { class: "schema" });
}

export async function versionPage(main, name, version) {
  fill(main, h("h1", {}, `${name} v${version}`), h("p", { class: "muted" }, "Loading…"));
  let card, model;
  try {
    [card, model] = await Promise.all([
      api("GET", `/models/${seg(name)}/versions/${version}`),
      api("GET", `/models/${seg(name)}`),
    ]);
  } catch (err) {
    fill(main, h("h1", {}, `${name} v${version}`), problem(err));
    return;
  }
  const aliases = Object.entries(model.aliases).filter(([, v]) => v === version).map(([a]) => h("span", { class: "badge" }, a));
  const metrics = card.metrics || {};
  const history = card.history || [];
  const labels = card.target_encoder && card.target_encoder.labels;
  const evaluation = [];
  if (Array.isArray(metrics.confusion_matrix)) {
    evaluation.push(h("section", { class: "panel" }, h("h2", {}, "Confusion matrix"), confusion(metrics.confusion_matrix, labels)));
  }
  if (metrics.residual_histogram && metrics.residual_histogram.counts) {
    evaluation.push(h("section", { class: "panel", id: "residuals" }, h("h2", {}, "Residuals (actual − predicted)"),
      histogram({ title: "Residual histogram on validation rows", xLabel: `residual (${card.target || "target"} units)`, yLabel: "rows", ...metrics.residual_histogram })));
  }
  const fp = card.fingerprint || {};
  fill(main,
    h("p", {}, h("a", { href: "#/models" }, "← Models")),
    h("h1", {}, `${name} `, h("span", { class: "muted" }, `v${version}`), " ", aliases),
    h("p", {}, `${card.task} · ${card.kind}`, card.target ? ` · target ${card.target}` : "", ` · created ${when(card.created_at)}`,
      card.job_id ? [" · ", h("a", { href: `#/jobs/${seg(card.job_id)}` }, "training job")] : "",
      " · ", h("a", { href: `#/try/${seg(name)}` }, "Try it")),
    h("div", { class: "grid" },
      h("section", { class: "panel", id: "metrics" }, h("h2", {}, "Validation metrics"), kv(metrics)),
      h("section", { class: "panel" }, h("h2", {}, "Parameters"), params(card.params),
        card.architecture ? h("p", { class: "muted" }, `Architecture: ${JSON.stringify(card.architecture)}`) : null),
      h("section", { class: "panel", id: "fingerprint" }, h("h2", {}, "Training data"),
        h("dl", { class: "kv" }, h("dt", {}, "rows"), h("dd", {}, num(fp.rows)), h("dt", {}, "columns"), h("dd", {}, num(fp.columns)),
          h("dt", {}, "SHA-256"), h("dd", { class: "sha" }, fp.sha256 || "–"),
          h("dt", {}, "best epoch"), h("dd", {}, num(card.best_epoch))))),
    h("section", { class: "panel", id: "curves" }, h("h2", {}, "Training curves"),
      history.length ? h("div", { class: "grid" }, historyCharts(history)) : h("p", { class: "muted" }, "No per-epoch history.")),
    evaluation.length ? h("div", { class: "grid" }, evaluation) : null,
    h("section", { class: "panel" }, h("h2", {}, "Schema"), schemaTable(card)));
}
