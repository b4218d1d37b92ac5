//! Fitting the pipeline on training rows: one encoder per feature column, by
//! kind; and the checks that decode every image or audio cell before training.

use std::borrow::Cow;
use std::collections::HashMap;

use super::encoder::{Encoder, EXPECT_AUDIO, EXPECT_BOOL, EXPECT_IMAGE, EXPECT_NUMBER};
use super::{check_rows, FeaturePipeline, FittedColumn, PipelineOptions};
use crate::data::audio::{AudioEncoder, AudioOptions};
use crate::data::canon::Raw;
use crate::data::error::DataError;
use crate::data::image::{ImageEncoder, ImageInput, ImageOptions};
use crate::data::schema::{ColumnKind, Schema};
use crate::data::table::{Cell, Table};
use crate::data::text::TfidfEncoder;
use crate::data::YIELD_ROWS;

impl FeaturePipeline {
    /// Fits on `rows` of `table` using `schema`. Columns that are excluded in
    /// the schema (identifier, ignored, all missing) and the `target` column
    /// are left out.
    ///
    /// Errors: `target` or a schema column absent from the table, no rows,
    /// invalid options, a cell that does not parse as its column's kind
    /// (`InvalidValue`), an image or audio cell that cannot be decoded, and
    /// `NoFeatures` when nothing is left to encode.
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
            let cells = Cells {
                name: &column.name,
                cells,
                rows,
            };
            let encoder = match column.kind {
                ColumnKind::Identifier => continue,
                ColumnKind::Numeric => fit_numeric(&cells, options)?,
                ColumnKind::Boolean => fit_boolean(&cells)?,
                ColumnKind::Categorical => fit_categorical(&cells, options),
                ColumnKind::Image => {
                    Encoder::Image(fit_image(&cells, &options.image, options.standardize)?)
                }
                ColumnKind::Audio => {
                    Encoder::Audio(fit_audio(&cells, &options.audio, options.standardize)?)
                }
                ColumnKind::Text => fit_text(&cells, options),
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
/// before training starts. Decodes as fitting does, without the statistics.
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
    for_media_columns(table, rows, schema, target, ColumnKind::Image, |cells| {
        fit_image(cells, options, false).map(drop)
    })
}

/// Decodes every clip of the audio feature columns of `schema` in `rows` (the `target`
/// excluded), so that unreadable, unsupported or oversized clips are refused before
/// training starts. Decodes as fitting does; the statistics are not kept.
///
/// Errors: `InvalidAudio` naming the first bad cell's row and column, `InvalidValue`
/// for a number or boolean in an audio column.
pub fn check_audio(
    table: &Table,
    rows: &[usize],
    schema: &Schema,
    target: &str,
    options: &AudioOptions,
) -> Result<(), DataError> {
    for_media_columns(table, rows, schema, target, ColumnKind::Audio, |cells| {
        fit_audio(cells, options, false).map(drop)
    })
}

/// Runs `check` on the cells of every `kind` feature column of `schema` present in
/// `table` (the `target` excluded), at those of `rows` within the column.
fn for_media_columns(
    table: &Table,
    rows: &[usize],
    schema: &Schema,
    target: &str,
    kind: ColumnKind,
    mut check: impl FnMut(&Cells) -> Result<(), DataError>,
) -> Result<(), DataError> {
    for column in &schema.columns {
        if column.kind != kind || !column.is_feature() || column.name == target {
            continue;
        }
        let Some(cells) = table.column(&column.name) else {
            continue;
        };
        let rows: Vec<usize> = rows.iter().copied().filter(|&r| r < cells.len()).collect();
        check(&Cells {
            name: &column.name,
            cells,
            rows: &rows,
        })?;
    }
    Ok(())
}

/// One column's cells and the training rows to read from them (all in range).
struct Cells<'a> {
    name: &'a str,
    cells: &'a [Cell],
    rows: &'a [usize],
}

