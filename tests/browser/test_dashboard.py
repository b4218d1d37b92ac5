"""The dashboard in a real browser against the real binary: train through the
page, follow the job, read a version, try a prediction and recommendations,
promote an alias; no request leaves the server. Screenshots go to docs/."""

import re
import time

import base64

from harness import ROOT, Server, churn_rows, image_rows, interaction_rows, item_attributes, to_csv

DOCS = ROOT / "docs"
EPOCHS = 6
# A table this small picks its stopping epoch by 5-fold cross-validation, then
# refits: six fits of EPOCHS epochs each, numbered on in one history.
FITS = 6


def shot(page, name):
    page.screenshot(path=str(DOCS / f"dashboard-{name}.png"), full_page=True)


def goto(page, server, route):
    page.goto(f"{server.url}/ui#{route}")


def test_the_root_opens_the_dashboard(session, server):
    page, _, _ = session
    page.goto(server.url + "/")
    assert page.url.startswith(server.url + "/ui")
    page.wait_for_selector("nav a[aria-current=page]")
    assert page.locator("h1").first.inner_text() == "Models"


def test_a_csv_dropped_on_the_train_page_trains_a_model_with_a_live_curve(session, server):
    page, _, _ = session
    goto(page, server, "/train")
    page.wait_for_selector("#drop")
    csv = to_csv(churn_rows(300))
    transfer = page.evaluate_handle(
        """(csv) => { const dt = new DataTransfer();
             dt.items.add(new File([csv], "churn.csv", {type: "text/csv"})); return dt; }""", csv)
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    page.wait_for_selector("#train-form")
    # The inferred schema and the first rows.
    kinds = dict(zip(page.locator("table.schema tbody td:nth-child(1)").all_inner_texts(),
                     page.locator("table.schema tbody td:nth-child(2)").all_inner_texts()))
    assert kinds["tenure"] == "numeric" and kinds["plan"] == "categorical", kinds
    assert page.locator("table.head tbody tr").count() == 5
    assert page.locator("table.head tbody tr").first.inner_text().split("\t")[0] == "c0"
    page.select_option("#target", "churned")
    page.check("input.ignore[value=customer_id]")
    page.fill("#model-name", "churn")
    page.fill("#epochs", str(EPOCHS))
    page.fill("#hidden-layers", "16")
    page.fill("#learning-rate", "0.01")
    page.fill("#patience", "0")
    shot(page, "train")
    page.click("#start-training")
    page.wait_for_url(re.compile(r".*#/jobs/.+"))
    job_id = page.url.split("#/jobs/")[1]
    page.wait_for_selector("#job-done", timeout=180_000)
    job = server.ok("GET", f"/jobs/{job_id}")
    assert job["status"] == "succeeded"
    assert job["request"]["target"] == "churned"
    assert len(job["history"]) == EPOCHS * FITS
    # One point per epoch on the training curve, drawn from the event stream.
    assert page.locator("#live-curves .point-train").count() == EPOCHS * FITS
    assert page.locator("#live-curves .point-valid").count() >= EPOCHS
    assert page.locator("#job-progress").get_attribute("value") == "100"
    assert "epoch" in page.locator("#live-curves .x-label").first.text_content()
    shot(page, "job")


def test_the_jobs_page_lists_the_job(session, server):
    page, _, _ = session
    goto(page, server, "/jobs")
    page.wait_for_selector("table.jobs")
    row = page.locator("table.jobs tbody tr").first
    assert "churn" in row.inner_text() and "succeeded" in row.inner_text()


def test_the_version_page_shows_metrics_curves_schema_and_confusion_matrix(session, server):
    page, _, _ = session
    card = server.ok("GET", "/models/churn/versions/1")
    goto(page, server, "/models/churn/versions/1")
    page.wait_for_selector("#metrics")
    shown = page.locator("#metrics dd.metric-accuracy").inner_text()
    assert float(shown) == round(card["metrics"]["accuracy"], 4) or shown == str(card["metrics"]["accuracy"])
    assert page.locator("#curves .point-train").count() == len(card["history"])
    cm = page.locator("#confusion-matrix tbody tr")
    assert cm.count() == len(card["target_encoder"]["labels"])
    assert card["fingerprint"]["sha256"] in page.locator("#fingerprint").inner_text()
    assert "categorical" in page.locator("table.schema").inner_text()
    shot(page, "version")


