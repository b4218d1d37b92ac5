//! Audio features: base64-encoded WAV clips (optionally a `data:audio/wav;base64,` URL),
//! decoded (PCM 8/16/24/32-bit integer or 32-bit float, channels averaged to mono),
//! resampled to the model's rate, padded with silence or trimmed to a fixed duration,
//! turned into log-mel frames (see `mel`) and standardized per band with training
//! statistics. Training may add seeded augmented copies of each clip (time shift,
//! noise at a signal-to-noise ratio, gain).
//!
//! Features are frame-major: frame `t`, band `b` is feature `t · bands + b`. A missing
//! clip encodes as all zeros (the training mean after standardization).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use base64::Engine as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::mel::{LogMel, LogMelCell};
use super::wav::{decode_base64, decode_wav, resample};

/// Highest model sample rate (`pipeline.audio.sample_rate`).
pub const MAX_MODEL_SAMPLE_RATE: u32 = 48_000;
/// Longest model clip (`pipeline.audio.duration_secs`).
pub const MAX_MODEL_DURATION_SECS: f32 = 10.0;
/// Most mel bands.
pub const MAX_MEL_BANDS: usize = 128;
/// Most features one audio column may produce (frames × bands).
pub const MAX_AUDIO_FEATURES: usize = 100_000;
/// Smallest per-band standard deviation used for standardization (log energy units).
pub const MIN_BAND_STD: f32 = 0.01;

/// Caps on the clips accepted for decoding; `[audio]` in the settings.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AudioLimits {
    /// Longest clip accepted, in seconds (default 30).
    pub max_clip_secs: f64,
    /// Highest sample rate accepted, in Hz (default 192000).
    pub max_sample_rate: u32,
}

impl Default for AudioLimits {
    fn default() -> Self {
        AudioLimits {
            max_clip_secs: 30.0,
            max_sample_rate: 192_000,
        }
    }
}

static MAX_CLIP_MILLIS: AtomicU64 = AtomicU64::new(30_000);
static MAX_SAMPLE_RATE: AtomicU32 = AtomicU32::new(192_000);

/// Installs the process-wide decoding caps (from the settings at startup).
pub fn set_audio_limits(limits: &AudioLimits) {
    let millis = (limits.max_clip_secs.max(0.0) * 1000.0).min(u64::MAX as f64) as u64;
    MAX_CLIP_MILLIS.store(millis, Ordering::Relaxed);
    MAX_SAMPLE_RATE.store(limits.max_sample_rate, Ordering::Relaxed);
}

/// The process-wide decoding caps.
pub fn audio_limits() -> AudioLimits {
    AudioLimits {
        max_clip_secs: MAX_CLIP_MILLIS.load(Ordering::Relaxed) as f64 / 1000.0,
        max_sample_rate: MAX_SAMPLE_RATE.load(Ordering::Relaxed),
    }
}

/// Training-time augmentation: `copies` extra versions of every training clip, each
/// shifted, gained and noised with its own seeded draw.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentOptions {
    /// Augmented copies per training clip (default 1, 1..=8).
    pub copies: usize,
    /// Largest time shift either way, in milliseconds (default 100).
    pub max_shift_ms: f32,
    /// Signal-to-noise ratio of the added white noise in dB (default 20; `null`: none).
    pub snr_db: Option<f32>,
    /// Largest gain change either way, in dB (default 6).
    pub gain_db: f32,
}

impl Default for AugmentOptions {
    fn default() -> Self {
        AugmentOptions {
            copies: 1,
            max_shift_ms: 100.0,
            snr_db: Some(20.0),
            gain_db: 6.0,
        }
    }
}

/// How audio columns are featurized; `pipeline.audio` in a training request.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AudioOptions {
    /// Model sample rate in Hz (default 16000, 1000..=48000).
    pub sample_rate: u32,
    /// Clip length in seconds; shorter clips are padded with silence, longer ones
    /// trimmed (default 1.0, at most 10).
    pub duration_secs: f32,
    /// Mel bands (default 40, 1..=128).
    pub n_mels: usize,
    /// Analysis window in milliseconds (default 25).
    pub window_ms: f32,
    /// Step between frames in milliseconds (default 10).
    pub hop_ms: f32,
    /// Add per-frame deltas (regression slope over ±2 frames) after the mel bands
    /// (default false).
    pub deltas: bool,
    /// Training-time augmentation (default `null`: none).
    pub augment: Option<AugmentOptions>,
}

