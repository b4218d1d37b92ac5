//! Text features: lowercase Unicode word tokenization (UAX #29 word boundaries), word
//! n-grams and optional character n-grams, a vocabulary fitted with a minimum document
//! frequency and a size cap (or feature hashing for unbounded vocabularies), and TF-IDF
//! weighting with L2 normalization.
//!
//! Terms: a word n-gram is its words joined by one space (`"not good"`); a character
//! n-gram is taken inside one word padded with a space on each side and written in
//! brackets (`"[ go]"`), so the two never collide. IDF is `ln((1 + n) / (1 + df)) + 1`
//! over the `n` training rows (a missing text is an empty document); term frequency is
//! the raw count, or `1 + ln(count)` with `sublinear_tf`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;

use super::canon::{fnv1a, FnvBuild};

/// Largest accepted `max_features` and `hashing` bucket count.
pub const MAX_TEXT_FEATURES: usize = 1 << 20;
/// Longest accepted word or character n-gram.
pub const MAX_CHAR_NGRAM: usize = 6;

/// How text columns are featurized; `pipeline.text` in a training request.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TextOptions {
    /// Word n-gram lengths `[min, max]`, within 1..=2 (default `[1, 2]`).
    pub ngram_range: [usize; 2],
    /// Character n-gram lengths `[min, max]` within 1..=6, taken inside words; `null`
    /// (the default) for none.
    pub char_ngrams: Option<[usize; 2]>,
    /// Fewest training rows a term must appear in to enter the vocabulary (default 2).
    pub min_df: usize,
    /// Largest vocabulary; the most frequent terms by document frequency are kept
    /// (default 20,000, at most 1,048,576).
    pub max_features: usize,
    /// Feature hashing into this many buckets instead of a vocabulary (`min_df` and
    /// `max_features` then do not apply); `null` (the default) for a vocabulary.
    pub hashing: Option<usize>,
    /// `1 + ln(count)` instead of the raw count as term frequency (default true).
    pub sublinear_tf: bool,
}

impl Default for TextOptions {
    fn default() -> Self {
        TextOptions {
            ngram_range: [1, 2],
            char_ngrams: None,
            min_df: 2,
            max_features: 20_000,
            hashing: None,
            sublinear_tf: true,
        }
    }
}

impl TextOptions {
    /// Checks every field; the message names it (`pipeline.text.min_df`) and its value.
    pub fn validate(&self) -> Result<(), String> {
        self.validate_at("pipeline.text")
    }

    /// [`TextOptions::validate`] for options found at `path` in the request.
    pub fn validate_at(&self, path: &str) -> Result<(), String> {
        let [lo, hi] = self.ngram_range;
        if !(1 <= lo && lo <= hi && hi <= 2) {
            return Err(format!(
                "{path}.ngram_range is [{lo}, {hi}]; it must be [1, 1], [1, 2] or [2, 2]"
            ));
        }
        if let Some([lo, hi]) = self.char_ngrams {
            if !(1 <= lo && lo <= hi && hi <= MAX_CHAR_NGRAM) {
                return Err(format!(
                    "{path}.char_ngrams is [{lo}, {hi}]; it must be [min, max] with 1 <= min <= max <= {MAX_CHAR_NGRAM}"
                ));
            }
        }
        if self.min_df == 0 {
            return Err(format!("{path}.min_df is 0; it must be at least 1"));
        }
        if !(1..=MAX_TEXT_FEATURES).contains(&self.max_features) {
            return Err(format!(
                "{path}.max_features is {}; it must be between 1 and {MAX_TEXT_FEATURES}",
                self.max_features
            ));
        }
        if let Some(buckets) = self.hashing {
            if !(1..=MAX_TEXT_FEATURES).contains(&buckets) {
                return Err(format!(
                    "{path}.hashing is {buckets}; it must be between 1 and {MAX_TEXT_FEATURES}"
                ));
            }
        }
        Ok(())
    }
}

