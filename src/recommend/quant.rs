//! The autoencoder's decoder as an `int8` serving copy: `out_j += Σ_h a_h · D[h, j]` for
//! hidden activations `a ∈ [-1, 1]` (tanh), computed as one `u8 × i8` dot product per
//! item.
//!
//! Layout: item `j`'s column of `D` is stored as a contiguous row of `stride` `i8`
//! (`hidden` rounded up to 64, zero padded) with a per-item scale
//! `s_j = max_h |D[h, j]| / 127`. Activations are quantised per request to
//! `q_h = round(127 · a_h) + 128 ∈ [1, 255]`, so
//! `Σ_h a_h D[h, j] ≈ s_j / 127 · (Σ_h q_h D̃[h, j] − 128 · Σ_h D̃[h, j])`.
//! The dot products are exact in `i32` (`hidden ≤ 2048`: `|Σ| ≤ 2048 · 255 · 127`).
//!
//! Against the `f16` row-by-row form this is a quarter of the memory traffic per item
//! (one byte instead of two, no pass over the output per group of rows) and, with
//! AVX-512 VNNI, 64 multiply-adds per instruction. Ranking quality through the API is
//! checked against the `f32` model in `bench/recommend/eval_http.py`.
//!
//! Tabular networks share it for `int8` serving (`tabular::compressed`), scaling each
//! row's activations into `[-1, 1]` first.

use ndarray::ArrayView2;

/// Row alignment in bytes: one 512-bit register.
const LANES: usize = 64;

/// Transposed, per-column-scaled `i8` copy of a `hidden × n` matrix.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct QuantizedColumns {
    hidden: usize,
    stride: usize,
    values: Vec<i8>,
    /// `s_j / 127`.
    scale: Vec<f32>,
    /// `128 · Σ_h D̃[h, j]`.
    offset: Vec<i32>,
}

impl QuantizedColumns {
    /// Quantises the columns of `m` (`hidden × n`).
    pub(crate) fn from_columns(m: ArrayView2<f32>) -> QuantizedColumns {
        let (hidden, n) = m.dim();
        let stride = hidden.div_ceil(LANES) * LANES;
        let mut values = vec![0i8; n * stride];
        let mut scale = Vec::with_capacity(n);
        let mut offset = Vec::with_capacity(n);
        for (j, column) in m.columns().into_iter().enumerate() {
            let max = column.iter().fold(0.0f32, |acc, v| acc.max(v.abs()));
            let s = if max > 0.0 && max.is_finite() {
                max / 127.0
            } else {
                1.0
            };
            let row = &mut values[j * stride..j * stride + hidden];
            let mut sum = 0i32;
            for (q, &v) in row.iter_mut().zip(column) {
                *q = (v / s).round().clamp(-127.0, 127.0) as i8;
                sum += i32::from(*q);
            }
            scale.push(s / 127.0);
            offset.push(128 * sum);
        }
        QuantizedColumns {
            hidden,
            stride,
            values,
            scale,
            offset,
        }
    }

    /// A copy whose row `r` is row `order[r]` of this one (same values, scales and
    /// offsets, so the same products), e.g. the items of an inverted file in list order.
    ///
    /// # Panics
    /// If an entry of `order` is out of range.
    pub(crate) fn gather(&self, order: &[u32]) -> QuantizedColumns {
        let stride = self.stride;
        let mut values = Vec::with_capacity(order.len() * stride);
        for &j in order {
            let j = j as usize;
            values.extend_from_slice(&self.values[j * stride..(j + 1) * stride]);
        }
        QuantizedColumns {
            hidden: self.hidden,
            stride,
            values,
            scale: order.iter().map(|&j| self.scale[j as usize]).collect(),
            offset: order.iter().map(|&j| self.offset[j as usize]).collect(),
        }
    }

    /// Bytes held: the padded `i8` rows, the scales and the offsets.
    pub(crate) fn bytes(&self) -> usize {
        self.values.len() + 4 * self.scale.len() + 4 * self.offset.len()
    }

