use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::io::Cursor;

use base64::Engine as _;

use super::*;
use crate::data::wav::{decode_wav, resample};
use crate::data::{infer_schema, Cell, ColumnKind, FeaturePipeline, PipelineOptions, Table};

/// A WAV file of `frames` frames: channel `c` of frame `i` is `signal(i, c)` in [-1, 1].
fn wav(spec: hound::WavSpec, frames: usize, signal: impl Fn(usize, usize) -> f64) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut bytes, spec).unwrap();
    for i in 0..frames {
        for c in 0..usize::from(spec.channels) {
            let v = signal(i, c);
            match spec.sample_format {
                hound::SampleFormat::Float => writer.write_sample(v as f32).unwrap(),
                hound::SampleFormat::Int => {
                    let full = (1i64 << (spec.bits_per_sample - 1)) as f64;
                    let q = (v * full).round().clamp(-full, full - 1.0) as i32;
                    writer.write_sample(q).unwrap()
                }
            }
        }
    }
    writer.finalize().unwrap();
    bytes.into_inner()
}

fn spec(channels: u16, rate: u32, bits: u16, format: hound::SampleFormat) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: format,
    }
}

fn tone(rate: u32, hz: f64, secs: f64, amplitude: f64) -> Vec<u8> {
    let frames = (secs * f64::from(rate)) as usize;
    wav(
        spec(1, rate, 16, hound::SampleFormat::Int),
        frames,
        |i, _| amplitude * (2.0 * PI * hz * i as f64 / f64::from(rate)).sin(),
    )
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Magnitudes of the DFT of `x` at bins 0..=n/2, computed directly.
fn dft_power(x: &[f64], n: usize) -> Vec<f64> {
    (0..=n / 2)
        .map(|k| {
            let (mut re, mut im) = (0.0, 0.0);
            for (t, &v) in x.iter().enumerate() {
                let phase = -2.0 * PI * (k * t) as f64 / n as f64;
                re += v * phase.cos();
                im += v * phase.sin();
            }
            re * re + im * im
        })
        .collect()
}

fn peak_hz(x: &[f32], rate: u32) -> f64 {
    let x: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let power = dft_power(&x, x.len());
    let peak = (1..power.len())
        .max_by(|&a, &b| power[a].total_cmp(&power[b]))
        .unwrap();
    peak as f64 * f64::from(rate) / x.len() as f64
}

#[test]
fn every_supported_encoding_decodes_to_the_same_mono_signal() {
    use hound::SampleFormat::{Float, Int};
    let frames = 64;
    let value = |i: usize| 0.5 * (2.0 * PI * i as f64 / 16.0).sin();
    for (bits, format) in [(8, Int), (16, Int), (24, Int), (32, Int), (32, Float)] {
        for channels in [1u16, 2, 3] {
            // Channels differ but average to `value`.
            let bytes = wav(spec(channels, 8000, bits, format), frames, |i, c| {
                let offset = if channels == 1 { 0.0 } else { 0.2 };
                value(i)
                    + if c == 0 {
                        offset
                    } else if c == 1 {
                        -offset
                    } else {
                        0.0
                    }
            });
            let clip = decode_wav(&bytes, &AudioLimits::default()).unwrap();
            assert_eq!(clip.sample_rate, 8000);
            assert_eq!(
                clip.samples.len(),
                frames,
                "{bits}-bit {format:?} × {channels}"
            );
            let tolerance = if bits == 8 { 1.0 / 64.0 } else { 1e-4 };
            for (i, &s) in clip.samples.iter().enumerate() {
                assert!(
                    (f64::from(s) - value(i)).abs() < tolerance,
                    "{bits}-bit {format:?} × {channels}, sample {i}: {s}"
                );
            }
        }
    }
}

#[test]
fn resampling_a_sine_keeps_its_frequency() {
    for (from, to, hz) in [
        (44_100, 16_000, 1000.0),
        (8000, 16_000, 440.0),
        (22_050, 16_000, 3000.0),
    ] {
        let bytes = tone(from, hz, 0.5, 0.8);
        let clip = decode_wav(&bytes, &AudioLimits::default()).unwrap();
        let out = resample(&clip.samples, from, to, 4000).unwrap();
        assert_eq!(out.len(), 4000);
        let found = peak_hz(&out, to);
        // Bin spacing is 4 Hz: the peak stays in the bin of the tone.
        assert!(
            (found - hz).abs() <= 4.0,
            "{from} -> {to}: {hz} Hz came out at {found} Hz"
        );
        // The delay is removed: the resampled sine starts in phase, near zero.
        assert!(out[0].abs() < 0.1, "{}", out[0]);
        let rms = (out.iter().map(|v| v * v).sum::<f32>() / out.len() as f32).sqrt();
        assert!((rms - 0.8 / 2f32.sqrt()).abs() < 0.02, "rms {rms}");
    }
    let short = resample(&[0.5; 100], 8000, 16_000, 1000).unwrap();
    assert_eq!(short.len(), 200, "a short clip gives what it has");
}

#[test]
fn log_mel_of_a_tone_matches_a_direct_computation() {
    let (rate, hz) = (16_000u32, 1000.0);
    let options = AudioOptions {
        duration_secs: 0.1,
        n_mels: 20,
        ..AudioOptions::default()
    };
    let encoder = AudioEncoder::new(&options);
    let bytes = tone(rate, hz, 0.1, 0.5);
    let clip = decode_wav(&bytes, &AudioLimits::default()).unwrap();
    let mut out = vec![0.0; encoder.width()];
    encoder.encode(&b64(&bytes), None, &mut out).unwrap();
    // 1600 samples, 400-sample windows every 160 samples.
    assert_eq!(out.len(), 8 * 20);

    let (window, n_fft, frame) = (400usize, 512usize, 3usize);
    let x: Vec<f64> = (0..window)
        .map(|i| {
            let hann = 0.5 - 0.5 * (2.0 * PI * i as f64 / window as f64).cos();
            f64::from(clip.samples[frame * 160 + i]) * hann
        })
        .collect();
    let power = dft_power(&x, n_fft);
    let mel = |f: f64| 2595.0 * (1.0 + f / 700.0).log10();
    let top = mel(8000.0);
    let edge = |i: usize| 700.0 * (10f64.powf(top * i as f64 / 21.0 / 2595.0) - 1.0);
    let reference: Vec<f64> = (0..20)
        .map(|m| {
            let energy: f64 = power
                .iter()
                .enumerate()
                .map(|(k, p)| {
                    let f = k as f64 * 16_000.0 / n_fft as f64;
                    let w = ((f - edge(m)) / (edge(m + 1) - edge(m)))
                        .min((edge(m + 2) - f) / (edge(m + 2) - edge(m + 1)))
                        .max(0.0);
                    w * p
                })
                .sum();
            energy.max(1e-10).ln()
        })
        .collect();
    let got = &out[frame * 20..(frame + 1) * 20];
    for (m, (&g, &r)) in got.iter().zip(&reference).enumerate() {
        assert!(
            (f64::from(g) - r).abs() < 1e-2 * r.abs().max(1.0),
            "band {m}: {g} vs {r}"
        );
    }
    let loudest = (0..20).max_by(|&a, &b| got[a].total_cmp(&got[b])).unwrap();
    assert!(
        edge(loudest) < hz && hz < edge(loudest + 2),
        "band {loudest}"
    );
}

#[test]
fn clips_are_padded_or_trimmed_and_standardized_per_band() {
    let options = AudioOptions {
        duration_secs: 0.2,
        n_mels: 8,
        deltas: true,
        ..AudioOptions::default()
    };
    let short = b64(&tone(16_000, 500.0, 0.05, 0.5));
    let long = b64(&tone(8000, 2000.0, 0.6, 0.3));
    let clips = [Some(short.as_str()), None, Some(long.as_str())];
    let encoder = AudioEncoder::fit(&options, clips.into_iter(), true).unwrap();
    assert_eq!(encoder.width(), 18 * 16);
    assert_eq!(encoder.mean.len(), 16);
    assert!(encoder.std.iter().all(|&s| s >= MIN_BAND_STD));
    let mut a = vec![0.0; encoder.width()];
    let mut b = vec![0.0; encoder.width()];
    encoder.encode(&short, None, &mut a).unwrap();
    encoder.encode(&long, None, &mut b).unwrap();
    // Per band over both clips' frames: mean 0, std 1 (where the std was not floored).
    for band in 0..16 {
        let values: Vec<f32> = a.iter().chain(&b).skip(band).step_by(16).copied().collect();
        let mean = values.iter().sum::<f32>() / values.len() as f32;
        assert!(mean.abs() < 1e-3, "band {band} mean {mean}");
    }
    // The short clip is padded: its last frames are silence, unlike its first.
    assert_ne!(a[..8], a[a.len() - 16..a.len() - 8]);
    let mut names = Vec::new();
    encoder.feature_names("clip", &mut names);
    assert_eq!(names.len(), encoder.width());
    assert_eq!(
        (names[0].as_str(), names[8].as_str()),
        ("clip#t0m0", "clip#t0d0")
    );
    encoder.check().unwrap();
}

#[test]
fn augmentation_is_seeded_and_changes_the_features() {
    let options = AudioOptions {
        duration_secs: 0.3,
        augment: Some(AugmentOptions::default()),
        ..AudioOptions::default()
    };
    let encoder = AudioEncoder::new(&options);
    assert_eq!(encoder.augment_copies(), 1);
    let clip = b64(&tone(16_000, 700.0, 0.2, 0.5));
    let run = |seed: Option<u64>| {
        let mut out = vec![0.0; encoder.width()];
        encoder.encode(&clip, seed, &mut out).unwrap();
        out
    };
    assert_eq!(run(Some(7)), run(Some(7)));
    assert_ne!(run(Some(7)), run(Some(8)));
    assert_ne!(run(Some(7)), run(None));
    assert!(run(Some(7)).iter().all(|v| v.is_finite()));
}

#[test]
fn invalid_clips_are_refused_with_a_reason() {
    let encoder = AudioEncoder::new(&AudioOptions::default());
    let mut out = vec![0.0; encoder.width()];
    let mut reason = |text: &str| encoder.encode(text, None, &mut out).unwrap_err();
    assert!(reason("not base64!").contains("base64"));
    assert!(reason(&b64(b"RIFF....WAVEjunk")).starts_with("not a readable WAV"));
    assert!(reason("data:audio/wav,abc").contains("data URL"));
    let good = tone(16_000, 440.0, 0.1, 0.5);
    let truncated = b64(&good[..good.len() - 7]);
    assert!(
        reason(&truncated).contains("truncated"),
        "{}",
        reason(&truncated)
    );
    let empty = wav(spec(1, 16_000, 16, hound::SampleFormat::Int), 0, |_, _| 0.0);
    assert_eq!(reason(&b64(&empty)), "the clip has no samples");
    // ADPCM (format tag 2) is not PCM.
    let mut adpcm = good.clone();
    adpcm[20] = 2;
    assert!(reason(&b64(&adpcm)).starts_with("unsupported WAV encoding"));
    let mut nan = wav(spec(1, 8000, 32, hound::SampleFormat::Float), 4, |_, _| 0.0);
    let data = nan.len() - 4;
    nan[data..].copy_from_slice(&f32::NAN.to_le_bytes());
    assert!(reason(&b64(&nan)).contains("not a finite number"));

    let limits = AudioLimits {
        max_clip_secs: 0.05,
        max_sample_rate: 16_000,
    };
    let err = decode_wav(&good, &limits).unwrap_err();
    assert!(
        err.contains("the clip is 0.10 s long; the limit is 0.05 s"),
        "{err}"
    );
    let err = decode_wav(&tone(22_050, 440.0, 0.01, 0.5), &limits).unwrap_err();
    assert!(err.contains("22050 Hz; the limit is 16000 Hz"), "{err}");
}

#[test]
fn no_byte_string_makes_the_decoder_panic() {
    let good = tone(11_025, 440.0, 0.05, 0.5);
    let encoder = AudioEncoder::new(&AudioOptions {
        duration_secs: 0.05,
        ..AudioOptions::default()
    });
    let mut out = vec![0.0; encoder.width()];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for round in 0..2000 {
        let mut bytes = good.clone();
        // Corrupt a few header bytes (the first 48) and sometimes cut the file.
        for _ in 0..1 + round % 4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state % 48) as usize;
            bytes[at] = (state >> 40) as u8;
        }
        if round % 3 == 0 {
            bytes.truncate((state >> 20) as usize % bytes.len());
        }
        if let Ok(()) = encoder.encode(&b64(&bytes), None, &mut out) {
            assert!(out.iter().all(|v| v.is_finite()), "round {round}");
        }
    }
}