/// A fitted TF-IDF featurizer for one column.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct TfidfEncoder {
    ngram_range: [usize; 2],
    #[serde(default)]
    char_ngrams: Option<[usize; 2]>,
    sublinear_tf: bool,
    /// Bucket count under feature hashing; `None` with a vocabulary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hash_buckets: Option<usize>,
    /// Terms by output position (empty under hashing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    vocabulary: Vec<String>,
    /// IDF weight per output position.
    idf: Vec<f32>,
    #[serde(skip)]
    lookup: HashMap<String, u32, FnvBuild>,
}

impl TfidfEncoder {
    /// Fits on `docs` (one per training row; `None` is an empty document).
    pub(crate) fn fit<'a>(
        docs: impl Iterator<Item = Option<&'a str>>,
        options: &TextOptions,
    ) -> TfidfEncoder {
        let mut encoder = TfidfEncoder {
            ngram_range: options.ngram_range,
            char_ngrams: options.char_ngrams,
            sublinear_tf: options.sublinear_tf,
            hash_buckets: options.hashing,
            vocabulary: Vec::new(),
            idf: Vec::new(),
            lookup: HashMap::default(),
        };
        let mut n = 0usize;
        let mut seen: HashMap<String, (), FnvBuild> = HashMap::default();
        match options.hashing {
            Some(buckets) => {
                let mut df = vec![0u32; buckets];
                let mut hit = vec![false; buckets];
                let mut touched = Vec::new();
                for doc in docs {
                    n += 1;
                    encoder.for_each_term(doc.unwrap_or(""), &mut |term| {
                        let b = (fnv1a(term) % buckets as u64) as usize;
                        if !hit[b] {
                            hit[b] = true;
                            touched.push(b);
                        }
                    });
                    for b in touched.drain(..) {
                        hit[b] = false;
                        df[b] += 1;
                    }
                }
                encoder.idf = df.iter().map(|&d| idf(n, d as usize)).collect();
            }
            None => {
                let mut df: HashMap<String, usize, FnvBuild> = HashMap::default();
                for doc in docs {
                    n += 1;
                    seen.clear();
                    encoder.for_each_term(doc.unwrap_or(""), &mut |term| {
                        if !seen.contains_key(term) {
                            seen.insert(term.to_owned(), ());
                            match df.get_mut(term) {
                                Some(count) => *count += 1,
                                None => {
                                    df.insert(term.to_owned(), 1);
                                }
                            }
                        }
                    });
                }
                let mut ranked: Vec<(String, usize)> = df
                    .into_iter()
                    .filter(|(_, d)| *d >= options.min_df)
                    .collect();
                ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                ranked.truncate(options.max_features);
                encoder.idf = ranked.iter().map(|(_, d)| idf(n, *d)).collect();
                encoder.vocabulary = ranked.into_iter().map(|(t, _)| t).collect();
                encoder.build_lookup();
            }
        }
        encoder
    }

    /// Rebuilds the lookup after deserializing and checks the fitted state.
    pub(crate) fn assemble(&mut self) -> Result<(), String> {
        let options = TextOptions {
            ngram_range: self.ngram_range,
            char_ngrams: self.char_ngrams,
            hashing: self.hash_buckets,
            ..TextOptions::default()
        };
        options.validate()?;
        if self.idf.len() != self.width() {
            return Err(format!(
                "{} idf weights for {} text features",
                self.idf.len(),
                self.width()
            ));
        }
        if self.hash_buckets.is_some() && !self.vocabulary.is_empty() {
            return Err("a hashed text encoder has no vocabulary".into());
        }
        if self.idf.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
            return Err("idf weights must be finite and positive".into());
        }
        self.build_lookup();
        if self.lookup.len() != self.vocabulary.len() {
            return Err("a text term appears twice in the vocabulary".into());
        }
        Ok(())
    }

    fn build_lookup(&mut self) {
        self.lookup = HashMap::with_capacity_and_hasher(self.vocabulary.len(), FnvBuild::default());
        for (i, term) in self.vocabulary.iter().enumerate() {
            self.lookup.insert(term.clone(), i as u32);
        }
    }

    /// Output features.
    pub(crate) fn width(&self) -> usize {
        self.hash_buckets.unwrap_or(self.vocabulary.len())
    }

    /// Feature names: `name:term` for vocabulary terms, `name#tfidfK` for hash buckets.
    pub(crate) fn feature_names(&self, name: &str, out: &mut Vec<String>) {
        match self.hash_buckets {
            Some(buckets) => out.extend((0..buckets).map(|k| format!("{name}#tfidf{k}"))),
            None => out.extend(self.vocabulary.iter().map(|t| format!("{name}:{t}"))),
        }
    }

    /// Appends the TF-IDF entries of `text` to `entries` as `(offset + position, value)`,
    /// positions strictly increasing, values L2-normalized. `scratch` is reused.
    pub(crate) fn encode(
        &self,
        text: &str,
        offset: u32,
        scratch: &mut Vec<(u32, f32)>,
        entries: &mut Vec<(u32, f32)>,
    ) {
        scratch.clear();
        self.for_each_term(text, &mut |term| {
            let position = match self.hash_buckets {
                Some(buckets) => Some((fnv1a(term) % buckets as u64) as u32),
                None => self.lookup.get(term).copied(),
            };
            if let Some(position) = position {
                scratch.push((position, 1.0));
            }
        });
        scratch.sort_unstable_by_key(|&(p, _)| p);
        let start = entries.len();
        for &(position, count) in scratch.iter() {
            let merged = entries.len() > start;
            match entries.last_mut() {
                Some(last) if merged && last.0 == offset + position => last.1 += count,
                _ => entries.push((offset + position, count)),
            }
        }
        let row = &mut entries[start..];
        let mut squares = 0.0f32;
        for (column, value) in row.iter_mut() {
            let tf = if self.sublinear_tf {
                1.0 + value.ln()
            } else {
                *value
            };
            *value = tf * self.idf[(*column - offset) as usize];
            squares += *value * *value;
        }
        if squares > 0.0 {
            let inverse = 1.0 / squares.sqrt();
            for (_, value) in row.iter_mut() {
                *value *= inverse;
            }
        }
    }

    /// Calls `f` with every term occurrence of `text`, in order.
    fn for_each_term(&self, text: &str, f: &mut dyn FnMut(&str)) {
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower.unicode_words().collect();
        let [lo, hi] = self.ngram_range;
        let mut buf = String::new();
        for n in lo..=hi {
            for gram in words.windows(n) {
                if n == 1 {
                    f(gram[0]);
                } else {
                    buf.clear();
                    for (i, word) in gram.iter().enumerate() {
                        if i > 0 {
                            buf.push(' ');
                        }
                        buf.push_str(word);
                    }
                    f(&buf);
                }
            }
        }
        if let Some([lo, hi]) = self.char_ngrams {
            let mut chars: Vec<char> = Vec::new();
            for word in &words {
                chars.clear();
                chars.push(' ');
                chars.extend(word.chars());
                chars.push(' ');
                for n in lo..=hi {
                    for gram in chars.windows(n) {
                        buf.clear();
                        buf.push('[');
                        buf.extend(gram);
                        buf.push(']');
                        f(&buf);
                    }
                }
            }
        }
    }
}

