//! Audio columns: training on base64 WAV clips, predicting on a raw WAV file over
//! HTTP and with the CLI, and 422 `invalid_audio` for clips that cannot be used.

use std::f64::consts::PI;
use std::process::Command;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, detail, spawn_app, Lcg};

/// A WAV file of a tone with a little noise; channel `c` of frame `i` is the same tone.
fn tone_wav(spec: hound::WavSpec, hz: f64, secs: f64, rng: &mut Lcg) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut bytes, spec).unwrap();
    let rate = f64::from(spec.sample_rate);
    let amplitude = 0.2 + 0.5 * rng.next_f64();
    for i in 0..(secs * rate) as usize {
        let v = amplitude * (2.0 * PI * hz * i as f64 / rate).sin() + 0.01 * (rng.next_f64() - 0.5);
        for _ in 0..spec.channels {
            match spec.sample_format {
                hound::SampleFormat::Float => writer.write_sample(v as f32).unwrap(),
                hound::SampleFormat::Int => {
                    let full = (1i64 << (spec.bits_per_sample - 1)) as f64;
                    writer.write_sample((v * (full - 1.0)) as i32).unwrap();
                }
            }
        }
    }
    writer.finalize().unwrap();
    bytes.into_inner()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The encodings the clips cycle through: (channels, rate, bits, format).
const ENCODINGS: [(u16, u32, u16, hound::SampleFormat); 4] = [
    (1, 16_000, 16, hound::SampleFormat::Int),
    (2, 8000, 8, hound::SampleFormat::Int),
    (1, 22_050, 32, hound::SampleFormat::Float),
    (2, 44_100, 24, hound::SampleFormat::Int),
];

/// A clip of class `pitch` ("low": 300–500 Hz, "high": 1800–2600 Hz).
fn clip(i: usize, pitch: &str, rng: &mut Lcg) -> String {
    let (channels, sample_rate, bits_per_sample, sample_format) = ENCODINGS[i % ENCODINGS.len()];
    let spec = hound::WavSpec {
        channels,
        sample_rate,
        bits_per_sample,
        sample_format,
    };
    let hz = match pitch {
        "low" => 300.0 + 200.0 * rng.next_f64(),
        _ => 1800.0 + 800.0 * rng.next_f64(),
    };
    b64(&tone_wav(spec, hz, 0.1 + 0.2 * rng.next_f64(), rng))
}

fn clip_rows(n: usize, seed: u64) -> Vec<Value> {
    let mut rng = Lcg::new(seed);
    (0..n)
        .map(|i| {
            let pitch = ["low", "high"][i % 2];
            json!({"clip": clip(i / 2, pitch, &mut rng), "pitch": pitch})
        })
        .collect()
}

fn audio_request(model: &str, rows: Vec<Value>) -> Value {
    json!({
        "model": model,
        "target": "pitch",
        "data": rows,
        "params": {"hidden_layers": [16], "epochs": 30, "batch_size": 16,
                   "learning_rate": 0.01, "early_stopping_patience": null},
        "pipeline": {"audio": {"duration_secs": 0.25, "n_mels": 16, "deltas": true,
                               "augment": {"copies": 1, "snr_db": 30}}}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audio_classifier_predicts_a_raw_wav_over_http_as_the_cli_does() {
    let app = spawn_app().await;
    let done = app.train(&audio_request("pitches", clip_rows(48, 1))).await;
    assert!(
        done["metrics"]["accuracy"].as_f64().unwrap() >= 0.9,
        "{done:#}"
    );

    // The model card keeps the front end: options and per-band statistics.
    let card = app.get_ok("/models/pitches/versions/1").await;
    let text = card.to_string();
    assert!(text.contains("\"encoding\":\"audio\""), "{text}");
    let schema = &card["schema"]["columns"][0];
    assert_eq!(schema["kind"], "audio", "{card:#}");

    let mut rng = Lcg::new(99);
    let instances: Vec<Value> = (0..4)
        .map(|i| json!({"clip": clip(i, ["low", "high"][i % 2], &mut rng)}))
        .collect();
    let answer = app
        .predict(&json!({"model": "pitches", "instances": instances}))
        .await;
    let predictions = answer["predictions"].as_array().unwrap();
    let labels: Vec<&str> = predictions
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["low", "high", "low", "high"], "{answer:#}");

    // The CLI reads the same stored version from disk and predicts the same.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("clips.csv");
    let mut body = String::from("clip\n");
    for instance in &instances {
        body.push_str(instance["clip"].as_str().unwrap());
        body.push('\n');
    }
    std::fs::write(&csv, body).unwrap();
    let out = dir.path().join("predictions.json");
    let status = Command::new(env!("CARGO_BIN_EXE_myelin"))
        .args(["predict", "--name", "pitches", "--models"])
        .arg(&app.store_path)
        .arg("--data")
        .arg(&csv)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let cli: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(&cli, &answer["predictions"]);

    // The caps are settings: the CLI refuses a clip over MYELIN_AUDIO__MAX_CLIP_SECS.
    let output = Command::new(env!("CARGO_BIN_EXE_myelin"))
        .args(["predict", "--name", "pitches", "--models"])
        .arg(&app.store_path)
        .arg("--data")
        .arg(&csv)
        .env("MYELIN_AUDIO__MAX_CLIP_SECS", "0.05")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the limit is 0.05 s"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_clips_answer_422_invalid_audio_naming_the_row_or_the_instance() {
    let app = spawn_app().await;
    let mut rows = clip_rows(12, 2);
    rows[4]["clip"] = json!(b64(b"RIFF\x10\0\0\0WAVEnot a real file"));
    let problem = assert_problem(
        app.post_json("/train", &audio_request("broken", rows))
            .await,
        422,
        Some("invalid_audio"),
    )
    .await;
    assert!(
        detail(&problem).starts_with("row 5, column `clip`: not a readable WAV"),
        "{problem:#}"
    );

    app.train(&audio_request("pitches", clip_rows(24, 3))).await;
    let mut rng = Lcg::new(5);
    let good = clip(0, "low", &mut rng);
    let long = {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 1000,
            bits_per_sample: 8,
            sample_format: hound::SampleFormat::Int,
        };
        b64(&tone_wav(spec, 100.0, 31.0, &mut rng))
    };
    let fast = {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 200_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        b64(&tone_wav(spec, 100.0, 0.001, &mut rng))
    };
    let cases = [
        (json!("AAAA"), "not a readable WAV"),
        (json!("not base64 at all"), "not valid base64"),
        (json!(long), "the clip is 31.00 s long; the limit is 30 s"),
        (json!(fast), "200000 Hz; the limit is 192000 Hz"),
        (json!(17), "expected a base64 WAV file"),
    ];
    for (value, reason) in cases {
        let body = json!({"model": "pitches", "instances": [{"clip": good}, {"clip": value}]});
        let response = app.post_json("/predict", &body).await;
        let expected = if value.is_number() {
            "wrong_type"
        } else {
            "invalid_audio"
        };
        let problem = assert_problem(response, 422, Some(expected)).await;
        assert_eq!(problem["instance_index"], 1, "{problem:#}");
        assert_eq!(problem["field"], "clip", "{problem:#}");
        assert!(detail(&problem).contains(reason), "{reason}: {problem:#}");
    }

    let bad_options = json!({"model": "x", "target": "pitch", "data": clip_rows(4, 4),
                             "pipeline": {"audio": {"n_mels": 0}}});
    let problem = assert_problem(app.post_json("/train", &bad_options).await, 422, None).await;
    assert!(
        detail(&problem).contains("pipeline.audio.n_mels is 0"),
        "{problem:#}"
    );
}
