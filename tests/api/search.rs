//! Budgeted search (`search`): successive halving over the documented space,
//! the leaderboard in the job and on the version, the best trial's settings
//! trained as the version, determinism for a seed, validation and cancel.

use serde_json::{json, Value};

use crate::helpers::*;

/// A small search: 4 trials (rungs of 4 × 2 epochs, then 2 × 6 epochs) on a
/// small network whose width is fixed by the request, so only dropout,
/// learning rate, weight decay and the numeric bins are searched.
fn search_request(model: &str) -> Value {
    json!({
        "model": model,
        "target": "churned",
        "params": {"hidden_layers": [8], "epochs": 6, "batch_size": 32,
            "early_stopping_patience": null},
        "validation": {"kind": "holdout"},
        "search": {"max_trials": 4, "max_seconds": 600},
        "data": churn_rows(300, 11),
    })
}

/// The leaderboard without its timings.
fn untimed(leaderboard: &Value) -> Vec<Value> {
    leaderboard
        .as_array()
        .expect("leaderboard")
        .iter()
        .map(|t| {
            let mut t = t.clone();
            t.as_object_mut().unwrap().remove("seconds");
            t
        })
        .collect()
}

#[tokio::test]
async fn a_search_ranks_its_trials_and_saves_the_best_as_the_version() {
    let app = spawn_app().await;
    let job = app.train(&search_request("searched")).await;
    let search = &job["metrics"]["search"];
    assert_eq!(search["trials"], 4, "{search:#}");
    assert_eq!(search["fits"], 6, "{search:#}");
    assert_eq!(search["cut_by_time"], false);
    assert_eq!(
        search["rungs"],
        json!([{"trials": 4, "epochs": 2}, {"trials": 2, "epochs": 6}])
    );
    let leaderboard = search["leaderboard"].as_array().expect("leaderboard");
    assert_eq!(leaderboard.len(), 4);
    // Two trials reached the last rung and rank first, by validation loss.
    assert_eq!(leaderboard[0]["rung"], 2);
    assert_eq!(leaderboard[1]["rung"], 2);
    assert_eq!(leaderboard[2]["rung"], 1);
    assert!(leaderboard[0]["valid_loss"].as_f64() <= leaderboard[1]["valid_loss"].as_f64());
    assert!(leaderboard[2]["valid_loss"].as_f64() <= leaderboard[3]["valid_loss"].as_f64());
    for trial in leaderboard {
        assert_eq!(trial["params"]["hidden_layers"], json!([8]), "{trial:#}");
        assert!(trial["seconds"].as_f64().is_some(), "{trial:#}");
        assert_eq!(trial["metric"], "accuracy");
    }
    // Trial 1 is the default recipe.
    let first = leaderboard
        .iter()
        .find(|t| t["trial"] == 1)
        .expect("trial 1");
    assert_eq!(first["params"]["learning_rate"].as_f64(), Some(0.001));
    assert_eq!(search["best_trial"], leaderboard[0]["trial"]);

    // Every trial's epochs and the final fit's are in the job's history, numbered on.
    let history = job["history"].as_array().expect("history");
    assert_eq!(history.len(), 4 * 2 + 2 * 6 + 6, "{job:#}");
    assert!(history
        .windows(2)
        .all(|w| w[1]["epoch"].as_u64() > w[0]["epoch"].as_u64()));
    // Each trial's epochs name their trial: rung 1 runs trials 1–4 for 2 epochs
    // each, rung 2 the two best for 6; the final fit names none.
    let trials: Vec<Value> = history.iter().map(|e| e["trial"].clone()).collect();
    let rung_one: Vec<Value> = (1..=4).flat_map(|t| [json!(t), json!(t)]).collect();
    assert_eq!(trials[..8], rung_one[..], "{job:#}");
    let finalists: Vec<u64> = leaderboard[..2]
        .iter()
        .map(|t| t["trial"].as_u64().unwrap())
        .collect();
    assert!(trials[8..20]
        .iter()
        .all(|t| finalists.contains(&t.as_u64().unwrap_or(0))));
    assert!(trials[20..].iter().all(Value::is_null), "{job:#}");

    // The version carries the same leaderboard, and the best trial's settings.
    let card = app
        .get_ok(&format!("/models/searched/versions/{}", job["version"]))
        .await;
    assert_eq!(card["metrics"]["search"], *search);
    let best = &leaderboard[0]["params"];
    assert_eq!(card["params"]["hidden_layers"], best["hidden_layers"]);
    for key in ["dropout", "learning_rate", "weight_decay"] {
        // The card's parameters are f32s.
        let (got, want) = (card["params"][key].as_f64(), best[key].as_f64());
        assert!(
            (got.unwrap() - want.unwrap()).abs() <= 1e-6 * want.unwrap().max(1e-3),
            "{key}: card {got:?}, best trial {want:?}"
        );
    }
    assert_eq!(card["params"]["epochs"], 6);

    // The same seed gives the same leaderboard.
    let again = app.train(&search_request("searched-again")).await;
    assert_eq!(
        untimed(&again["metrics"]["search"]["leaderboard"]),
        untimed(&search["leaderboard"])
    );
    app.stop().await;
}