fn idf(n: usize, df: usize) -> f32 {
    (((1 + n) as f64 / (1 + df) as f64).ln() + 1.0) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(encoder: &TfidfEncoder, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        encoder.for_each_term(text, &mut |t| out.push(t.to_owned()));
        out
    }

    fn fitted(docs: &[&str], options: &TextOptions) -> TfidfEncoder {
        TfidfEncoder::fit(docs.iter().map(|d| Some(*d)), options)
    }

    #[test]
    fn tokenizes_on_unicode_word_boundaries_lowercased() {
        let e = fitted(&[], &TextOptions::default());
        assert_eq!(
            terms(&e, "Déjà VU, isn't it? 3.5 stars"),
            [
                "déjà",
                "vu",
                "isn't",
                "it",
                "3.5",
                "stars",
                "déjà vu",
                "vu isn't",
                "isn't it",
                "it 3.5",
                "3.5 stars"
            ]
        );
        let chars = TextOptions {
            ngram_range: [1, 1],
            char_ngrams: Some([2, 3]),
            ..TextOptions::default()
        };
        let e = fitted(&[], &chars);
        assert_eq!(
            terms(&e, "Ok"),
            ["ok", "[ o]", "[ok]", "[k ]", "[ ok]", "[ok ]"]
        );
    }

    #[test]
    fn vocabulary_respects_min_df_and_max_features_and_weights_rare_terms_higher() {
        let docs = ["good film", "good plot", "bad film", "good good acting"];
        let options = TextOptions {
            ngram_range: [1, 1],
            min_df: 2,
            ..TextOptions::default()
        };
        let e = fitted(&docs, &options);
        assert_eq!(e.vocabulary, ["good", "film"]);
        assert!(e.idf[1] > e.idf[0]);
        assert!((e.idf[0] - ((5.0f32 / 4.0).ln() + 1.0)).abs() < 1e-6);
        let capped = fitted(
            &docs,
            &TextOptions {
                max_features: 1,
                ..options.clone()
            },
        );
        assert_eq!(capped.vocabulary, ["good"]);

        let mut entries = Vec::new();
        let mut scratch = Vec::new();
        e.encode(
            "GOOD good film, unknown words",
            10,
            &mut scratch,
            &mut entries,
        );
        assert_eq!(entries.iter().map(|e| e.0).collect::<Vec<_>>(), [10, 11]);
        let good = (1.0 + 2.0f32.ln()) * e.idf[0];
        let film = e.idf[1];
        let norm = (good * good + film * film).sqrt();
        assert!((entries[0].1 - good / norm).abs() < 1e-6);
        assert!((entries[1].1 - film / norm).abs() < 1e-6);
        entries.clear();
        e.encode("nothing known", 0, &mut scratch, &mut entries);
        assert!(entries.is_empty());
    }

    #[test]
    fn hashing_needs_no_vocabulary_and_merges_collisions() {
        let options = TextOptions {
            hashing: Some(4),
            ..TextOptions::default()
        };
        let e = fitted(&["alpha beta gamma delta epsilon"], &options);
        assert!(e.vocabulary.is_empty());
        assert_eq!(e.width(), 4);
        let mut entries = Vec::new();
        e.encode(
            "alpha beta gamma delta epsilon zeta",
            0,
            &mut Vec::new(),
            &mut entries,
        );
        assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        let norm: f32 = entries.iter().map(|e| e.1 * e.1).sum();
        assert!((norm - 1.0).abs() < 1e-5);
    }

    #[test]
    fn options_are_validated_naming_the_field() {
        let bad = |o: TextOptions| o.validate().unwrap_err();
        assert!(bad(TextOptions {
            ngram_range: [1, 3],
            ..TextOptions::default()
        })
        .contains("pipeline.text.ngram_range is [1, 3]"));
        assert!(bad(TextOptions {
            min_df: 0,
            ..TextOptions::default()
        })
        .contains("pipeline.text.min_df"));
        assert!(bad(TextOptions {
            char_ngrams: Some([3, 2]),
            ..TextOptions::default()
        })
        .contains("pipeline.text.char_ngrams"));
        assert!(bad(TextOptions {
            hashing: Some(0),
            ..TextOptions::default()
        })
        .contains("pipeline.text.hashing is 0"));
    }
}
