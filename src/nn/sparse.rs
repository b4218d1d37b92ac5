//! Compressed sparse row (CSR) feature blocks and the first-layer kernels over them.
//!
//! A network input row is `[dense part | sparse part]`: the first `d` features come from a
//! dense `(n, d)` matrix, the remaining `v` from a CSR block `(n, v)`. The first layer's
//! weight rows `d..d + v` are touched only where a row has a non-zero, so neither the
//! forward nor the backward pass ever holds a dense `rows × v` matrix.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayView2, ArrayViewMut2};

/// A CSR matrix of `f32`: row `r` holds `indices[indptr[r]..indptr[r + 1]]` (column
/// numbers, strictly increasing within a row) with `values` at the same positions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CsrMatrix {
    cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

impl CsrMatrix {
    /// An empty matrix with `cols` columns and no rows; grow it with [`CsrMatrix::push_row`].
    pub fn new(cols: usize) -> CsrMatrix {
        CsrMatrix {
            cols,
            indptr: vec![0],
            indices: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Appends a row from `(column, value)` entries sorted by strictly increasing column.
    ///
    /// # Panics
    /// If a column is out of range or the entries are not strictly increasing (callers
    /// build rows from their own fitted vocabularies).
    pub fn push_row(&mut self, entries: &[(u32, f32)]) {
        let mut previous: Option<u32> = None;
        for &(column, value) in entries {
            assert!((column as usize) < self.cols, "sparse column out of range");
            assert!(
                previous.is_none_or(|p| p < column),
                "sparse columns must increase"
            );
            previous = Some(column);
            self.indices.push(column);
            self.values.push(value);
        }
        self.indptr.push(self.indices.len());
    }

    /// Row count.
    pub fn rows(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Column count.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Stored (non-zero) entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Bytes held by the index and value arrays.
    pub fn heap_bytes(&self) -> usize {
        self.indptr.len() * std::mem::size_of::<usize>() + self.nnz() * 8
    }

    /// Columns and values of row `r`.
    ///
    /// # Panics
    /// If `r >= rows()`.
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let span = self.indptr[r]..self.indptr[r + 1];
        (&self.indices[span.clone()], &self.values[span])
    }

    /// Empties the matrix, keeping its allocations and column count.
    pub fn clear(&mut self) {
        self.indptr.truncate(1);
        self.indices.clear();
        self.values.clear();
    }

    /// Replaces the contents with rows `rows` of `source` (same column count).
    pub(crate) fn gather(&mut self, source: &CsrMatrix, rows: &[usize]) {
        self.cols = source.cols;
        self.clear();
        for &r in rows {
            let (indices, values) = source.row(r);
            self.indices.extend_from_slice(indices);
            self.values.extend_from_slice(values);
            self.indptr.push(self.indices.len());
        }
    }

    /// The dense `(rows, cols)` equivalent; for tests and small matrices only.
    pub fn to_dense(&self) -> Array2<f32> {
        let mut dense = Array2::zeros((self.rows(), self.cols));
        for r in 0..self.rows() {
            let (indices, values) = self.row(r);
            for (&c, &v) in indices.iter().zip(values) {
                dense[[r, c as usize]] = v;
            }
        }
        dense
    }

    /// The first value failing `ok`, as `(row, column, value)`.
    pub(crate) fn first_violation(&self, ok: fn(f32) -> bool) -> Option<(usize, usize, f32)> {
        let position = self.values.iter().position(|&v| !ok(v))?;
        let row = self.indptr.partition_point(|&p| p <= position) - 1;
        Some((row, self.indices[position] as usize, self.values[position]))
    }
}

/// `out = dense · weight[..d] + sparse · weight[d..]` (no bias), `d = dense.ncols()`.
/// `sparse` covers the first `out.nrows()` rows.
pub(crate) fn first_layer_product(
    dense: ArrayView2<f32>,
    sparse: &CsrMatrix,
    weight: &Array2<f32>,
    mut out: ArrayViewMut2<f32>,
) {
    let d = dense.ncols();
    if d == 0 {
        out.fill(0.0);
    } else {
        general_mat_mul(1.0, &dense, &weight.slice(s![..d, ..]), 0.0, &mut out);
    }
    for (r, mut out_row) in out.rows_mut().into_iter().enumerate() {
        let (indices, values) = sparse.row(r);
        for (&c, &v) in indices.iter().zip(values) {
            out_row.scaled_add(v, &weight.row(d + c as usize));
        }
    }
}

/// `grad = [dense | sparse]ᵀ · delta` for the first layer: the dense rows by matrix
/// product, the sparse rows zeroed and then accumulated only at the batch's non-zeros.
pub(crate) fn first_layer_weight_gradient(
    dense: ArrayView2<f32>,
    sparse: &CsrMatrix,
    delta: ArrayView2<f32>,
    grad: &mut Array2<f32>,
) {
    let d = dense.ncols();
    if d > 0 {
        general_mat_mul(
            1.0,
            &dense.t(),
            &delta,
            0.0,
            &mut grad.slice_mut(s![..d, ..]),
        );
    }
    grad.slice_mut(s![d.., ..]).fill(0.0);
    for (r, delta_row) in delta.rows().into_iter().enumerate() {
        let (indices, values) = sparse.row(r);
        for (&c, &v) in indices.iter().zip(values) {
            grad.row_mut(d + c as usize).scaled_add(v, &delta_row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn sample() -> CsrMatrix {
        let mut m = CsrMatrix::new(5);
        m.push_row(&[(0, 1.0), (3, 2.0)]);
        m.push_row(&[]);
        m.push_row(&[(4, -0.5)]);
        m
    }

    #[test]
    fn rows_round_trip_through_dense() {
        let m = sample();
        assert_eq!((m.rows(), m.cols(), m.nnz()), (3, 5, 3));
        assert_eq!(
            m.to_dense(),
            array![
                [1.0, 0.0, 0.0, 2.0, 0.0],
                [0.0; 5],
                [0.0, 0.0, 0.0, 0.0, -0.5]
            ]
        );
        let mut g = CsrMatrix::new(0);
        g.gather(&m, &[2, 0]);
        assert_eq!(g.row(0), (&[4u32][..], &[-0.5f32][..]));
        assert_eq!(g.row(1), (&[0u32, 3][..], &[1.0f32, 2.0][..]));
        assert_eq!(m.first_violation(|v| v > 0.0), Some((2, 4, -0.5)));
    }

    #[test]
    fn kernels_match_the_dense_products() {
        let m = sample();
        let dense = array![[0.5, -1.0], [2.0, 0.0], [1.0, 1.0]];
        let weight = Array2::from_shape_fn((7, 3), |(i, j)| (i * 3 + j) as f32 * 0.1 - 0.8);
        let mut full = Array2::zeros((3, 7));
        full.slice_mut(s![.., ..2]).assign(&dense);
        full.slice_mut(s![.., 2..]).assign(&m.to_dense());

        let mut out = Array2::zeros((3, 3));
        first_layer_product(dense.view(), &m, &weight, out.view_mut());
        let expected = full.dot(&weight);
        assert!(
            (&out - &expected).iter().all(|d| d.abs() < 1e-6),
            "{out} vs {expected}"
        );

        let delta = array![[1.0, -2.0, 0.5], [0.3, 0.0, 1.0], [-1.0, 1.0, 2.0]];
        let mut grad = Array2::from_elem((7, 3), 9.0);
        first_layer_weight_gradient(dense.view(), &m, delta.view(), &mut grad);
        let expected = full.t().dot(&delta);
        assert!(
            (&grad - &expected).iter().all(|d| d.abs() < 1e-6),
            "{grad} vs {expected}"
        );
    }
}