#[tokio::test]
async fn search_fields_are_checked_naming_the_field() {
    let app = spawn_app().await;
    for (search, field) in [
        (json!({"max_trials": 0}), "search.max_trials"),
        (json!({"max_trials": 257}), "search.max_trials"),
        (json!({"max_seconds": 0}), "search.max_seconds"),
        (json!({"max_seconds": -3.5}), "search.max_seconds"),
    ] {
        let mut body = search_request("checked");
        body["search"] = search;
        let problem = assert_problem(
            app.post_json("/train", &body).await,
            422,
            Some("invalid_parameter"),
        )
        .await;
        assert_eq!(problem["field"], field, "{problem:#}");
    }
    let mut body = search_request("checked");
    body["search"] = json!({"max_trials": 4, "rungs": 2});
    let problem = assert_problem(app.post_json("/train", &body).await, 422, None).await;
    assert_eq!(problem["field"], "search.rungs", "{problem:#}");
    let mut tiny = search_request("checked");
    tiny["data"] = json!(churn_rows(12, 1));
    let problem = assert_problem(
        app.post_json("/train", &tiny).await,
        422,
        Some("invalid_parameter"),
    )
    .await;
    assert_eq!(problem["field"], "search", "{problem:#}");
    let problem = assert_problem(
        app.post_json(
            "/train",
            &json!({"model": "recs", "task": "recommendation", "search": {"max_trials": 4},
                "data": [{"user_id": "u", "item_id": "i"}]}),
        )
        .await,
        422,
        Some("invalid_body"),
    )
    .await;
    assert_eq!(problem["field"], "search");
    assert_eq!(app.get_ok("/jobs").await["total"], 0);
    app.stop().await;
}

#[tokio::test]
async fn a_running_search_is_cancelled_and_writes_no_version() {
    let app = spawn_app().await;
    let job = app
        .submit(&json!({
            "model": "long-search",
            "target": "churned",
            "params": {"hidden_layers": [64, 64], "epochs": 3000, "batch_size": 4,
                "early_stopping_patience": null},
            "validation": {"kind": "holdout"},
            "search": {"max_trials": 16, "max_seconds": 3600},
            "data": churn_rows(400, 99),
        }))
        .await;
    let id = job_id(&job).to_string();
    // The planned epochs count every rung's trials and the final fit.
    assert!(job["epochs"].as_u64().unwrap() > 3000, "{job:#}");
    app.wait_until_training(&id).await;
    let response = app.delete(&format!("/jobs/{id}")).await;
    assert_eq!(response.status(), 200);
    let done = app.wait_for_job(&id).await;
    assert_eq!(done["status"], "cancelled", "{done:#}");
    assert!(done.get("version").is_none(), "{done:#}");
    assert_problem(app.get("/models/long-search").await, 404, None).await;
    app.stop().await;
}