#[test]
fn base64_wav_is_recognized() {
    let clip = b64(&tone(8000, 440.0, 0.01, 0.5));
    assert!(clip.starts_with("UklGR"));
    assert!(looks_like_encoded_audio(&clip));
    assert!(looks_like_encoded_audio("data:audio/wav;base64,AAAA"));
    assert!(!looks_like_encoded_audio("UklGRg"));
    assert!(!looks_like_encoded_audio(&b64(b"RIFF\0\0\0\0AVI LIST")));
}

#[test]
fn options_are_validated_naming_the_field() {
    let bad = |o: AudioOptions| o.validate().unwrap_err();
    let d = AudioOptions::default;
    assert!(bad(AudioOptions {
        sample_rate: 100,
        ..d()
    })
    .contains("pipeline.audio.sample_rate is 100"));
    assert!(bad(AudioOptions { n_mels: 0, ..d() }).contains("pipeline.audio.n_mels is 0"));
    assert!(bad(AudioOptions { hop_ms: 0.0, ..d() }).contains("pipeline.audio.hop_ms"));
    assert!(bad(AudioOptions {
        duration_secs: 0.01,
        window_ms: 25.0,
        ..d()
    })
    .contains("window_ms"));
    assert!(bad(AudioOptions {
        hop_ms: 0.1,
        n_mels: 128,
        ..d()
    })
    .contains("features per clip"));
    let augment = AugmentOptions {
        copies: 0,
        ..AugmentOptions::default()
    };
    assert!(bad(AudioOptions {
        augment: Some(augment),
        ..d()
    })
    .contains("augment.copies is 0"));
    d().validate().unwrap();
}