def test_a_regression_version_shows_its_residual_histogram(session, server):
    page, _, _ = session
    rows = [{"x": i % 17, "z": (i * 7) % 11, "y": 3 * (i % 17) - (i * 7) % 11} for i in range(200)]
    job = server.ok("POST", "/train", {"model": "price", "target": "y", "data": rows,
                                        "params": {"epochs": 5, "hidden_layers": [8], "learning_rate": 0.01}}, expect=202)
    assert server.wait_for_job(job["id"])["status"] == "succeeded"
    card = server.ok("GET", "/models/price/versions/1")
    goto(page, server, "/models/price/versions/1")
    page.wait_for_selector("#residuals")
    assert page.locator("#residuals rect.bar").count() == len(card["metrics"]["residual_histogram"]["counts"])
    assert "residual" in page.locator("#residuals .x-label").text_content()
    assert page.locator("#confusion-matrix").count() == 0
    shot(page, "version-regression")


def test_the_try_it_form_answers_what_predict_answers(session, server):
    page, _, _ = session
    card = server.ok("GET", "/models/churn/versions/1")
    record = {"tenure": 5, "plan": "basic", "monthly": 42.5, "autopay": False}
    goto(page, server, "/try/churn")
    page.wait_for_selector("#try-form")
    for i, column in enumerate(card["pipeline"]["columns"]):
        value = record[column["name"]]
        field = f"#field-{i}"
        if column["kind"] in ("categorical", "boolean"):
            page.select_option(field, str(value).lower() if isinstance(value, bool) else value)
        else:
            page.fill(field, str(value))
    page.click("#predict")
    page.wait_for_selector("#predicted-label")
    expected = server.ok("POST", "/predict", {"model": "churn", "instances": [record]})["predictions"][0]
    assert page.locator("#predicted-label").inner_text() == expected["label"]
    bars = page.locator("#probabilities li")
    shown = {bars.nth(i).get_attribute("data-label"): float(bars.nth(i).get_attribute("data-probability"))
             for i in range(bars.count())}
    assert shown == expected["probabilities"]
    shot(page, "try")


def test_the_try_it_form_takes_an_image_upload_and_text(session, server, tmp_path):
    page, _, _ = session
    rows = image_rows(60)
    job = server.ok("POST", "/train", {"model": "shades", "target": "shade", "data": rows,
                                        "columns": {"note": "text"}, "pipeline": {"image": {"width": 8, "height": 8}},
                                        "params": {"epochs": 5, "hidden_layers": [8], "learning_rate": 0.01}}, expect=202)
    assert server.wait_for_job(job["id"])["status"] == "succeeded", server.ok("GET", f"/jobs/{job['id']}")
    card = server.ok("GET", "/models/shades/versions/1")
    kinds = {c["name"]: c["kind"] for c in card["pipeline"]["columns"]}
    assert kinds == {"image": "image", "note": "text"}, kinds
    record = rows[1]
    image_file = tmp_path / "sample.png"
    image_file.write_bytes(base64.b64decode(record["image"]))
    goto(page, server, "/try/shades")
    page.wait_for_selector("#try-form")
    for i, column in enumerate(card["pipeline"]["columns"]):
        field = page.locator(f"#field-{i}")
        if column["kind"] == "image":
            assert field.get_attribute("type") == "file"
            field.set_input_files(str(image_file))
        else:
            assert field.evaluate("e => e.tagName") == "TEXTAREA"
            field.fill(record["note"])
    page.click("#predict")
    page.wait_for_selector("#predicted-label")
    expected = server.ok("POST", "/predict", {"model": "shades", "instances": [
        {"image": record["image"], "note": record["note"]}]})["predictions"][0]
    assert page.locator("#predicted-label").inner_text() == expected["label"]
    bars = page.locator("#probabilities li")
    shown = {bars.nth(i).get_attribute("data-label"): float(bars.nth(i).get_attribute("data-probability"))
             for i in range(bars.count())}
    assert shown == expected["probabilities"]


def test_the_try_it_page_previews_a_users_recommendations(session, server):
    page, _, _ = session
    job = server.ok("POST", "/train", {
        "model": "shop", "task": "recommendation",
        "params": {"hidden": 16, "epochs": 4, "batch_size": 16, "early_stopping_patience": None},
        "data": interaction_rows(), "item_attributes": {"data": item_attributes()},
    }, expect=202)
    assert server.wait_for_job(job["id"])["status"] == "succeeded"
    goto(page, server, "/try/shop")
    page.wait_for_selector("#rec-form")
    options = page.locator("#rec-users option")
    options.first.wait_for(state="attached")
    assert options.count() == 60
    page.fill("#rec-user", "u3")
    page.fill("#rec-k", "5")
    page.click("#recommend")
    page.wait_for_selector("#recommended-items li")
    expected = server.ok("POST", "/recommend", {"model": "shop", "user": "u3", "k": 5, "include_history": True})
    shown = [li.get_attribute("data-item") for li in page.locator("#recommended-items li").all()]
    assert shown == [i["item"] for i in expected["items"]]
    history = {li.get_attribute("data-item") for li in page.locator("#history-items li").all()}
    assert history == {r["item_id"] for r in interaction_rows() if r["user_id"] == "u3"}
    assert "genre:" in page.locator("#recommended-items").inner_text()
    page.locator("#recommended-items li button").first.click()
    page.wait_for_selector("#similar-items li")
    shot(page, "recommend")


