// Jobs: the queue and history, and one job's live page (progress, ETA,
// curves from the event stream, cancel).
import { api, follow, seg } from "./api.js";
import { h, fill, num, when, duration, problem, table } from "./dom.js";
import { historyCharts } from "./chart.js";

const TERMINAL = ["succeeded", "failed", "cancelled", "interrupted"];

function statusCell(status) { return h("span", { class: `status status-${status}` }, status); }

function progressBar(job, id) {
  const pct = Math.round((job.progress || 0) * 100);
  return h("progress", { max: 100, value: pct, id, "aria-label": `${job.model} progress ${pct}%` }, `${pct}%`);
}

export async function jobsPage(main) {
  const body = h("div", {});
  fill(main, h("h1", {}, "Jobs"), body);
  let timer = null, stopped = false;
  const refresh = async () => {
    try {
      const list = await api("GET", "/jobs?limit=100");
      const rows = list.jobs.map((j) => [
        h("a", { href: `#/jobs/${seg(j.id)}`, class: "job-link" }, j.model),
        statusCell(j.status),
        progressBar(j),
        `${j.epoch}/${j.epochs}`,
        j.status === "running" ? duration(j.eta_secs) : "–",
        j.version ? h("a", { href: `#/models/${seg(j.model)}/versions/${j.version}` }, `v${j.version}`) : "–",
        h("span", { class: "hide-narrow" }, when(j.created_at)),
      ]);
      const active = list.jobs.filter((j) => !TERMINAL.includes(j.status)).length;
      fill(body,
        h("p", { class: "muted" }, `${list.total} jobs, ${active} queued or running.`),
        list.jobs.length ? table(["Model", "Status", "Progress", "Epoch", "ETA", "Version", "Created"], rows, { class: "jobs stack" })
          : h("p", {}, "No jobs yet. ", h("a", { href: "#/train" }, "Train a model"), "."));
    } catch (err) {
      fill(body, problem(err));
    }
    if (!stopped) timer = setTimeout(refresh, 2000);
  };
  await refresh();
  return () => { stopped = true; clearTimeout(timer); };
}

export async function jobPage(main, id) {
  const controller = new AbortController();
  const head = h("div", {}), charts = h("div", { class: "grid", id: "live-curves" }), status = h("div", { "aria-live": "polite" });
  fill(main, h("p", {}, h("a", { href: "#/jobs" }, "← Jobs")), head, status,
    h("section", { class: "panel", id: "curves" }, h("h2", {}, "Training curves"), charts));
  let job;
  try {
    job = await api("GET", `/jobs/${seg(id)}`);
  } catch (err) {
    fill(head, h("h1", {}, "Job"), problem(err));
    return;
  }
  const history = job.history.slice();
  // The button is made once: redrawing it with every epoch would drop a click
  // whose press and release straddle a redraw.
  const cancel = h("button", { type: "button", class: "danger", id: "job-cancel" }, "Cancel job");
  let cancelling = false;
  cancel.addEventListener("click", async () => {
    cancelling = true;
    cancel.disabled = true;
    try {
      const answer = await api("DELETE", `/jobs/${seg(id)}`);
      // The stream may already have told the end; the answer (often "running",
      // the worker stops at its next batch) must not draw over it.
      if (!TERMINAL.includes(job.status)) job = answer;
      draw();
    } catch (err) {
      if (!TERMINAL.includes(job.status)) fill(status, problem(err));
      cancelling = false;
      draw();
    }
  });
  const info = h("div", {});
  fill(head, info, h("div", { class: "row" }, cancel));
  const draw = () => {
    cancel.disabled = cancelling || TERMINAL.includes(job.status);
    fill(info,
      h("h1", {}, `Training ${job.model} `, statusCell(job.status)),
      h("div", { class: "row" }, h("label", { for: "job-progress" }, "Progress"), progressBar(job, "job-progress"),
        h("span", { id: "job-epoch" }, `epoch ${job.epoch} of at most ${job.epochs}`),
        job.status === "running" ? h("span", { id: "job-eta" }, `ETA ${duration(job.eta_secs)}`) : null),
      h("dl", { class: "kv" },
        h("dt", {}, "job"), h("dd", {}, job.id),
        h("dt", {}, "created"), h("dd", {}, when(job.created_at)),
        h("dt", {}, "finished"), h("dd", {}, when(job.finished_at)),
        job.metrics ? [h("dt", {}, "metrics"), h("dd", {}, Object.entries(job.metrics).filter(([, v]) => typeof v === "number").map(([k, v]) => `${k} ${num(v)}`).join(" · "))] : null),
      job.error ? h("div", { class: "problem", role: "alert" }, h("strong", {}, job.error.code), job.error.message) : null,
      job.version ? h("p", { class: "notice", id: "job-done" }, "Produced ", h("a", { href: `#/models/${seg(job.model)}/versions/${job.version}` }, `${job.model} v${job.version}`),
        " · ", h("a", { href: `#/try/${seg(job.model)}` }, "Try it")) : null);
    fill(charts, history.length ? historyCharts(history) : h("p", { class: "muted" }, "Waiting for the first epoch…"));
    charts.dataset.epochs = String(history.length);
  };
  draw();
  // Fast epochs arrive faster than anyone reads: redraw at most 4 times a second.
  let pending = null;
  const redraw = () => {
    if (TERMINAL.includes(job.status)) { clearTimeout(pending); pending = null; draw(); return; }
    if (!pending) pending = setTimeout(() => { pending = null; draw(); }, 250);
  };
  if (!TERMINAL.includes(job.status)) {
    follow(`/jobs/${seg(id)}/events`, (name, data) => {
      if (name === "epoch") {
        if (!history.some((e) => e.epoch === data.epoch)) history.push(data);
        job = { ...job, status: "running", epoch: data.epoch, progress: data.progress, eta_secs: data.eta_secs };
      } else {
        job = data;
        if (data.history && data.history.length >= history.length) history.splice(0, history.length, ...data.history);
      }
      redraw();
    }, controller.signal).catch((err) => { if (err.name !== "AbortError") fill(status, problem(err)); });
  }
  return () => { controller.abort(); clearTimeout(pending); };
}
