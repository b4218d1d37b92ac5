//! The serving hot loop: `y += Σ_r a_r · x_r` over rows of a row-major matrix of `f32` or
//! `f16` (half the memory traffic; serving copies of the large matrices), with an
//! AVX2+FMA(+F16C) path chosen at run time on x86-64 (four rows per pass over `y`).

use half::f16;

/// A matrix element the kernels read.
pub(crate) trait Element: Copy {
    fn axpy(a: f32, x: &[Self], y: &mut [f32]);
    fn axpy4(a: [f32; 4], x: [&[Self]; 4], y: &mut [f32]);
}

impl Element for f32 {
    fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
        axpy(a, x, y);
    }
    fn axpy4(a: [f32; 4], x: [&[f32]; 4], y: &mut [f32]) {
        axpy4(a, x, y);
    }
}

impl Element for f16 {
    fn axpy(a: f32, x: &[f16], y: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2_fma() && std::arch::is_x86_feature_detected!("f16c") {
            // SAFETY: the CPU supports AVX2, FMA and F16C (checked above).
            unsafe { x86::axpy4_f16([a, 0.0, 0.0, 0.0], [x, x, x, x], y) };
            return;
        }
        for (o, &v) in y.iter_mut().zip(x) {
            *o += a * v.to_f32();
        }
    }
    fn axpy4(a: [f32; 4], x: [&[f16]; 4], y: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2_fma() && std::arch::is_x86_feature_detected!("f16c") {
            // SAFETY: the CPU supports AVX2, FMA and F16C (checked above).
            unsafe { x86::axpy4_f16(a, x, y) };
            return;
        }
        for (i, o) in y.iter_mut().enumerate() {
            let mut v = *o;
            for r in 0..4 {
                v += a[r] * x[r][i].to_f32();
            }
            *o = v;
        }
    }
}

/// `f16` copy of a matrix for serving.
pub(crate) fn to_f16(values: &[f32]) -> Vec<f16> {
    values.iter().map(|&v| f16::from_f32(v)).collect()
}

/// `y += Σ_r coeffs[r] · row(r)` where `row(r)` is `rows[r·stride .. r·stride + y.len()]`
/// for each `r` yielded by `picks` as `(row index, coefficient)`.
///
/// # Panics
/// If a row does not fit in `rows`.
pub(crate) fn add_rows<T: Element>(
    rows: &[T],
    stride: usize,
    picks: impl Iterator<Item = (usize, f32)>,
    y: &mut [f32],
) {
    let n = y.len();
    let row = |r: usize| &rows[r * stride..r * stride + n];
    let mut pending: [(usize, f32); 4] = [(0, 0.0); 4];
    let mut count = 0;
    for (r, a) in picks {
        if a == 0.0 {
            continue;
        }
        pending[count] = (r, a);
        count += 1;
        if count == 4 {
            T::axpy4(
                [pending[0].1, pending[1].1, pending[2].1, pending[3].1],
                [
                    row(pending[0].0),
                    row(pending[1].0),
                    row(pending[2].0),
                    row(pending[3].0),
                ],
                y,
            );
            count = 0;
        }
    }
    for &(r, a) in &pending[..count] {
        T::axpy(a, row(r), y);
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked above).
        unsafe { x86::axpy(a, x, y) };
        return;
    }
    for (o, &v) in y.iter_mut().zip(x) {
        *o += a * v;
    }
}

