//! The closed-form item-item model (EASE, Steck 2019):
//! `B = argmin ‖X − XB‖² + λ‖B‖²` with `diag(B) = 0`, solved as `P = (XᵀX + λI)⁻¹`,
//! `B_ij = −P_ij / P_jj`. Training costs `O(Σ_u |h_u|²)` for the Gram matrix plus
//! `O(n_items³)` for the inverse (blocked, GEMM-bound); scoring one user sums one row of
//! `B` per history item: `O(|h| · n_items)`.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayViewMut2};

use super::data::Dataset;
use super::kernels::add_rows;

/// Panel width of the blocked Gauss-Jordan inversion.
const BLOCK: usize = 64;

/// The learned item-item weights, row `i` = contribution of history item `i`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Ease {
    /// Shape `(n_items, n_items)`, zero diagonal.
    pub weights: Array2<f32>,
}

impl Ease {
    /// Fits the model on the datasets's histories (weights as stored, no recency).
    ///
    /// With `dropout = p > 0` the penalty is emphasised per item as in the dropout
    /// autoencoder closed form (Steck 2020, DLAE): `Λ = λI + p/(1−p)·diag(G)`,
    /// `B = I − (G + Λ)⁻¹Λ`, without the zero-diagonal constraint (history items are
    /// excluded at serving anyway).
    pub fn fit(
        data: &Dataset,
        lambda: f32,
        dropout: f32,
        cancel: &dyn Fn() -> bool,
    ) -> Option<Ease> {
        let n = data.n_items();
        let mut gram = Array2::<f64>::zeros((n, n));
        for user in 0..data.n_users() {
            let range = data.range(user);
            let items = &data.items[range.clone()];
            let values = &data.values[range];
            for (a, (&i, &wi)) in items.iter().zip(values).enumerate() {
                let mut row = gram.row_mut(i as usize);
                let wi = f64::from(wi);
                for (&j, &wj) in items[a..].iter().zip(&values[a..]) {
                    row[j as usize] += wi * f64::from(wj);
                }
            }
            if user % 1024 == 0 && cancel() {
                return None;
            }
        }
        // Pairs were accumulated once each (a <= b in history order): symmetrise.
        let emphasis = f64::from(dropout) / (1.0 - f64::from(dropout));
        let mut penalty = vec![0.0f64; n];
        for i in 0..n {
            for j in (i + 1)..n {
                let total = gram[[i, j]] + gram[[j, i]];
                gram[[i, j]] = total;
                gram[[j, i]] = total;
            }
            penalty[i] = f64::from(lambda) + emphasis * gram[[i, i]];
            gram[[i, i]] += penalty[i];
        }
        if !invert_spd(gram.view_mut(), cancel) {
            return None;
        }
        let p = gram;
        let mut weights = Array2::<f32>::zeros((n, n));
        for i in 0..n {
            for j in 0..n {
                weights[[i, j]] = if dropout > 0.0 {
                    let identity = if i == j { 1.0 } else { 0.0 };
                    (identity - p[[i, j]] * penalty[j]) as f32
                } else if i != j {
                    (-p[[i, j]] / p[[j, j]]) as f32
                } else {
                    0.0
                };
            }
        }
        Some(Ease { weights })
    }

    /// Writes `Σ_i w_i · B[i, :]` into `out` (length `n_items`).
    pub fn score_into(&self, history: &[(u32, f32)], out: &mut [f32]) {
        out.fill(0.0);
        let rows = self.weights.as_slice().expect("standard layout");
        let picks = history.iter().map(|&(item, w)| (item as usize, w));
        add_rows(rows, self.weights.ncols(), picks, out);
    }
}

/// In-place inverse of a symmetric positive-definite matrix by blocked Gauss-Jordan
/// elimination without pivoting (stable for SPD), `2n³` flops in rank-`BLOCK` GEMM
/// updates. Returns `false` if cancelled.
fn invert_spd(mut a: ArrayViewMut2<f64>, cancel: &dyn Fn() -> bool) -> bool {
    let n = a.nrows();
    let mut start = 0;
    while start < n {
        if cancel() {
            return false;
        }
        let end = (start + BLOCK).min(n);
        let b = end - start;
        // Inverse of the diagonal block (small, unblocked Gauss-Jordan).
        let mut block = a.slice(s![start..end, start..end]).to_owned();
        invert_small(&mut block);
        // Column panel F (rows outside the panel), then the scaled row panel R.
        let mut f = a.slice(s![.., start..end]).to_owned();
        f.slice_mut(s![start..end, ..]).fill(0.0);
        let mut r = Array2::<f64>::zeros((b, n));
        general_mat_mul(1.0, &block, &a.slice(s![start..end, ..]), 0.0, &mut r);
        general_mat_mul(-1.0, &f, &r, 1.0, &mut a);
        let mut new_cols = Array2::<f64>::zeros((n, b));
        general_mat_mul(-1.0, &f, &block, 0.0, &mut new_cols);
        a.slice_mut(s![.., start..end]).assign(&new_cols);
        a.slice_mut(s![start..end, ..]).assign(&r);
        a.slice_mut(s![start..end, start..end]).assign(&block);
        start = end;
    }
    true
}

fn invert_small(a: &mut Array2<f64>) {
    let n = a.nrows();
    for k in 0..n {
        let pivot = a[[k, k]];
        a[[k, k]] = 1.0;
        for j in 0..n {
            a[[k, j]] /= pivot;
        }
        for i in 0..n {
            if i == k {
                continue;
            }
            let factor = a[[i, k]];
            if factor == 0.0 {
                continue;
            }
            a[[i, k]] = 0.0;
            for j in 0..n {
                a[[i, j]] -= factor * a[[k, j]];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_inverse_matches_identity() {
        let n = 150;
        let m = Array2::from_shape_fn((n, n), |(i, j)| (((i * 31 + j * 17) % 23) as f64) / 23.0);
        let mut spd = m.t().dot(&m);
        for i in 0..n {
            spd[[i, i]] += 1.0;
        }
        let mut inv = spd.clone();
        assert!(invert_spd(inv.view_mut(), &|| false));
        let product = spd.dot(&inv);
        for i in 0..n {
            for j in 0..n {
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!(
                    (product[[i, j]] - expected).abs() < 1e-8,
                    "{i},{j}: {}",
                    product[[i, j]]
                );
            }
        }
    }
}