impl Default for AudioOptions {
    fn default() -> Self {
        AudioOptions {
            sample_rate: 16_000,
            duration_secs: 1.0,
            n_mels: 40,
            window_ms: 25.0,
            hop_ms: 10.0,
            deltas: false,
            augment: None,
        }
    }
}

impl AudioOptions {
    /// Checks every field; the message names it (`pipeline.audio.n_mels`) and its value.
    pub fn validate(&self) -> Result<(), String> {
        let field = |name: &str, value: &dyn std::fmt::Display, rule: &str| {
            Err(format!(
                "pipeline.audio.{name} is {value}; it must be {rule}"
            ))
        };
        if !(1000..=MAX_MODEL_SAMPLE_RATE).contains(&self.sample_rate) {
            return field(
                "sample_rate",
                &self.sample_rate,
                &format!("between 1000 and {MAX_MODEL_SAMPLE_RATE}"),
            );
        }
        if !(self.duration_secs > 0.0 && self.duration_secs <= MAX_MODEL_DURATION_SECS) {
            return field(
                "duration_secs",
                &self.duration_secs,
                &format!("above 0 and at most {MAX_MODEL_DURATION_SECS}"),
            );
        }
        if !(1..=MAX_MEL_BANDS).contains(&self.n_mels) {
            return field(
                "n_mels",
                &self.n_mels,
                &format!("between 1 and {MAX_MEL_BANDS}"),
            );
        }
        if !(self.window_ms > 0.0 && self.window_ms <= 1000.0 * self.duration_secs) {
            return field("window_ms", &self.window_ms, "above 0 and within the clip");
        }
        if !(self.hop_ms > 0.0 && self.hop_ms.is_finite()) {
            return field("hop_ms", &self.hop_ms, "above 0");
        }
        let width = self.frames() * self.bands();
        if width == 0 || width > MAX_AUDIO_FEATURES {
            return Err(format!(
                "pipeline.audio gives {width} features per clip; it must be between 1 and {MAX_AUDIO_FEATURES} (fewer mel bands, a longer hop or a shorter clip)"
            ));
        }
        if let Some(a) = &self.augment {
            if !(1..=8).contains(&a.copies) {
                return field("augment.copies", &a.copies, "between 1 and 8");
            }
            if !(a.max_shift_ms >= 0.0 && a.max_shift_ms <= 1000.0 * self.duration_secs) {
                return field(
                    "augment.max_shift_ms",
                    &a.max_shift_ms,
                    "at least 0 and within the clip",
                );
            }
            if let Some(snr) = a.snr_db {
                if !(-20.0..=100.0).contains(&snr) {
                    return field("augment.snr_db", &snr, "between -20 and 100");
                }
            }
            if !(0.0..=40.0).contains(&a.gain_db) {
                return field("augment.gain_db", &a.gain_db, "between 0 and 40");
            }
        }
        Ok(())
    }

    fn samples(&self) -> usize {
        (f64::from(self.duration_secs) * f64::from(self.sample_rate)).round() as usize
    }

    fn window(&self) -> usize {
        ((f64::from(self.window_ms) * f64::from(self.sample_rate) / 1000.0).round() as usize).max(1)
    }

    fn hop(&self) -> usize {
        ((f64::from(self.hop_ms) * f64::from(self.sample_rate) / 1000.0).round() as usize).max(1)
    }

    fn frames(&self) -> usize {
        let (samples, window) = (self.samples(), self.window());
        if samples < window {
            0
        } else {
            1 + (samples - window) / self.hop()
        }
    }

    fn bands(&self) -> usize {
        self.n_mels * if self.deltas { 2 } else { 1 }
    }
}