impl<'a> Cells<'a> {
    /// `(row index, value)` in row order, yielding every [`YIELD_ROWS`] rows.
    fn raws(&self) -> impl Iterator<Item = (usize, Raw<'a>)> + '_ {
        let cells = self.cells;
        self.rows.iter().enumerate().map(move |(i, &r)| {
            crate::cooperative::yield_every(i, YIELD_ROWS);
            (r, Raw::from_cell(&cells[r]))
        })
    }

    /// `InvalidValue` for `raw` at 0-based row `row`.
    fn invalid(&self, row: usize, raw: Raw<'_>, expected: &'static str) -> DataError {
        DataError::InvalidValue {
            column: self.name.to_owned(),
            row: row + 1,
            value: raw.describe(),
            expected,
        }
    }

    /// The text of each cell in row order (`None` when missing), for an encoder
    /// that decodes as it reads: a number or boolean ends the sequence, and its
    /// `InvalidValue` (with `expected`) is left in `wrong`. A decoding error at an
    /// earlier row therefore wins, as it would reading cell by cell.
    fn texts<'w>(
        &'w self,
        expected: &'static str,
        wrong: &'w mut Option<DataError>,
    ) -> impl Iterator<Item = Option<&'a str>> + 'w {
        self.raws().map_while(move |(r, raw)| match raw {
            Raw::Missing => Some(None),
            Raw::Text(s) => Some(Some(s)),
            raw => {
                *wrong = Some(self.invalid(r, raw, expected));
                None
            }
        })
    }
}

fn fit_numeric(cells: &Cells, options: &PipelineOptions) -> Result<Encoder, DataError> {
    let mut values = Vec::with_capacity(cells.rows.len());
    for (r, raw) in cells.raws() {
        if let Some(v) = raw
            .number()
            .map_err(|_| cells.invalid(r, raw, EXPECT_NUMBER))?
        {
            values.push(v);
        }
    }
    Ok(numeric_encoder(
        values,
        cells.rows.len(),
        options.standardize,
        options.numeric_bins,
    ))
}

fn fit_boolean(cells: &Cells) -> Result<Encoder, DataError> {
    let (mut trues, mut present) = (0usize, 0usize);
    for (r, raw) in cells.raws() {
        let Some(value) = raw
            .boolean()
            .map_err(|_| cells.invalid(r, raw, EXPECT_BOOL))?
        else {
            continue;
        };
        present += 1;
        trues += usize::from(value);
    }
    Ok(Encoder::Boolean {
        fill: if present == 0 {
            0.0
        } else {
            trues as f64 / present as f64
        },
        missing_indicator: present < cells.rows.len(),
    })
}

/// One-hot over the values by frequency, or hashing once there are more than
/// `max_one_hot` distinct values.
fn fit_categorical(cells: &Cells, options: &PipelineOptions) -> Encoder {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for (_, raw) in cells.raws() {
        if let Some(key) = raw.key() {
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

/// Decodes the images in row order and fits their statistics; the first cell
/// that is not an image or cannot be decoded is the error.
fn fit_image(
    cells: &Cells,
    options: &ImageOptions,
    standardize: bool,
) -> Result<ImageEncoder, DataError> {
    let mut wrong = None;
    let images = cells
        .texts(EXPECT_IMAGE, &mut wrong)
        .map(|text| text.map(ImageInput::Text));
    let fitted = ImageEncoder::fit(options, images, standardize);
    if let Some(error) = wrong {
        return Err(error);
    }
    fitted.map_err(|(i, reason)| DataError::InvalidImage {
        column: cells.name.to_owned(),
        row: cells.rows[i] + 1,
        reason,
    })
}

/// Decodes the clips in row order and fits their statistics; the first cell
/// that is not a clip or cannot be decoded is the error.
fn fit_audio(
    cells: &Cells,
    options: &AudioOptions,
    standardize: bool,
) -> Result<AudioEncoder, DataError> {
    let mut wrong = None;
    let fitted = AudioEncoder::fit(options, cells.texts(EXPECT_AUDIO, &mut wrong), standardize);
    if let Some(error) = wrong {
        return Err(error);
    }
    fitted.map_err(|(i, reason)| DataError::InvalidAudio {
        column: cells.name.to_owned(),
        row: cells.rows[i] + 1,
        reason,
    })
}

/// TF-IDF over the cells' text; numbers and booleans are read as their
/// canonical text.
fn fit_text(cells: &Cells, options: &PipelineOptions) -> Encoder {
    let docs: Vec<Option<Cow<'_, str>>> = cells
        .raws()
        .map(|(_, raw)| match raw {
            Raw::Missing => None,
            Raw::Text(s) => Some(Cow::Borrowed(s)),
            raw => raw.key().map(|k| Cow::Owned(k.as_str().to_owned())),
        })
        .collect();
    Encoder::Tfidf(TfidfEncoder::fit(
        docs.iter().map(|d| d.as_deref()),
        options
            .text_columns
            .get(cells.name)
            .unwrap_or(&options.text),
    ))
}

/// Median imputation, optional standardization and quantile bins over the
/// present `values` of `rows` rows.
fn numeric_encoder(mut values: Vec<f64>, rows: usize, standardize: bool, bins: usize) -> Encoder {
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
