//! Fitting the pipeline on training rows: one encoder per feature column, by kind.

use std::borrow::Cow;
use std::collections::HashMap;

use super::encoder::{Encoder, EXPECT_AUDIO, EXPECT_BOOL, EXPECT_IMAGE, EXPECT_NUMBER};
use super::{check_rows, FeaturePipeline, FittedColumn, PipelineOptions};
use crate::data::audio::AudioEncoder;
use crate::data::canon::Raw;
use crate::data::error::DataError;
use crate::data::image::{ImageEncoder, ImageInput, ImageOptions};
use crate::data::schema::{ColumnKind, Schema};
use crate::data::table::Table;
use crate::data::text::TfidfEncoder;

impl FeaturePipeline {
    /// Fits on `rows` of `table` using `schema`. Columns that are excluded in
    /// the schema (identifier, ignored, all missing) and the `target` column
    /// are left out.
    ///
    /// Errors: `target` or a schema column absent from the table, no rows,
    /// invalid options, a cell that does not parse as its column's kind
    /// (`InvalidValue`), and `NoFeatures` when nothing is left to encode.
    pub fn fit(
        table: &Table,
        rows: &[usize],
        schema: &Schema,
        target: &str,
        options: &PipelineOptions,
    ) -> Result<FeaturePipeline, DataError> {
        options.validate()?;
        if table.column_index(target).is_none() {
            return Err(DataError::UnknownColumn {
                name: target.to_owned(),
            });
        }
        if rows.is_empty() {
            return Err(DataError::Empty);
        }
        check_rows(table.rows(), rows)?;
        let mut columns = Vec::new();
        for column in &schema.columns {
            crate::cooperative::yield_point();
            if !column.is_feature() || column.name == target {
                continue;
            }
            let cells = table
                .column(&column.name)
                .ok_or_else(|| DataError::MissingColumn {
                    name: column.name.clone(),
                })?;
            check_rows(cells.len(), rows)?;
            let invalid =
                |row: usize, raw: Raw<'_>, expected: &'static str| DataError::InvalidValue {
                    column: column.name.clone(),
                    row: row + 1,
                    value: raw.describe(),
                    expected,
                };
            let encoder = match column.kind {
                ColumnKind::Identifier => continue,
                ColumnKind::Numeric => {
                    let mut values = Vec::with_capacity(rows.len());
                    for (i, &r) in rows.iter().enumerate() {
                        crate::cooperative::yield_every(i, crate::data::YIELD_ROWS);
                        let raw = Raw::from_cell(&cells[r]);
                        if let Some(v) = raw.number().map_err(|_| invalid(r, raw, EXPECT_NUMBER))? {
                            values.push(v);
                        }
                    }
                    fit_numeric(
                        values,
                        rows.len(),
                        options.standardize,
                        options.numeric_bins,
                    )
                }
                ColumnKind::Boolean => {
                    let (mut trues, mut present) = (0usize, 0usize);
                    for (i, &r) in rows.iter().enumerate() {
                        crate::cooperative::yield_every(i, crate::data::YIELD_ROWS);
                        let raw = Raw::from_cell(&cells[r]);
                        let Some(value) =
                            raw.boolean().map_err(|_| invalid(r, raw, EXPECT_BOOL))?
                        else {
                            continue;
                        };
                        present += 1;
                        trues += usize::from(value);
                    }
                    Encoder::Boolean {
                        fill: if present == 0 {
                            0.0
                        } else {
                            trues as f64 / present as f64
                        },
                        missing_indicator: present < rows.len(),
                    }
                }
                ColumnKind::Categorical => {
                    let mut counts: HashMap<String, usize> = HashMap::new();
                    for (i, &r) in rows.iter().enumerate() {
                        crate::cooperative::yield_every(i, crate::data::YIELD_ROWS);
                        if let Some(key) = Raw::from_cell(&cells[r]).key() {
                            match counts.get_mut(key.as_str()) {
                                Some(count) => *count += 1,
                                None => {
                                    counts.insert(key.as_str().to_owned(), 1);
                                    if counts.len() > options.max_one_hot {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    if counts.len() > options.max_one_hot {
                        Encoder::Hashed {
                            buckets: options.hash_buckets,
                        }
                    } else {
                        let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
                        ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                        Encoder::OneHot {
                            vocabulary: ranked.into_iter().map(|(v, _)| v).collect(),
                            lookup: HashMap::default(),
                        }
                    }
                }
                ColumnKind::Image => {
                    let mut images = Vec::with_capacity(rows.len());
                    for (i, &r) in rows.iter().enumerate() {
                        crate::cooperative::yield_every(i, crate::data::YIELD_ROWS);
                        images.push(match Raw::from_cell(&cells[r]) {
                            Raw::Missing => None,
                            Raw::Text(s) => Some(ImageInput::Text(s)),
                            raw => return Err(invalid(r, raw, EXPECT_IMAGE)),
                        });
                    }
                    let encoder =
                        ImageEncoder::fit(&options.image, images.into_iter(), options.standardize)
                            .map_err(|(i, reason)| DataError::InvalidImage {
                                column: column.name.clone(),
                                row: rows[i] + 1,
                                reason,
                            })?;
                    Encoder::Image(encoder)
                }
                ColumnKind::Audio => {
                    let mut clips = Vec::with_capacity(rows.len());
                    for &r in rows {
                        clips.push(match Raw::from_cell(&cells[r]) {
                            Raw::Missing => None,
                            Raw::Text(s) => Some(s),
                            raw => return Err(invalid(r, raw, EXPECT_AUDIO)),
                        });
                    }
                    let encoder =
                        AudioEncoder::fit(&options.audio, clips.into_iter(), options.standardize)
                            .map_err(|(i, reason)| DataError::InvalidAudio {
                            column: column.name.clone(),
                            row: rows[i] + 1,
                            reason,
                        })?;
                    Encoder::Audio(encoder)
                }
                ColumnKind::Text => {
                    let docs: Vec<Option<Cow<'_, str>>> = rows
                        .iter()
                        .map(|&r| match Raw::from_cell(&cells[r]) {
                            Raw::Missing => None,
                            Raw::Text(s) => Some(Cow::Borrowed(s)),
                            raw => raw.key().map(|k| Cow::Owned(k.as_str().to_owned())),
                        })
                        .collect();
                    Encoder::Tfidf(TfidfEncoder::fit(
                        docs.iter().map(|d| d.as_deref()),
                        options
                            .text_columns
                            .get(&column.name)
                            .unwrap_or(&options.text),
                    ))
                }
            };
            columns.push(FittedColumn {
                name: column.name.clone(),
                kind: column.kind,
                encoder,
                offset: 0,
            });
        }
        let pipeline = FeaturePipeline::assemble(columns)
            .map_err(|reason| DataError::InvalidOptions { reason })?;
        if pipeline.width == 0 {
            return Err(DataError::NoFeatures);
        }
        Ok(pipeline)
    }
}

/// Decodes every image cell of the image feature columns of `schema` in `rows`
/// (the `target` excluded), so that unreadable or oversized images are refused
/// before training starts.
///
/// Errors: `InvalidImage` naming the first bad cell's row and column,
/// `InvalidValue` for a number or boolean in an image column.
pub fn check_images(
    table: &Table,
    rows: &[usize],
    schema: &Schema,
    target: &str,
    options: &ImageOptions,
) -> Result<(), DataError> {
    let probe = ImageEncoder::new(options);
    let mut out = vec![0.0f32; probe.width()];
    for column in &schema.columns {
        if column.kind != ColumnKind::Image || !column.is_feature() || column.name == target {
            continue;
        }
        let Some(cells) = table.column(&column.name) else {
            continue;
        };
        for &r in rows.iter().filter(|&&r| r < cells.len()) {
            let raw = Raw::from_cell(&cells[r]);
            match raw {
                Raw::Missing => {}
                Raw::Text(s) => probe
                    .encode(ImageInput::Text(s), &mut out)
                    .map_err(|reason| DataError::InvalidImage {
                        column: column.name.clone(),
                        row: r + 1,
                        reason,
                    })?,
                raw => {
                    return Err(DataError::InvalidValue {
                        column: column.name.clone(),
                        row: r + 1,
                        value: raw.describe(),
                        expected: EXPECT_IMAGE,
                    })
                }
            }
        }
    }
    Ok(())
}

fn fit_numeric(mut values: Vec<f64>, rows: usize, standardize: bool, bins: usize) -> Encoder {
    let missing = rows - values.len();
    let median = median(&mut values);
    let bin_edges = quantile_edges(&mut values, bins);
    let (mut mean, mut std) = (0.0, 1.0);
    if standardize {
        let n = rows as f64;
        let sum: f64 = values.iter().sum::<f64>() + missing as f64 * median;
        mean = sum / n;
        let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>()
            + missing as f64 * (median - mean) * (median - mean);
        std = (squares / n).sqrt();
        if !mean.is_finite() {
            mean = 0.0;
        }
        if !(std.is_finite() && std > 0.0) {
            std = 1.0;
        }
    }
    Encoder::Numeric {
        median,
        mean,
        std,
        missing_indicator: missing > 0,
        bin_edges,
    }
}

/// Distinct quantile edges at 0, 1/bins, ..., 1 of `values`; fewer than two
/// distinct edges (or `bins` 0) gives none.
fn quantile_edges(values: &mut [f64], bins: usize) -> Vec<f64> {
    if bins == 0 || values.is_empty() {
        return Vec::new();
    }
    values.sort_unstable_by(f64::total_cmp);
    let last = values.len() - 1;
    let mut edges: Vec<f64> = (0..=bins)
        .map(|i| values[(i * last + bins / 2) / bins])
        .collect();
    edges.dedup();
    if edges.len() < 2 {
        edges.clear();
    }
    edges
}

fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    let (_, &mut upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        return upper;
    }
    let lower = values[..n / 2]
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    lower / 2.0 + upper / 2.0
}