    /// `out[j] += Σ_h a[h] · D[h, j]` for the first `out.len()` items, `a` in `[-1, 1]`
    /// (values outside are clamped); `codes` is scratch.
    ///
    /// # Panics
    /// If `a.len() != hidden` or `out` is longer than the number of items.
    pub(crate) fn add_products(&self, a: &[f32], codes: &mut Vec<u8>, out: &mut [f32]) {
        assert!(out.len() <= self.scale.len(), "more outputs than items");
        self.quantise_query(a, codes);
        #[cfg(target_arch = "x86_64")]
        if x86::has_vnni() {
            // SAFETY: the CPU supports AVX-512 F/BW/VNNI (checked above); rows and
            // codes are `stride` bytes, a multiple of 64.
            unsafe { x86::add_products_vnni(self, codes, 0, out) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if x86::has_avx2() {
            // SAFETY: the CPU supports AVX2 (checked above).
            unsafe { x86::add_products_avx2(self, codes, 0, out) };
            return;
        }
        self.add_products_portable(codes, 0, out);
    }

    /// `out[i] +=` [`QuantizedColumns::product`]`(start + i, codes)` for the contiguous
    /// rows `start..start + out.len()` (one sequential pass; the same values `product`
    /// gives).
    ///
    /// # Panics
    /// If the rows run past the last item or `codes` is not `stride` long.
    pub(crate) fn add_products_from(&self, codes: &[u8], start: usize, out: &mut [f32]) {
        assert!(
            start + out.len() <= self.scale.len(),
            "more outputs than items"
        );
        assert_eq!(codes.len(), self.stride, "codes length");
        #[cfg(target_arch = "x86_64")]
        if x86::has_vnni() {
            // SAFETY: as in `add_products`; rows `start..start + out.len()` exist.
            unsafe { x86::add_products_vnni(self, codes, start, out) };
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if x86::has_avx2() {
            // SAFETY: the CPU supports AVX2 (checked above).
            unsafe { x86::add_products_avx2(self, codes, start, out) };
            return;
        }
        self.add_products_portable(codes, start, out);
    }

    // Inlined into the AVX2 copy below, which the compiler vectorises with AVX2.
    #[inline(always)]
    fn add_products_portable(&self, codes: &[u8], start: usize, out: &mut [f32]) {
        for (i, o) in out.iter_mut().enumerate() {
            let j = start + i;
            let row = &self.values[j * self.stride..(j + 1) * self.stride];
            let dot = dot_u8_i8(codes, row);
            *o += self.scale[j] * (dot - self.offset[j]) as f32;
        }
    }
}

impl QuantizedColumns {
    /// Writes the `u8` codes of activations `a` (clamped to `[-1, 1]`), `stride` long,
    /// into `codes` for [`QuantizedColumns::product`].
    ///
    /// # Panics
    /// If `a.len() != hidden`.
    pub(crate) fn quantise_query(&self, a: &[f32], codes: &mut Vec<u8>) {
        assert_eq!(a.len(), self.hidden, "activation length");
        codes.clear();
        codes.extend(
            a.iter()
                .map(|&v| ((v.clamp(-1.0, 1.0) * 127.0).round() as i32 + 128) as u8),
        );
        codes.resize(self.stride, 128);
    }

    /// `Σ_h a[h] · D[h, j]` for one item from codes written by
    /// [`QuantizedColumns::quantise_query`]; the same value [`QuantizedColumns::add_products`]
    /// adds.
    ///
    /// # Panics
    /// If `j` is out of range.
    pub(crate) fn product(&self, j: usize, codes: &[u8]) -> f32 {
        let row = &self.values[j * self.stride..(j + 1) * self.stride];
        self.scale[j] * (dot_u8_i8(codes, row) - self.offset[j]) as f32
    }
}

/// `Σ a_i · b_i` in `i32` (portable; vectorised by the compiler).
#[inline(always)]
fn dot_u8_i8(a: &[u8], b: &[i8]) -> i32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{QuantizedColumns, LANES};

    pub(super) fn has_vnni() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
    }

    pub(super) fn has_avx2() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    /// The portable loop compiled for AVX2 (the same integer sums, 8 lanes
    /// wide): what CPUs without AVX-512 VNNI run.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn add_products_avx2(
        q: &QuantizedColumns,
        codes: &[u8],
        start: usize,
        out: &mut [f32],
    ) {
        q.add_products_portable(codes, start, out);
    }