/// A fitted audio featurizer for one column.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct AudioEncoder {
    options: AudioOptions,
    /// Per-band training mean (all 0 without standardization).
    mean: Vec<f32>,
    /// Per-band training standard deviation, at least [`MIN_BAND_STD`].
    std: Vec<f32>,
    #[serde(skip)]
    front: LogMelCell,
}

impl AudioEncoder {
    /// An unfitted encoder (mean 0, std 1) for `options`.
    pub(crate) fn new(options: &AudioOptions) -> AudioEncoder {
        let bands = options.bands();
        AudioEncoder {
            options: options.clone(),
            mean: vec![0.0; bands],
            std: vec![1.0; bands],
            front: LogMelCell::default(),
        }
    }

    /// Fits per-band statistics over every frame of `clips` (base64 WAV text).
    /// `Err((index, reason))` names the first clip that cannot be read.
    pub(crate) fn fit<'a>(
        options: &AudioOptions,
        clips: impl Iterator<Item = Option<&'a str>>,
        standardize: bool,
    ) -> Result<AudioEncoder, (usize, String)> {
        let mut encoder = AudioEncoder::new(options);
        let bands = options.bands();
        let mut sum = vec![0.0f64; bands];
        let mut squares = vec![0.0f64; bands];
        let mut frames = 0usize;
        let mut buf = vec![0.0f32; encoder.width()];
        for (i, clip) in clips.enumerate() {
            crate::cooperative::yield_every(i, 16);
            let Some(clip) = clip else { continue };
            encoder.log_mel(clip, None, &mut buf).map_err(|e| (i, e))?;
            for frame in buf.chunks_exact(bands) {
                for ((s, q), &v) in sum.iter_mut().zip(&mut squares).zip(frame) {
                    *s += f64::from(v);
                    *q += f64::from(v) * f64::from(v);
                }
            }
            frames += buf.len() / bands.max(1);
        }
        if standardize && frames > 0 {
            let n = frames as f64;
            for b in 0..bands {
                let mean = sum[b] / n;
                let var = (squares[b] / n - mean * mean).max(0.0);
                encoder.mean[b] = mean as f32;
                encoder.std[b] = (var.sqrt() as f32).max(MIN_BAND_STD);
            }
        }
        Ok(encoder)
    }

    /// Checks the fitted state after deserializing.
    pub(crate) fn check(&self) -> Result<(), String> {
        self.options.validate()?;
        let bands = self.options.bands();
        if self.mean.len() != bands || self.std.len() != bands {
            return Err("audio statistics do not match the band count".into());
        }
        if self.mean.iter().any(|m| !m.is_finite())
            || self.std.iter().any(|s| !s.is_finite() || *s <= 0.0)
        {
            return Err("audio statistics must be finite with std > 0".into());
        }
        Ok(())
    }

    /// Output features: frames × bands.
    pub(crate) fn width(&self) -> usize {
        self.options.frames() * self.options.bands()
    }

    /// Augmented copies per training clip (0 without augmentation).
    pub(crate) fn augment_copies(&self) -> usize {
        self.options.augment.as_ref().map_or(0, |a| a.copies)
    }

    /// Feature names `name#tTmB` (mel band `B` of frame `T`) and `name#tTdB` (its delta).
    pub(crate) fn feature_names(&self, name: &str, out: &mut Vec<String>) {
        let n_mels = self.options.n_mels;
        for t in 0..self.options.frames() {
            out.extend((0..n_mels).map(|b| format!("{name}#t{t}m{b}")));
            if self.options.deltas {
                out.extend((0..n_mels).map(|b| format!("{name}#t{t}d{b}")));
            }
        }
    }

    /// Standardized features of the clip `text` into `out` (`len == width()`); with
    /// `augment_seed`, of an augmented version of it drawn from that seed.
    pub(crate) fn encode(
        &self,
        text: &str,
        augment_seed: Option<u64>,
        out: &mut [f32],
    ) -> Result<(), String> {
        self.log_mel(text, augment_seed, out)?;
        let bands = self.options.bands();
        for frame in out.chunks_exact_mut(bands) {
            for ((v, m), s) in frame.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
        Ok(())
    }

    /// Unstandardized log-mel features of the clip `text` into `out`.
    fn log_mel(
        &self,
        text: &str,
        augment_seed: Option<u64>,
        out: &mut [f32],
    ) -> Result<(), String> {
        let bytes = decode_base64(text)?;
        self.wav_log_mel(&bytes, &audio_limits(), augment_seed, out)
    }

    fn wav_log_mel(
        &self,
        bytes: &[u8],
        limits: &AudioLimits,
        augment_seed: Option<u64>,
        out: &mut [f32],
    ) -> Result<(), String> {
        let clip = decode_wav(bytes, limits)?;
        let o = &self.options;
        let wanted = o.samples();
        let mut signal = resample(&clip.samples, clip.sample_rate, o.sample_rate, wanted)?;
        signal.resize(wanted, 0.0);
        if let (Some(seed), Some(augment)) = (augment_seed, &o.augment) {
            augment_clip(&mut signal, augment, o.sample_rate, seed);
        }
        let front = self
            .front
            .get_or_init(|| LogMel::new(o.sample_rate, o.window(), o.hop(), o.n_mels, o.deltas));
        front.compute(&signal, out);
        Ok(())
    }
}

