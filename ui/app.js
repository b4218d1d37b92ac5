// The dashboard shell: hash routes, navigation state, the API key dialog.
import { onUnauthorized, apiKey, setApiKey } from "./api.js";
import { fill, problem } from "./dom.js";
import { modelsPage } from "./models.js";
import { versionPage } from "./version.js";
import { jobsPage, jobPage } from "./jobs.js";
import { trainPage } from "./train.js";
import { tryPage } from "./try.js";

const main = document.getElementById("main");
const dialog = document.getElementById("key-dialog");
const keyButton = document.getElementById("key-button");
let leave = null;

// Each page renders into its own view; a page still loading when the route
// changes fills a view that is no longer shown.
const routes = [
  [/^\/models$/, "models", (m, view) => modelsPage(view)],
  [/^\/models\/([^/]+)\/versions\/(\d+)$/, "models", (m, view) => versionPage(view, decodeURIComponent(m[1]), Number(m[2]))],
  [/^\/jobs$/, "jobs", (m, view) => jobsPage(view)],
  [/^\/jobs\/([^/]+)$/, "jobs", (m, view) => jobPage(view, decodeURIComponent(m[1]))],
  [/^\/train$/, "train", (m, view) => trainPage(view)],
  [/^\/try(?:\/([^/]+))?$/, "try", (m, view) => tryPage(view, m[1] ? decodeURIComponent(m[1]) : null)],
];

async function render() {
  if (leave) { leave(); leave = null; }
  const path = location.hash.replace(/^#/, "").split("?")[0] || "/models";
  const route = routes.find(([re]) => re.test(path));
  document.querySelectorAll("nav a[data-page]").forEach((a) => {
    if (route && a.dataset.page === route[1]) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  if (!route) { location.hash = "#/models"; return; }
  const view = document.createElement("div");
  fill(main, view);
  try {
    const done = (await route[2](path.match(route[0]), view)) || null;
    if (main.firstChild === view) leave = done;
    else if (done) done();
  } catch (err) {
    fill(view, problem(err));
  }
}

function askForKey(reason) {
  document.getElementById("key-reason").textContent = reason;
  document.getElementById("key-input").value = "";
  if (!dialog.open) dialog.showModal();
}

dialog.addEventListener("close", () => {
  const choice = dialog.returnValue;
  if (choice === "save") setApiKey(document.getElementById("key-input").value.trim());
  if (choice === "forget") setApiKey(null);
  keyButton.hidden = !apiKey();
  if (choice === "save" || choice === "forget") render();
});
keyButton.addEventListener("click", () => askForKey("The API key this tab uses. It is kept in session storage only."));
onUnauthorized((p) => {
  keyButton.hidden = false;
  askForKey(`${p.status} ${p.title}: ${p.detail}. Enter an API key; it is kept in this tab's session storage only.`);
});
keyButton.hidden = !apiKey();

window.addEventListener("hashchange", () => { render(); main.focus({ preventScroll: true }); });
render();
