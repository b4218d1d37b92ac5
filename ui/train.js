// Train page: drop a CSV (streamed to POST /datasets), see its schema and
// first rows, pick the target and ignored columns, set the main parameters,
// start the job and go to its live page.
import { api, upload, seg } from "./api.js";
import { h, fill, num, problem, table } from "./dom.js";

export async function trainPage(main) {
  const input = h("input", { type: "file", id: "csv-file", accept: ".csv,text/csv,.ndjson,.jsonl", class: "visually-hidden" });
  const drop = h("div", { class: "drop", id: "drop", tabindex: 0, role: "button", "aria-describedby": "drop-help" },
    h("p", {}, h("strong", {}, "Drop a CSV file here"), " or press Enter to choose one."),
    h("p", { class: "muted", id: "drop-help" }, "It is streamed to the server (POST /datasets); the header row names the columns."),
    input);
  const out = h("div", { id: "dataset" });
  fill(main, h("h1", {}, "Train a model"), drop, out);
  const choose = () => input.click();
  drop.addEventListener("click", (e) => { if (e.target !== input) choose(); });
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); choose(); } });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) send(file, out);
  });
  input.addEventListener("change", () => { if (input.files[0]) send(input.files[0], out); });
}

async function send(file, out) {
  fill(out, h("p", { role: "status" }, `Uploading ${file.name} (${num(file.size)} bytes)…`));
  const ndjson = /\.(nd)?jsonl?$|\.ndjson$/i.test(file.name);
  let meta;
  try {
    meta = await upload("/datasets", file, ndjson ? "application/x-ndjson" : "text/csv");
  } catch (err) {
    fill(out, problem(err));
    return;
  }
  showDataset(meta, file.name, out);
}

function modelNameFrom(file) {
  const base = file.replace(/\.[^.]*$/, "").toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[^a-z0-9]+/, "");
  return (base || "model").slice(0, 64);
}

function showDataset(meta, fileName, out) {
  const columns = meta.schema.columns || [];
  const schema = table(["Column", "Inferred kind", "Missing", "Distinct", "Ignore"], columns.map((c) => [
    c.name, h("span", { class: `kind kind-${c.kind}` }, c.kind), num(c.missing), num(c.distinct),
    h("input", { type: "checkbox", class: "ignore", value: c.name, "aria-label": `Ignore ${c.name}`, checked: c.kind === "identifier" }),
  ]), { class: "schema", caption: `${meta.rows} rows · ${meta.columns.length} columns · dataset ${meta.id}` });
  const head = meta.head && meta.head.length
    ? table(meta.columns, meta.head.map((r) => meta.columns.map((c) => (r[c] === null || r[c] === undefined ? "" : String(r[c])))), { class: "head", caption: "First rows" })
    : null;
  const guess = [...columns].reverse().find((c) => c.kind === "categorical" || c.kind === "boolean") || columns[columns.length - 1];
  const target = h("select", { id: "target", name: "target" }, columns.map((c) => h("option", { value: c.name, selected: guess && c.name === guess.name }, c.name)));
  const task = h("select", { id: "task" },
    h("option", { value: "" }, "infer from the target"),
    h("option", { value: "classification" }, "classification"),
    h("option", { value: "regression" }, "regression"),
    h("option", { value: "recommendation" }, "recommendation (user_id, item_id columns)"));
  const model = h("input", { id: "model-name", value: modelNameFrom(fileName), required: true, pattern: "[a-z0-9][a-z0-9._-]{0,63}" });
  const epochs = h("input", { id: "epochs", type: "number", min: 1, value: 30 });
  const hidden = h("input", { id: "hidden-layers", value: "64, 32", "aria-describedby": "hidden-help" });
  const lr = h("input", { id: "learning-rate", type: "number", step: "any", min: 0, value: 0.001 });
  const batch = h("input", { id: "batch-size", type: "number", min: 1, value: 32 });
  const patience = h("input", { id: "patience", type: "number", min: 0, value: 5, "aria-describedby": "patience-help" });
  const status = h("div", { "aria-live": "polite" });
  const start = h("button", { type: "submit", id: "start-training" }, "Start training");
  const field = (id, label, control, help) => h("div", { class: "field" }, h("label", { for: id }, label), control,
    help ? h("small", { id: `${id}-help` }, help) : null);
  const form = h("form", { class: "panel", id: "train-form" },
    h("h2", {}, "Training"),
    h("div", { class: "form-grid" },
      field("model-name", "Model name", model),
      field("target", "Target (column to predict)", target),
      field("task", "Task", task),
      field("epochs", "Epochs (at most)", epochs),
      field("hidden-layers", "Hidden layer widths", hidden, "comma separated; recommenders use the first as hidden size"),
      field("learning-rate", "Learning rate", lr),
      field("batch-size", "Batch size", batch),
      field("patience", "Early stopping patience", patience, "epochs without improvement; 0 turns it off")),
    h("div", { class: "row" }, start), status);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const widths = hidden.value.split(/[,\s]+/).filter(Boolean).map(Number);
    if (widths.some((w) => !Number.isInteger(w) || w < 1)) {
      fill(status, problem({ detail: "hidden layer widths must be whole numbers of at least 1, like 64, 32" }));
      return;
    }
    const recommend = task.value === "recommendation";
    const ignore = [...out.querySelectorAll("input.ignore:checked")].map((c) => c.value).filter((c) => c !== target.value);
    const params = recommend
      ? { epochs: Number(epochs.value), batch_size: Number(batch.value), learning_rate: Number(lr.value), ...(widths.length ? { hidden: widths[0] } : {}) }
      : { epochs: Number(epochs.value), hidden_layers: widths, learning_rate: Number(lr.value), batch_size: Number(batch.value),
        early_stopping_patience: Number(patience.value) > 0 ? Number(patience.value) : null };
    const request = { model: model.value.trim(), dataset: meta.id, params };
    if (!recommend) { request.target = target.value; request.ignore = ignore; }
    if (task.value) request.task = task.value;
    start.disabled = true;
    fill(status, h("p", { role: "status" }, "Starting…"));
    try {
      const job = await api("POST", "/train", request);
      location.hash = `#/jobs/${seg(job.id)}`;
    } catch (err) {
      fill(status, problem(err));
      start.disabled = false;
    }
  });
  fill(out, h("section", { class: "panel" }, h("h2", {}, `Dataset ${fileName}`), schema, head), form);
  model.focus();
}
