//! The log-mel front end of audio columns: frames of `window` samples every `hop`
//! samples (no centering, so frame `t` starts at sample `t · hop`), a periodic Hann
//! window, the power spectrum of a real FFT zero-padded to the next power of two,
//! triangular mel filters (HTK mel scale, 0 Hz to Nyquist, peak weight 1), and the
//! natural log of each band energy floored at [`LOG_FLOOR`]. Optional deltas are the
//! regression slope over ±2 frames (edges repeated).
//!
//! Output is frame-major: frame `t`, band `b` is value `t · bands + b`, where the mel
//! bands come first and their deltas after them.

use std::fmt;
use std::sync::{Arc, OnceLock};

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

/// Smallest band energy before the log (silence reads as `ln(1e-10)`).
pub const LOG_FLOOR: f32 = 1e-10;
/// Frames on each side in the delta regression.
const DELTA_SPAN: usize = 2;

/// HTK mel of a frequency in Hz.
pub(crate) fn hz_to_mel(hz: f64) -> f64 {
    2595.0 * (1.0 + hz / 700.0).log10()
}

/// Frequency in Hz of an HTK mel value.
pub(crate) fn mel_to_hz(mel: f64) -> f64 {
    700.0 * (10f64.powf(mel / 2595.0) - 1.0)
}

/// A planned front end for one sample rate, window, hop and band count.
pub(crate) struct LogMel {
    window: Vec<f32>,
    hop: usize,
    n_mels: usize,
    deltas: bool,
    /// Per mel band: the first FFT bin it covers and the weights from there on.
    filters: Vec<(usize, Vec<f32>)>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl LogMel {
    /// Plans the FFT and builds the filters. `window`, `hop` and `n_mels` are at least 1.
    pub(crate) fn new(
        sample_rate: u32,
        window: usize,
        hop: usize,
        n_mels: usize,
        deltas: bool,
    ) -> LogMel {
        let window = window.max(1);
        let n_fft = window.next_power_of_two().max(2);
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        let hann = (0..window)
            .map(|i| {
                let phase = 2.0 * std::f64::consts::PI * i as f64 / window as f64;
                (0.5 - 0.5 * phase.cos()) as f32
            })
            .collect();
        LogMel {
            window: hann,
            hop: hop.max(1),
            n_mels,
            deltas,
            filters: mel_filters(sample_rate, n_fft, n_mels),
            fft,
        }
    }

    /// Frames in a signal of `samples` samples (0 when shorter than one window).
    pub(crate) fn frames(&self, samples: usize) -> usize {
        if samples < self.window.len() {
            0
        } else {
            1 + (samples - self.window.len()) / self.hop
        }
    }

    /// Values per frame: `n_mels`, twice that with deltas.
    pub(crate) fn bands(&self) -> usize {
        self.n_mels * if self.deltas { 2 } else { 1 }
    }

    /// Log-mel features of `signal` into `out` (`len == frames(signal.len()) · bands()`).
    pub(crate) fn compute(&self, signal: &[f32], out: &mut [f32]) {
        let frames = self.frames(signal.len());
        let bands = self.bands();
        debug_assert_eq!(out.len(), frames * bands);
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0f32; spectrum.len()];
        for t in 0..frames {
            let start = t * self.hop;
            let frame = &signal[start..start + self.window.len()];
            for ((x, &s), &w) in input.iter_mut().zip(frame).zip(&self.window) {
                *x = s * w;
            }
            input[self.window.len()..].fill(0.0);
            // Lengths come from the plan itself, so the transform cannot fail.
            if self
                .fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .is_err()
            {
                spectrum.fill(Complex::new(0.0, 0.0));
            }
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            let row = &mut out[t * bands..t * bands + self.n_mels];
            for (value, (first, weights)) in row.iter_mut().zip(&self.filters) {
                let energy: f32 = power[*first..]
                    .iter()
                    .zip(weights)
                    .map(|(p, w)| p * w)
                    .sum();
                *value = energy.max(LOG_FLOOR).ln();
            }
        }
        if self.deltas {
            add_deltas(out, frames, self.n_mels);
        }
    }
}

impl fmt::Debug for LogMel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogMel")
            .field("window", &self.window.len())
            .field("hop", &self.hop)
            .field("n_mels", &self.n_mels)
            .field("deltas", &self.deltas)
            .finish()
    }
}

/// Triangular filters on the HTK mel scale between 0 Hz and Nyquist: band `m` rises
/// from edge `m` to a peak of 1 at edge `m + 1` and falls to 0 at edge `m + 2`, the
/// `n_mels + 2` edges evenly spaced in mel.
pub(crate) fn mel_filters(sample_rate: u32, n_fft: usize, n_mels: usize) -> Vec<(usize, Vec<f32>)> {
    let nyquist = f64::from(sample_rate) / 2.0;
    let top = hz_to_mel(nyquist);
    let edges: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64))
        .collect();
    let bins = n_fft / 2 + 1;
    let bin_hz = f64::from(sample_rate) / n_fft as f64;
    (0..n_mels)
        .map(|m| {
            let (lo, mid, hi) = (edges[m], edges[m + 1], edges[m + 2]);
            let weights: Vec<f32> = (0..bins)
                .map(|k| {
                    let f = k as f64 * bin_hz;
                    let up = (f - lo) / (mid - lo);
                    let down = (hi - f) / (hi - mid);
                    up.min(down).max(0.0) as f32
                })
                .collect();
            let first = weights.iter().position(|&w| w > 0.0).unwrap_or(bins);
            let last = weights
                .iter()
                .rposition(|&w| w > 0.0)
                .map_or(first, |l| l + 1);
            (first, weights[first..last].to_vec())
        })
        .collect()
}

/// Fills the delta half of each frame from its mel half.
fn add_deltas(out: &mut [f32], frames: usize, n_mels: usize) {
    let bands = 2 * n_mels;
    let norm: f32 = 2.0 * (1..=DELTA_SPAN).map(|n| (n * n) as f32).sum::<f32>();
    let at = |t: isize, b: usize, out: &[f32]| {
        let t = t.clamp(0, frames as isize - 1) as usize;
        out[t * bands + b]
    };
    for t in 0..frames {
        for b in 0..n_mels {
            let mut slope = 0.0;
            for n in 1..=DELTA_SPAN {
                let n_i = n as isize;
                slope += n as f32 * (at(t as isize + n_i, b, out) - at(t as isize - n_i, b, out));
            }
            out[t * bands + n_mels + b] = slope / norm;
        }
    }
}

/// A lazily planned [`LogMel`], so fitted encoders can be cloned, compared and
/// deserialized without planning.
#[derive(Default)]
pub(crate) struct LogMelCell(OnceLock<LogMel>);

impl LogMelCell {
    pub(crate) fn get_or_init(&self, make: impl FnOnce() -> LogMel) -> &LogMel {
        self.0.get_or_init(make)
    }
}

impl Clone for LogMelCell {
    fn clone(&self) -> Self {
        LogMelCell::default()
    }
}

impl PartialEq for LogMelCell {
    /// The plan follows from the encoder's options, which are compared instead.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl fmt::Debug for LogMelCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogMelCell")
    }
}
