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
    /// Shape `(n_items + n_features, n_items)`: one row per item, then one per user
    /// feature (already scaled by the feature's input weight).
    pub weights: Array2<f32>,
    /// Features of each training user (empty without user features).
    pub user_features: UserFeatures,
}

/// Per training user, the user-attribute features fed to the item-item model as extra
/// inputs (collective EASE on the input side), CSR over user indices.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct UserFeatures {
    /// Distinct features (rows `n_items..` of the weights).
    pub count: usize,
    /// `n_users + 1` offsets into `ids`, or empty when `count == 0`.
    pub offsets: Vec<usize>,
    pub ids: Vec<u32>,
}

impl UserFeatures {
    /// Features of `user` (empty for an index without any).
    pub fn of(&self, user: usize) -> &[u32] {
        match (self.offsets.get(user), self.offsets.get(user + 1)) {
            (Some(&start), Some(&end)) => &self.ids[start..end],
            _ => &[],
        }
    }

    /// Checks the CSR against `n_users`.
    pub fn check(&self, n_users: usize) -> Result<(), String> {
        if self.count == 0 && self.offsets.is_empty() && self.ids.is_empty() {
            return Ok(());
        }
        if self.offsets.len() != n_users + 1
            || self.offsets.first() != Some(&0)
            || self.offsets.last() != Some(&self.ids.len())
            || self.offsets.windows(2).any(|w| w[0] > w[1])
            || self.ids.iter().any(|&f| f as usize >= self.count)
        {
            return Err("user features are inconsistent".into());
        }
        Ok(())
    }
}

impl Ease {
    /// Fits the model on the datasets's histories (weights as stored, no recency).
    ///
    /// With `dropout = p > 0` the penalty is emphasised per item as in the dropout
    /// autoencoder closed form (Steck 2020, DLAE): `Λ = λI + p/(1−p)·diag(G)`,
    /// `B = I − (G + Λ)⁻¹Λ`, without the zero-diagonal constraint (history items are
    /// excluded at serving anyway).
    ///
    /// `side` adds item side information as in collective EASE (Jeunen et al. 2020): each
    /// attribute value acts as a pseudo-user of weight `side.weight` who interacted with
    /// every item having that value, i.e. `G += w · Σ_v t_v t_vᵀ` for the items' value
    /// indicators `t_v`. Items sharing values then borrow each other's co-occurrences.
    ///
    /// `users` adds user features as extra input columns of weight `users.weight` (the
    /// features' rows predict items, never the reverse): the Gram matrix grows to
    /// `n_items + n_features` and the weights get one row per feature.
    pub fn fit(
        data: &Dataset,
        lambda: f32,
        dropout: f32,
        side: Option<&SideInfo>,
        users: Option<&UserInputs<'_>>,
        cancel: &dyn Fn() -> bool,
    ) -> Option<Ease> {
        let n = data.n_items();
        let features = users.map_or(0, |u| u.features.count);
        let m = n + features;
        let mut gram = Array2::<f64>::zeros((m, m));
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
            if let Some(inputs) = users {
                let own = inputs.features.of(user);
                let w = inputs.weight;
                for (a, &f) in own.iter().enumerate() {
                    let mut row = gram.row_mut(n + f as usize);
                    for (&i, &wi) in items.iter().zip(values) {
                        row[i as usize] += w * f64::from(wi);
                    }
                    for &g in &own[a..] {
                        row[n + g as usize] += w * w;
                    }
                }
            }
            if user % 1024 == 0 && cancel() {
                return None;
            }
        }
        // Pairs were accumulated once each (a <= b in history order): symmetrise.
        for i in 0..m {
            for j in (i + 1)..m {
                let total = gram[[i, j]] + gram[[j, i]];
                gram[[i, j]] = total;
                gram[[j, i]] = total;
            }
        }
        if let Some(side) = side {
            side.add_to_gram(gram.view_mut(), cancel)?;
        }
        let emphasis = f64::from(dropout) / (1.0 - f64::from(dropout));
        let mut penalty = vec![0.0f64; m];
        for i in 0..m {
            penalty[i] = f64::from(lambda) + emphasis * gram[[i, i]];
            gram[[i, i]] += penalty[i];
        }
        if !invert_spd(gram.view_mut(), cancel) {
            return None;
        }
        let p = gram;
        let mut weights = Array2::<f32>::zeros((m, n));
        for i in 0..m {
            // A feature row is read with the feature's input weight folded in.
            let scale = if i < n {
                1.0
            } else {
                users.map_or(1.0, |u| u.weight)
            };
            for j in 0..n {
                let b = if dropout > 0.0 {
                    let identity = if i == j { 1.0 } else { 0.0 };
                    identity - p[[i, j]] * penalty[j]
                } else if i != j {
                    -p[[i, j]] / p[[j, j]]
                } else {
                    0.0
                };
                weights[[i, j]] = (b * scale) as f32;
            }
        }
        Some(Ease {
            weights,
            user_features: users.map(|u| u.features.clone()).unwrap_or_default(),
        })
    }

    /// Writes `Σ_i w_i · B[i, :]` plus the rows of `user`'s features (a training user
    /// index) into `out` (length `n_items`).
    pub fn score_into(&self, history: &[(u32, f32)], user: Option<u32>, out: &mut [f32]) {
        out.fill(0.0);
        let n = self.weights.ncols();
        let rows = self.weights.as_slice().expect("standard layout");
        let features = user.map_or(&[][..], |u| self.user_features.of(u as usize));
        let picks = history
            .iter()
            .map(|&(item, w)| (item as usize, w))
            .chain(features.iter().map(|&f| (n + f as usize, 1.0)));
        add_rows(rows, n, picks, out);
    }
}

/// Item side information for the item-item fit: the items of each attribute value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SideInfo<'a> {
    /// Per attribute value, the (warm) items having it, ascending.
    pub postings: &'a [Vec<u32>],
    /// Pseudo-user weight of one value.
    pub weight: f64,
}

impl SideInfo<'_> {
    /// `G[i, j] += weight` for every value shared by items `i` and `j`. Costs
    /// `Σ_v |items of v|²`; `None` if cancelled.
    fn add_to_gram(&self, mut gram: ArrayViewMut2<f64>, cancel: &dyn Fn() -> bool) -> Option<()> {
        for (v, items) in self.postings.iter().enumerate() {
            for &i in items {
                let mut row = gram.row_mut(i as usize);
                for &j in items {
                    row[j as usize] += self.weight;
                }
            }
            if v % 64 == 0 && cancel() {
                return None;
            }
        }
        Some(())
    }
}

/// User features as extra inputs of the item-item fit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UserInputs<'a> {
    pub features: &'a UserFeatures,
    /// Input value of a present feature (an interaction counts 1).
    pub weight: f64,
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
