//! WAV decoding and resampling for audio columns: `hound` reads integer PCM of 1..=32
//! bits or 32-bit float WAV with any channel count (averaged to mono) within the
//! decoding caps; `rubato`'s FFT resampler takes the clip to the model's rate.

use std::io::Cursor;

use base64::Engine as _;
use rubato::{FftFixedIn, Resampler};

use super::audio::AudioLimits;

/// Input frames per resampler chunk.
const RESAMPLE_CHUNK: usize = 1024;

/// A decoded clip: mono samples in [-1, 1] at `sample_rate`.
#[derive(Debug)]
pub(crate) struct Clip {
    pub(crate) sample_rate: u32,
    pub(crate) samples: Vec<f32>,
}

/// The bytes of base64 text or of a `data:...;base64,` URL.
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let body = text.trim();
    let body = match body.strip_prefix("data:") {
        Some(url) => url
            .split_once(";base64,")
            .map(|(_, data)| data)
            .ok_or("a data URL must be base64 (`data:audio/wav;base64,...`)")?,
        None => body,
    };
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("not valid base64: {e}"))
}

/// Decodes a WAV file: integer PCM of 1..=32 bits or 32-bit float, any channel count
/// (averaged), at most `limits.max_sample_rate` Hz and `limits.max_clip_secs` long.
pub(crate) fn decode_wav(bytes: &[u8], limits: &AudioLimits) -> Result<Clip, String> {
    let mut reader = hound::WavReader::new(Cursor::new(bytes)).map_err(|e| match e {
        hound::Error::Unsupported => {
            "unsupported WAV encoding (PCM integer or 32-bit float WAV is accepted)".to_owned()
        }
        e => format!("not a readable WAV file: {e}"),
    })?;
    let spec = reader.spec();
    let rate = spec.sample_rate;
    if rate == 0 || rate > limits.max_sample_rate {
        return Err(format!(
            "the sample rate is {rate} Hz; the limit is {} Hz",
            limits.max_sample_rate
        ));
    }
    let max_frames = (limits.max_clip_secs * f64::from(rate)).floor() as u64;
    let frames = u64::from(reader.duration());
    if frames > max_frames {
        return Err(format!(
            "the clip is {:.2} s long; the limit is {} s",
            frames as f64 / f64::from(rate),
            limits.max_clip_secs
        ));
    }
    if frames == 0 {
        return Err("the clip has no samples".into());
    }
    let channels = usize::from(spec.channels);
    let mut mono = Vec::with_capacity(frames as usize);
    let mut frame_sum = 0.0f32;
    let mut push = |i: usize, v: f32| {
        frame_sum += v;
        if (i + 1).is_multiple_of(channels) {
            mono.push(frame_sum / channels as f32);
            frame_sum = 0.0;
        }
    };
    let truncated = |e: hound::Error| format!("corrupt or truncated sample data: {e}");
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, bits @ 1..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            for (i, s) in reader.samples::<i32>().enumerate() {
                push(i, s.map_err(truncated)? as f32 * scale);
            }
        }
        (hound::SampleFormat::Float, 32) => {
            for (i, s) in reader.samples::<f32>().enumerate() {
                let s = s.map_err(truncated)?;
                if !s.is_finite() {
                    return Err(format!("sample {i} is not a finite number"));
                }
                push(i, s.clamp(-1.0, 1.0));
            }
        }
        (format, bits) => {
            return Err(format!(
                "unsupported WAV encoding: {bits}-bit {} samples (PCM integer or 32-bit float WAV is accepted)",
                match format {
                    hound::SampleFormat::Int => "integer",
                    hound::SampleFormat::Float => "float",
                }
            ))
        }
    }
    Ok(Clip {
        sample_rate: rate,
        samples: mono,
    })
}

/// The first `wanted` samples (fewer if the clip is shorter) of `samples` taken from
/// `from` Hz to `to` Hz with a band-limited FFT resampler, delay removed.
pub(crate) fn resample(
    samples: &[f32],
    from: u32,
    to: u32,
    wanted: usize,
) -> Result<Vec<f32>, String> {
    if from == to {
        return Ok(samples[..wanted.min(samples.len())].to_vec());
    }
    let ratio = f64::from(to) / f64::from(from);
    let available = (samples.len() as f64 * ratio).floor() as usize;
    let wanted = wanted.min(available);
    // Input beyond what the wanted output needs is never read.
    let needed = ((wanted as f64 / ratio).ceil() as usize + 1).min(samples.len());
    let input = &samples[..needed];
    let mut resampler = FftFixedIn::<f32>::new(from as usize, to as usize, RESAMPLE_CHUNK, 2, 1)
        .map_err(|e| format!("cannot resample from {from} Hz to {to} Hz: {e}"))?;
    let delay = resampler.output_delay();
    let failed = |e: rubato::ResampleError| format!("resampling failed: {e}");
    let mut out = Vec::with_capacity(wanted + delay + 2 * RESAMPLE_CHUNK);
    let mut pos = 0;
    while pos + resampler.input_frames_next() <= input.len() {
        let next = resampler.input_frames_next();
        let chunk = resampler
            .process(&[&input[pos..pos + next]], None)
            .map_err(failed)?;
        out.extend_from_slice(&chunk[0]);
        pos += next;
    }
    if pos < input.len() {
        let chunk = resampler
            .process_partial(Some(&[&input[pos..]]), None)
            .map_err(failed)?;
        out.extend_from_slice(&chunk[0]);
    }
    while out.len() < delay + wanted {
        let chunk = resampler
            .process_partial(None::<&[&[f32]]>, None)
            .map_err(failed)?;
        if chunk[0].is_empty() {
            break;
        }
        out.extend_from_slice(&chunk[0]);
    }
    let end = (delay + wanted).min(out.len());
    Ok(out[delay.min(end)..end].to_vec())
}
