//! Seeded train/test splitting and the data fingerprint recorded with a model.

use std::io::Read;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Splits `rows` row indices into `(train, test)`, each sorted ascending.
///
/// A Fisher–Yates shuffle driven by `ChaCha8Rng::seed_from_u64(seed)` picks
/// the test rows, so a seed gives the same split on every platform and
/// version. The test set has `round(rows * test_fraction)` rows, kept within
/// `1..=rows - 1` when `rows >= 2`; a fraction that is NaN or `<= 0` gives no
/// test rows, one `>= 1` leaves one training row.
pub fn train_test_split(rows: usize, test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..rows).collect();
    let n_test = if rows < 2 || test_fraction.is_nan() || test_fraction <= 0.0 {
        0
    } else {
        ((rows as f64 * test_fraction.min(1.0)).round() as usize).clamp(1, rows - 1)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for i in 0..n_test {
        let j = i + uniform_below(&mut rng, (rows - i) as u64) as usize;
        order.swap(i, j);
    }
    let mut test = order[..n_test].to_vec();
    let mut train = order[n_test..].to_vec();
    test.sort_unstable();
    train.sort_unstable();
    (train, test)
}

/// Assigns `rows` row indices to `folds` cross-validation folds; returns each
/// fold's (held-out) rows, sorted ascending. Every row is in exactly one fold
/// and fold sizes differ by at most one (per class when stratified).
///
/// With `strata` (one class index per row), rows are shuffled within each class
/// and dealt to the folds in turn, continuing across classes, so every fold has
/// about the same class mix; without, all rows are shuffled and dealt. The
/// shuffle is seeded like [`train_test_split`], so a seed gives the same folds
/// everywhere. `folds` is clamped to `1..=rows` (at least 1).
pub fn kfold(rows: usize, folds: usize, strata: Option<&[usize]>, seed: u64) -> Vec<Vec<usize>> {
    let folds = folds.clamp(1, rows.max(1));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut groups: Vec<Vec<usize>> = match strata {
        Some(classes) => {
            let count = classes.iter().copied().max().map_or(0, |m| m + 1);
            let mut groups = vec![Vec::new(); count];
            for (row, &class) in classes.iter().enumerate().take(rows) {
                groups[class].push(row);
            }
            groups
        }
        None => vec![(0..rows).collect()],
    };
    let mut out = vec![Vec::new(); folds];
    let mut next = 0;
    for group in &mut groups {
        let n = group.len();
        for i in 0..n.saturating_sub(1) {
            let j = i + uniform_below(&mut rng, (n - i) as u64) as usize;
            group.swap(i, j);
        }
        for &row in group.iter() {
            out[next].push(row);
            next = (next + 1) % folds;
        }
    }
    for fold in &mut out {
        fold.sort_unstable();
    }
    out
}

/// Uniform in `0..bound` (bound > 0) by rejection, independent of `rand`'s
/// own range sampling so splits stay stable across `rand` releases.
fn uniform_below(rng: &mut ChaCha8Rng, bound: u64) -> u64 {
    let zone = u64::MAX - (u64::MAX % bound);
    loop {
        let x = rng.next_u64();
        if x < zone {
            return x % bound;
        }
    }
}

/// Identity of the training data, stored in model.json.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Fingerprint {
    pub rows: usize,
    pub columns: usize,
    /// Lowercase hex SHA-256 of the raw input bytes as received.
    pub sha256: String,
}

/// Fingerprints raw input bytes (hex SHA-256) with the table's shape.
pub fn fingerprint(bytes: &[u8], rows: usize, columns: usize) -> Fingerprint {
    Fingerprint {
        rows,
        columns,
        sha256: hex::encode(Sha256::digest(bytes)),
    }
}

/// A reader that hashes every byte read through it, for fingerprinting a
/// streamed upload without holding it: pass `&mut HashingReader` to a reader
/// function, then call [`HashingReader::fingerprint`]. Only bytes actually
/// read are hashed; the CSV and NDJSON readers read to the end.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// The fingerprint of everything read so far.
    pub fn fingerprint(self, rows: usize, columns: usize) -> Fingerprint {
        Fingerprint {
            rows,
            columns,
            sha256: hex::encode(self.hasher.finalize()),
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::read::{read_csv, ReadLimits};

    #[test]
    fn split_is_deterministic_and_partitions() {
        let (train, test) = train_test_split(100, 0.2, 7);
        assert_eq!((train.len(), test.len()), (80, 20));
        assert_eq!(train_test_split(100, 0.2, 7), (train.clone(), test.clone()));
        assert_ne!(train_test_split(100, 0.2, 8).1, test);
        let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert!(test.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn split_is_pinned_for_a_fixed_seed() {
        let (_, test) = train_test_split(10, 0.3, 42);
        assert_eq!(test, PINNED_TEST_ROWS);
    }

    const PINNED_TEST_ROWS: [usize; 3] = [5, 6, 7];

    #[test]
    fn kfold_partitions_deterministically_and_stratifies() {
        let classes: Vec<usize> = (0..100).map(|i| usize::from(i % 5 == 0)).collect();
        let folds = kfold(100, 5, Some(&classes), 3);
        assert_eq!(folds, kfold(100, 5, Some(&classes), 3));
        assert_ne!(folds, kfold(100, 5, Some(&classes), 4));
        let mut all: Vec<usize> = folds.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        for fold in &folds {
            assert_eq!(fold.len(), 20);
            assert_eq!(fold.iter().filter(|&&r| classes[r] == 1).count(), 4);
        }
        let plain = kfold(7, 3, None, 1);
        let sizes: Vec<usize> = plain.iter().map(Vec::len).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 7);
        assert!(sizes.iter().all(|&s| s == 2 || s == 3));
        assert_eq!(kfold(2, 5, None, 1).len(), 2);
    }

    #[test]
    fn split_edge_cases() {
        assert_eq!(train_test_split(0, 0.2, 1), (vec![], vec![]));
        assert_eq!(train_test_split(1, 0.5, 1), (vec![0], vec![]));
        assert_eq!(train_test_split(3, 0.0, 1).1.len(), 0);
        assert_eq!(train_test_split(3, f64::NAN, 1).1.len(), 0);
        assert_eq!(train_test_split(3, 0.01, 1).1.len(), 1);
        assert_eq!(train_test_split(3, 1.0, 1).0.len(), 1);
    }

    #[test]
    fn fingerprint_hashes_bytes_and_streams_alike() {
        let data = b"a,b\n1,2\n3,4\n";
        let fp = fingerprint(data, 2, 2);
        assert_eq!(fp.sha256.len(), 64);
        assert_eq!(
            fingerprint(b"", 0, 0).sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut reader = HashingReader::new(&data[..]);
        let table = read_csv(&mut reader, &ReadLimits::default()).unwrap();
        assert_eq!(reader.bytes_read(), data.len() as u64);
        assert_eq!(reader.fingerprint(table.rows(), table.columns.len()), fp);
    }
}
