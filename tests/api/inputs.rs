//! Text and image inputs: training on raw sentences and encoded images mixed
//! with table columns, predicting on raw strings, and refusing bad input.

use serde_json::{json, Value};

use crate::helpers::*;

const PRAISE: [&str; 6] = [
    "great",
    "excellent",
    "love",
    "perfect",
    "wonderful",
    "happy",
];
const BLAME: [&str; 6] = [
    "awful",
    "terrible",
    "broken",
    "refund",
    "disappointed",
    "worst",
];
const FILLER: [&str; 8] = [
    "the", "delivery", "product", "it", "was", "really", "and", "support",
];

/// A synthetic review: filler words with two sentiment words; the label is the sentiment.
fn review(rng: &mut Lcg, positive: bool) -> String {
    let words = if positive { PRAISE } else { BLAME };
    let mut out = Vec::new();
    for i in 0..8 {
        if i == 2 || i == 5 {
            out.push(words[rng.below(6) as usize]);
        } else {
            out.push(FILLER[rng.below(8) as usize]);
        }
    }
    let mut text = out.join(" ");
    if rng.below(2) == 0 {
        text = text.to_uppercase();
    }
    text + "!"
}

fn review_rows(n: usize, seed: u64) -> Vec<Value> {
    let mut rng = Lcg::new(seed);
    (0..n)
        .map(|i| {
            let positive = i % 2 == 0;
            let channel = ["web", "app", "mail"][rng.below(3) as usize];
            json!({
                "review": review(&mut rng, positive),
                "age": 20 + rng.below(50),
                "channel": channel,
                "sentiment": if positive { "pos" } else { "neg" },
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentiment_model_trains_on_raw_text_mixed_with_table_columns_and_predicts_raw_sentences()
{
    let app = spawn_app().await;
    let done = app
        .train(&json!({
            "model": "reviews",
            "target": "sentiment",
            "params": {"hidden_layers": [16], "epochs": 30, "batch_size": 32,
                       "learning_rate": 0.01, "early_stopping_patience": null},
            "pipeline": {"text": {"ngram_range": [1, 2], "min_df": 2}},
            "data": review_rows(200, 7),
        }))
        .await;
    let accuracy = done["metrics"]["accuracy"].as_f64().unwrap();
    assert!(accuracy >= 0.95, "{done:#}");

    let card = app.get_ok("/models/reviews/versions/1").await;
    let text = card.to_string();
    assert!(text.contains("\"tfidf\""), "{card:#}");
    assert!(text.contains("\"excellent\""), "vocabulary saved: {card:#}");

    let answer = app
        .predict(&json!({"model": "reviews", "instances": [
            {"review": "I love it, excellent product, wonderful support", "age": 30, "channel": "web"},
            {"review": "Terrible. Arrived broken and I want a refund", "age": 30, "channel": "web"},
            {"review": null, "age": 30, "channel": "app"},
        ]}))
        .await;
    let predictions = answer["predictions"].as_array().unwrap();
    assert_eq!(predictions[0]["label"], "pos", "{answer:#}");
    assert_eq!(predictions[1]["label"], "neg", "{answer:#}");
    assert!(predictions[2]["label"].is_string());

    let response = app
        .post_json(
            "/predict",
            &json!({"model": "reviews", "instances": [{"review": ["not", "a", "string"], "age": 1, "channel": "web"}]}),
        )
        .await;
    let problem = assert_problem(response, 422, Some("wrong_type")).await;
    assert_eq!(problem["field"], "review");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_text_features_train_without_a_vocabulary() {
    let app = spawn_app().await;
    let done = app
        .train(&json!({
            "model": "hashed",
            "target": "sentiment",
            "columns": {"review": "text"},
            "ignore": ["age", "channel"],
            "params": {"hidden_layers": [8], "epochs": 30, "batch_size": 32,
                       "learning_rate": 0.01, "early_stopping_patience": null},
            "pipeline": {"text": {"hashing": 512, "char_ngrams": [2, 3]}},
            "data": review_rows(200, 8),
        }))
        .await;
    assert!(
        done["metrics"]["accuracy"].as_f64().unwrap() >= 0.9,
        "{done:#}"
    );
    let card = app.get_ok("/models/hashed/versions/1").await;
    assert!(
        card.to_string().contains("\"hash_buckets\":512"),
        "{card:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_text_options_are_refused_with_422_naming_the_field() {
    let app = spawn_app().await;
    let mut request = json!({
        "model": "reviews",
        "target": "sentiment",
        "pipeline": {"text": {"ngram_range": [1, 3]}},
        "data": review_rows(20, 1),
    });
    let problem = assert_problem(
        app.post_json("/train", &request).await,
        422,
        Some("invalid_options"),
    )
    .await;
    assert!(
        detail(&problem).contains("pipeline.text.ngram_range is [1, 3]"),
        "{problem:#}"
    );
    request["pipeline"] = json!({"text": {"min_dff": 2}});
    let problem = assert_problem(app.post_json("/train", &request).await, 422, None).await;
    assert_eq!(problem["field"], "pipeline.text.min_dff", "{problem:#}");
    assert!(detail(&problem).contains("min_dff"), "{problem:#}");
}

/// A `side`×`side` grayscale PNG (base64) of a bar: vertical, horizontal or diagonal.
fn bar_png(shape: usize, side: u32, rng: &mut Lcg) -> String {
    use base64::Engine as _;
    let offset = rng.below(u64::from(side) / 2) as u32 + side / 4;
    let img = image::GrayImage::from_fn(side, side, |x, y| {
        let on = match shape {
            0 => x.abs_diff(offset) <= side / 8,
            1 => y.abs_diff(offset) <= side / 8,
            _ => x.abs_diff(y) <= side / 8,
        };
        let noise = rng.below(40) as u8;
        image::Luma([if on { 215 + noise } else { noise }])
    });
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

const SHAPES: [&str; 3] = ["vertical", "horizontal", "diagonal"];

fn bar_rows(n: usize, seed: u64) -> Vec<Value> {
    let mut rng = Lcg::new(seed);
    (0..n)
        .map(|i| json!({"picture": bar_png(i % 3, 8, &mut rng), "shape": SHAPES[i % 3]}))
        .collect()
}

fn image_params() -> Value {
    json!({"hidden_layers": [32], "epochs": 40, "batch_size": 16,
           "learning_rate": 0.005, "early_stopping_patience": null})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_classifier_trains_on_base64_pngs_and_predicts_a_png_of_another_size() {
    let app = spawn_app().await;
    let done = app
        .train(&json!({
            "model": "bars",
            "target": "shape",
            "params": image_params(),
            "pipeline": {"image": {"width": 8, "height": 8, "mode": "grayscale"}},
            "data": bar_rows(150, 3),
        }))
        .await;
    assert!(
        done["metrics"]["accuracy"].as_f64().unwrap() >= 0.9,
        "{done:#}"
    );
    let card = app.get_ok("/models/bars/versions/1").await;
    assert!(
        card.to_string().contains("\"encoding\":\"image\""),
        "{card:#}"
    );

    let mut rng = Lcg::new(99);
    let instances: Vec<Value> = (0..3)
        .map(|shape| json!({"picture": bar_png(shape, 32, &mut rng)}))
        .collect();
    let answer = app
        .predict(&json!({"model": "bars", "instances": instances}))
        .await;
    let labels: Vec<&str> = answer["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, SHAPES, "{answer:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pixel_arrays_with_a_declared_layout_train_and_predict() {
    let app = spawn_app().await;
    let rows = pixel_shape_rows(90);
    let done = app
        .train(&json!({
            "model": "tiny-pixels",
            "target": "shape",
            "columns": {"pixels": "image"},
            "params": image_params(),
            "pipeline": {"image": {"width": 4, "height": 4, "pixel_max": 9,
                                   "pixels": {"width": 4, "height": 4, "channels": 1}}},
            "data": rows.clone(),
        }))
        .await;
    assert!(
        done["metrics"]["accuracy"].as_f64().unwrap() >= 0.9,
        "{done:#}"
    );
    let answer = app
        .predict(&json!({"model": "tiny-pixels", "instances": [{"pixels": rows[4]["pixels"]}]}))
        .await;
    assert_eq!(
        answer["predictions"][0]["label"], "horizontal",
        "{answer:#}"
    );
    let response = app
        .post_json(
            "/predict",
            &json!({"model": "tiny-pixels", "instances": [{"pixels": [1, 2, 3]}]}),
        )
        .await;
    let problem = assert_problem(response, 422, Some("invalid_image")).await;
    assert!(detail(&problem).contains("3 pixel values"), "{problem:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_or_oversized_images_are_refused_with_422_naming_the_row() {
    use base64::Engine as _;
    let app = spawn_app().await;
    let mut rows = bar_rows(30, 5);
    let good = rows[0]["picture"].as_str().unwrap().to_string();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&good)
        .unwrap();
    let truncated = base64::engine::general_purpose::STANDARD.encode(&bytes[..bytes.len() / 2]);
    rows[4]["picture"] = json!(truncated);
    let request = json!({"model": "bars", "target": "shape", "params": image_params(),
                         "pipeline": {"image": {"width": 8, "height": 8}}, "data": rows});
    let problem = assert_problem(
        app.post_json("/train", &request).await,
        422,
        Some("invalid_image"),
    )
    .await;
    assert!(detail(&problem).contains("row 5"), "{problem:#}");
    assert!(detail(&problem).contains("`picture`"), "{problem:#}");

    app.train(
        &json!({"model": "bars", "target": "shape", "params": image_params(),
                      "pipeline": {"image": {"width": 8, "height": 8}}, "data": bar_rows(30, 6)}),
    )
    .await;
    let huge = {
        let img = image::GrayImage::new(5000, 2);
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        base64::engine::general_purpose::STANDARD.encode(out)
    };
    for (bad, reason) in [
        (huge.as_str(), "larger than the limit"),
        (truncated.as_str(), "corrupt image"),
        ("aGVsbG8gd29ybGQ=", "not a PNG or JPEG"),
    ] {
        let response = app
            .post_json(
                "/predict",
                &json!({"model": "bars", "instances": [{"picture": good}, {"picture": bad}]}),
            )
            .await;
        let problem = assert_problem(response, 422, Some("invalid_image")).await;
        assert_eq!(problem["instance_index"], 1);
        assert_eq!(problem["field"], "picture");
        assert!(detail(&problem).contains(reason), "{problem:#}");
    }
    let answer = app
        .predict(&json!({"model": "bars", "instances": [{"picture": good}]}))
        .await;
    assert!(answer["predictions"][0]["label"].is_string());
}