fn axpy4(a: [f32; 4], x: [&[f32]; 4], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked above).
        unsafe { x86::axpy4(a, x, y) };
        return;
    }
    for (i, o) in y.iter_mut().enumerate() {
        *o += a[0] * x[0][i] + a[1] * x[1][i] + a[2] * x[2][i] + a[3] * x[3][i];
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use half::f16;

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn axpy4_f16(a: [f32; 4], x: [&[f16]; 4], y: &mut [f32]) {
        let n = x.iter().fold(y.len(), |n, row| n.min(row.len()));
        let va = a.map(|v| _mm256_set1_ps(v));
        let load = |row: &[f16], i: usize| {
            // SAFETY: callers keep i + 8 <= row.len(); f16 is 2 bytes, so 8 of them are 16.
            unsafe { _mm256_cvtph_ps(_mm_loadu_si128(row.as_ptr().add(i).cast::<__m128i>())) }
        };
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n bounds every slice.
            unsafe {
                let mut vy = _mm256_loadu_ps(y.as_ptr().add(i));
                vy = _mm256_fmadd_ps(va[0], load(x[0], i), vy);
                vy = _mm256_fmadd_ps(va[1], load(x[1], i), vy);
                vy = _mm256_fmadd_ps(va[2], load(x[2], i), vy);
                vy = _mm256_fmadd_ps(va[3], load(x[3], i), vy);
                _mm256_storeu_ps(y.as_mut_ptr().add(i), vy);
            }
            i += 8;
        }
        for j in i..n {
            let mut v = y[j];
            for r in 0..4 {
                v = a[r].mul_add(x[r][j].to_f32(), v);
            }
            y[j] = v;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
        let n = y.len().min(x.len());
        let va = _mm256_set1_ps(a);
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n bounds both slices.
            unsafe {
                let vy = _mm256_loadu_ps(y.as_ptr().add(i));
                let vx = _mm256_loadu_ps(x.as_ptr().add(i));
                _mm256_storeu_ps(y.as_mut_ptr().add(i), _mm256_fmadd_ps(va, vx, vy));
            }
            i += 8;
        }
        for j in i..n {
            y[j] = a.mul_add(x[j], y[j]);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn axpy4(a: [f32; 4], x: [&[f32]; 4], y: &mut [f32]) {
        let n = x.iter().fold(y.len(), |n, row| n.min(row.len()));
        let va = a.map(|v| _mm256_set1_ps(v));
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n bounds every slice.
            unsafe {
                let mut vy = _mm256_loadu_ps(y.as_ptr().add(i));
                vy = _mm256_fmadd_ps(va[0], _mm256_loadu_ps(x[0].as_ptr().add(i)), vy);
                vy = _mm256_fmadd_ps(va[1], _mm256_loadu_ps(x[1].as_ptr().add(i)), vy);
                vy = _mm256_fmadd_ps(va[2], _mm256_loadu_ps(x[2].as_ptr().add(i)), vy);
                vy = _mm256_fmadd_ps(va[3], _mm256_loadu_ps(x[3].as_ptr().add(i)), vy);
                _mm256_storeu_ps(y.as_mut_ptr().add(i), vy);
            }
            i += 8;
        }
        for j in i..n {
            let mut v = y[j];
            for r in 0..4 {
                v = a[r].mul_add(x[r][j], v);
            }
            y[j] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_rows_matches_scalar_sum() {
        let (rows, cols) = (9, 37);
        let m: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 13) % 17) as f32 / 7.0 - 1.0)
            .collect();
        let picks = [
            (0, 0.5),
            (3, -1.0),
            (8, 2.0),
            (2, 0.0),
            (5, 0.25),
            (7, 1.5),
            (1, -0.75),
        ];
        let mut y = vec![1.0f32; cols];
        add_rows(&m, cols, picks.iter().copied(), &mut y);
        for (j, &got) in y.iter().enumerate() {
            let expected: f32 = 1.0 + picks.iter().map(|&(r, a)| a * m[r * cols + j]).sum::<f32>();
            assert!((got - expected).abs() < 1e-5, "{j}: {got} vs {expected}");
        }
        // The f16 copy gives the same sums up to f16 rounding of the matrix.
        let m16 = to_f16(&m);
        let mut y16 = vec![1.0f32; cols];
        add_rows(&m16, cols, picks.iter().copied(), &mut y16);
        for (j, (&a, &b)) in y.iter().zip(&y16).enumerate() {
            assert!((a - b).abs() < 5e-3, "{j}: {a} vs {b}");
        }
    }
}