#[test]
fn audio_columns_are_inferred_fitted_and_round_trip_through_json() {
    let clips: Vec<String> = (0..6)
        .map(|i| b64(&tone(16_000, 300.0 + 200.0 * f64::from(i % 2), 0.1, 0.4)))
        .collect();
    let table = Table {
        columns: vec!["clip".into(), "y".into()],
        cells: vec![
            clips.iter().map(|c| Cell::Text(c.clone())).collect(),
            (0..6)
                .map(|i| Cell::Text(["low", "high"][i % 2].into()))
                .collect(),
        ],
    };
    let schema = infer_schema(&table, &BTreeMap::new(), &[]).unwrap();
    assert_eq!(schema.columns[0].kind, ColumnKind::Audio);
    let options = PipelineOptions {
        audio: AudioOptions {
            duration_secs: 0.1,
            ..AudioOptions::default()
        },
        ..PipelineOptions::default()
    };
    let rows: Vec<usize> = (0..6).collect();
    let p = FeaturePipeline::fit(&table, &rows, &schema, "y", &options).unwrap();
    assert_eq!(p.width(), 8 * 40);
    let json = serde_json::to_string(&p).unwrap();
    let back: FeaturePipeline = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
    let x = p.transform(&table, &rows).unwrap();
    assert_eq!(back.transform(&table, &rows).unwrap(), x);
    let record: serde_json::Map<String, serde_json::Value> =
        serde_json::from_value(serde_json::json!({ "clip": clips[1] })).unwrap();
    let mut out = vec![0.0; p.width()];
    back.transform_record(&record, &mut out).unwrap();
    assert_eq!(out, x.row(1).to_vec());
    let bad: serde_json::Map<String, serde_json::Value> =
        serde_json::from_value(serde_json::json!({ "clip": "AAAA" })).unwrap();
    let err = back.transform_record(&bad, &mut out).unwrap_err();
    assert!(
        matches!(err, crate::data::RecordError::InvalidAudio { ref field, .. } if field == "clip")
    );
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["columns"][0]["encoder"]["std"][0] = serde_json::json!(0.0);
    assert!(serde_json::from_value::<FeaturePipeline>(v).is_err());

    let augmented = FeaturePipeline::fit(
        &table,
        &rows,
        &schema,
        "y",
        &PipelineOptions {
            audio: AudioOptions {
                augment: Some(AugmentOptions {
                    copies: 2,
                    ..AugmentOptions::default()
                }),
                ..options.audio.clone()
            },
            ..options.clone()
        },
    )
    .unwrap();
    let (dense, _) = augmented
        .transform_split_augmented(&table, &rows, 3)
        .unwrap();
    assert_eq!(dense.nrows(), 18);
    assert_eq!(
        dense.slice(ndarray::s![..6, ..]),
        augmented.transform(&table, &rows).unwrap()
    );
    assert_ne!(
        dense.slice(ndarray::s![6..12, ..]),
        dense.slice(ndarray::s![12.., ..])
    );
    let mut bad_table = table.clone();
    bad_table.cells[0][4] = Cell::Text("UklGRjAAAABXQVZF".into());
    let err =
        crate::data::check_audio(&bad_table, &rows, &schema, "y", &options.audio).unwrap_err();
    assert_eq!(err.code(), "invalid_audio");
    assert!(err.to_string().starts_with("row 5, column `clip`"), "{err}");
}