def test_a_running_job_shows_progress_live_and_cancels(session, server):
    page, _, _ = session
    job = server.ok("POST", "/train", {"model": "long", "target": "churned", "data": churn_rows(400),
                                        "validation": {"kind": "holdout"},
                                        "params": {"epochs": 5000, "hidden_layers": [32], "batch_size": 8,
                                                   "early_stopping_patience": None}}, expect=202)
    goto(page, server, f"/jobs/{job['id']}")
    # The page redraws as epochs arrive: wait for elements to be attached, read counts.
    page.wait_for_selector("#live-curves .point-train", state="attached")
    page.wait_for_selector("#job-eta", state="attached")
    first = page.locator("#live-curves .point-train").count()
    # (wait_for_function would evaluate a string, which the page's CSP forbids.)
    deadline = time.time() + 60
    while page.locator("#live-curves .point-train").count() <= first:
        assert time.time() < deadline, "the curve did not grow"
        page.wait_for_timeout(100)
    assert page.evaluate("() => Number(document.getElementById('job-progress').value)") < 100
    goto(page, server, "/jobs")
    page.wait_for_selector("table.jobs .status-running")
    shot(page, "jobs")
    goto(page, server, f"/jobs/{job['id']}")
    page.click("#job-cancel")
    page.wait_for_selector("h1 .status-cancelled", timeout=60_000)
    assert server.wait_for_job(job["id"])["status"] == "cancelled"


def test_promoting_an_alias_on_the_models_page_shows_in_the_api(session, server):
    page, _, _ = session
    goto(page, server, "/models")
    page.wait_for_selector("#alias-form")
    page.select_option("#alias-model", "churn")
    page.fill("#alias-name", "production")
    page.select_option("#alias-version", "1")
    page.click("#alias-set")
    page.wait_for_selector(".notice")
    model = next(m for m in server.ok("GET", "/models")["models"] if m["name"] == "churn")
    assert model["aliases"] == {"production": 1}
    assert "production → v1" in page.locator("table.models").inner_text()
    acc = page.locator("table.models .metric-accuracy").first.inner_text()
    assert acc.startswith("accuracy ")
    shot(page, "models")


def test_an_api_error_is_shown_with_its_detail(session, server):
    page, _, _ = session
    goto(page, server, "/models")
    page.wait_for_selector("#alias-form")
    page.select_option("#alias-model", "churn")
    page.select_option("#delete-version", "1")
    page.once("dialog", lambda d: d.accept())
    page.click("#version-delete")
    problem = page.wait_for_selector(".problem")
    _, answer = server.call("DELETE", "/models/churn/versions/1")
    assert answer["detail"] in problem.inner_text()
    assert "409" in problem.inner_text()


def test_the_pages_are_keyboard_navigable_and_fit_a_phone(session, server, browser):
    page, _, _ = session
    goto(page, server, "/models")
    page.reload()
    page.wait_for_selector("table.models")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Jobs"
    page.keyboard.press("Enter")
    page.wait_for_selector("table.jobs")
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    p = phone.new_page()
    p.goto(f"{server.url}/ui#/models")
    p.wait_for_selector("table.models")
    assert p.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    p.screenshot(path=str(DOCS / "dashboard-phone.png"), full_page=True)
    phone.close()


def test_a_server_with_keys_asks_for_one_and_shows_403_plainly(browser):
    admin, reader = "admin+read:ui-admin-key-0123456789", "read:ui-reader-key-0123456789"
    server = Server(env={"MYELIN_AUTH__KEYS": f"{admin},{reader}"})
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(f"{server.url}/ui#/models")
        page.wait_for_selector("#key-dialog[open]")
        assert "401" in page.locator("#key-reason").inner_text()
        page.fill("#key-input", "ui-reader-key-0123456789")
        page.click("#key-form button[value=save]")
        page.wait_for_selector("h1:has-text('Models')")
        page.wait_for_selector("text=No models yet")
        assert page.evaluate("sessionStorage.getItem('myelin.apiKey')") == "ui-reader-key-0123456789"
        assert page.evaluate("localStorage.length") == 0
        # A read key cannot start training: the 403 and its detail are shown.
        server.key = "ui-admin-key-0123456789"
        job = server.ok("POST", "/train", {"model": "tiny", "target": "churned", "data": churn_rows(80),
                                            "params": {"epochs": 1, "hidden_layers": [4]}}, expect=202)
        server.wait_for_job(job["id"])
        page.reload()
        page.wait_for_selector("#alias-form")
        page.click("#alias-set")
        problem = page.wait_for_selector(".problem")
        assert "403" in problem.inner_text() and "scope" in problem.inner_text()
        context.close()
    finally:
        server.stop()