    /// Four items per pass, so the four horizontal sums overlap.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn add_products_vnni(
        q: &QuantizedColumns,
        codes: &[u8],
        start: usize,
        out: &mut [f32],
    ) {
        let stride = q.stride;
        let chunks = stride / LANES;
        // Output `i` is row `start + i`.
        let row = |j: usize| q.values[(start + j) * stride..(start + j + 1) * stride].as_ptr();
        let load = |p: *const i8, c: usize| {
            // SAFETY: c < chunks, so the 64 bytes at c·64 lie inside the row.
            unsafe { _mm512_loadu_si512(p.add(c * LANES).cast()) }
        };
        let code = |c: usize| {
            // SAFETY: codes holds `stride` bytes.
            unsafe { _mm512_loadu_si512(codes.as_ptr().add(c * LANES).cast()) }
        };
        let finish = |o: &mut f32, j: usize, acc: __m512i| {
            let dot = _mm512_reduce_add_epi32(acc);
            *o += q.scale[start + j] * (dot - q.offset[start + j]) as f32;
        };
        let n = out.len();
        let mut j = 0;
        while j + 4 <= n {
            let rows = [row(j), row(j + 1), row(j + 2), row(j + 3)];
            let mut acc = [_mm512_setzero_si512(); 4];
            for c in 0..chunks {
                let z = code(c);
                for r in 0..4 {
                    acc[r] = _mm512_dpbusd_epi32(acc[r], z, load(rows[r], c));
                }
            }
            for r in 0..4 {
                finish(&mut out[j + r], j + r, acc[r]);
            }
            j += 4;
        }
        while j < n {
            let p = row(j);
            let mut acc = _mm512_setzero_si512();
            for c in 0..chunks {
                acc = _mm512_dpbusd_epi32(acc, code(c), load(p, c));
            }
            finish(&mut out[j], j, acc);
            j += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    fn pseudo(i: usize) -> f32 {
        ((i.wrapping_mul(2_654_435_761) % 10_007) as f32 / 10_007.0 - 0.5) * 0.8
    }

    #[test]
    fn products_match_f32_within_quantisation_error() {
        for (hidden, n) in [(1, 3), (63, 5), (64, 9), (300, 37), (129, 4)] {
            let m = Array2::from_shape_fn((hidden, n), |(h, j)| pseudo(h * n + j + 1));
            let a: Vec<f32> = (0..hidden)
                .map(|h| (pseudo(h + 999) * 2.4).tanh())
                .collect();
            let q = QuantizedColumns::from_columns(m.view());
            let mut out = vec![0.5f32; n];
            q.add_products(&a, &mut Vec::new(), &mut out);
            for j in 0..n {
                let exact: f32 = 0.5 + (0..hidden).map(|h| a[h] * m[[h, j]]).sum::<f32>();
                let max = (0..hidden).fold(0.0f32, |acc, h| acc.max(m[[h, j]].abs()));
                // Each term errs by at most |a|·s/2 + |D|/254 + their product.
                let bound = hidden as f32 * (max / 127.0 + max / 254.0) + 1e-5;
                assert!(
                    (out[j] - exact).abs() <= bound,
                    "hidden {hidden}, item {j}: {} vs {exact} (bound {bound})",
                    out[j]
                );
            }
            // Portable path gives the same integers.
            let codes: Vec<u8> = a
                .iter()
                .map(|&v| ((v * 127.0).round() as i32 + 128) as u8)
                .chain(std::iter::repeat(128))
                .take(q.stride)
                .collect();
            for (j, &o) in out.iter().enumerate() {
                let dot = dot_u8_i8(&codes, &q.values[j * q.stride..(j + 1) * q.stride]);
                let portable = 0.5 + q.scale[j] * (dot - q.offset[j]) as f32;
                assert!(
                    (o - portable).abs() <= 1e-5 * (1.0 + o.abs()),
                    "{o} vs {portable}"
                );
            }
        }
    }

    #[test]
    fn gathered_rows_give_the_same_products_in_runs() {
        let (hidden, n) = (300, 23);
        let m = Array2::from_shape_fn((hidden, n), |(h, j)| pseudo(h * n + j + 5));
        let a: Vec<f32> = (0..hidden).map(|h| (pseudo(h + 31) * 2.0).tanh()).collect();
        let q = QuantizedColumns::from_columns(m.view());
        let mut codes = Vec::new();
        q.quantise_query(&a, &mut codes);
        let order: Vec<u32> = (0..n as u32).rev().step_by(2).chain([4, 4, 0]).collect();
        let g = q.gather(&order);
        assert_eq!(g.bytes(), order.len() * (q.stride + 8));
        for (start, len) in [(0, order.len()), (3, 7), (5, 0), (order.len() - 1, 1)] {
            let mut out = vec![0.25f32; len];
            g.add_products_from(&codes, start, &mut out);
            for (i, &o) in out.iter().enumerate() {
                let want = 0.25 + q.product(order[start + i] as usize, &codes);
                assert_eq!(o.to_bits(), want.to_bits(), "run {start}+{i}");
            }
        }
    }

    #[test]
    fn zero_columns_and_zero_activations_give_the_input() {
        let q = QuantizedColumns::from_columns(Array2::<f32>::zeros((10, 3)).view());
        let mut out = vec![1.0, 2.0, 3.0];
        q.add_products(&[0.3; 10], &mut Vec::new(), &mut out);
        assert_eq!(out, vec![1.0, 2.0, 3.0]);
        let m = Array2::from_shape_fn((10, 3), |(h, j)| pseudo(h * 3 + j));
        let q = QuantizedColumns::from_columns(m.view());
        let mut out = vec![1.0, 2.0, 3.0];
        q.add_products(&[0.0; 10], &mut Vec::new(), &mut out);
        assert_eq!(out, vec![1.0, 2.0, 3.0]);
    }
}