/// Unstandardized log-mel features of one WAV file (`options` valid, `limits` as the
/// decoding caps): the whole front end of an audio column, for fuzzing and benchmarks.
pub fn wav_log_mel(
    bytes: &[u8],
    options: &AudioOptions,
    limits: &AudioLimits,
) -> Result<Vec<f32>, String> {
    options.validate()?;
    let encoder = AudioEncoder::new(options);
    let mut out = vec![0.0; encoder.width()];
    encoder.wav_log_mel(bytes, limits, None, &mut out)?;
    Ok(out)
}

/// Shifts, gains and noises `signal` in place with draws from `seed`.
fn augment_clip(signal: &mut [f32], options: &AugmentOptions, sample_rate: u32, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let max_shift = (f64::from(options.max_shift_ms) * f64::from(sample_rate) / 1000.0) as i64;
    let shift = if max_shift > 0 {
        rng.random_range(-max_shift..=max_shift)
    } else {
        0
    };
    let n = signal.len() as i64;
    if shift > 0 {
        let s = shift.min(n) as usize;
        signal.copy_within(..signal.len() - s, s);
        signal[..s].fill(0.0);
    } else if shift < 0 {
        let s = (-shift).min(n) as usize;
        signal.copy_within(s.., 0);
        let len = signal.len();
        signal[len - s..].fill(0.0);
    }
    let gain_db = if options.gain_db > 0.0 {
        rng.random_range(-options.gain_db..=options.gain_db)
    } else {
        0.0
    };
    let gain = 10f32.powf(gain_db / 20.0);
    signal.iter_mut().for_each(|v| *v *= gain);
    if let Some(snr_db) = options.snr_db {
        let power = signal.iter().map(|v| v * v).sum::<f32>() / signal.len().max(1) as f32;
        let noise_std = (power / 10f32.powf(snr_db / 10.0)).sqrt();
        if noise_std > 0.0 {
            for v in signal.iter_mut() {
                // Box-Muller: a standard normal draw from two uniforms.
                let u1: f32 = rng.random_range(f32::EPSILON..1.0);
                let u2: f32 = rng.random();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos();
                *v += noise_std * z;
            }
        }
    }
}

/// Whether `text` looks like a base64 WAV file (schema inference): a `data:audio/` URL,
/// or base64 whose first bytes are `RIFF····WAVE`.
pub(crate) fn looks_like_encoded_audio(text: &str) -> bool {
    let t = text.trim_start();
    if t.starts_with("data:audio/") {
        return true;
    }
    let Some(head) = t.get(..16) else {
        return false;
    };
    base64::engine::general_purpose::STANDARD
        .decode(head)
        .is_ok_and(|b| b.len() == 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WAVE")
}

#[cfg(test)]
#[path = "audio_tests.rs"]
mod tests;
