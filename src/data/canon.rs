//! Canonical readings of raw values, shared by fitting, table transforms and
//! the serving path so that all three agree: missing tokens, numbers, booleans,
//! category keys and the stable hash used for feature hashing.
//!
//! Category keys: text is trimmed; an integer literal keeps its exact digits
//! without a `+` sign or leading zeros (`"007"` -> `"7"`, `"-0"` -> `"0"`);
//! other numeric text and JSON numbers go through `f64` and are printed as the
//! shortest round-trip decimal without a trailing `.0` (`3`, `3.0`, `"3.0"`,
//! `"3"` -> `"3"`; `0.5` -> `"0.5"`), using exponent form outside
//! `1e-5 <= |x| < 1e21`; `true`/`false` in any case -> `"true"`/`"false"`.
//! Integers beyond 2^53 sent as JSON numbers lose precision; send them as
//! strings.

use std::fmt::{self, Write as _};
use std::hash::{BuildHasherDefault, Hasher};

use super::table::Cell;

/// Missing-value tokens, matched after trimming and ignoring ASCII case.
/// `"none"` is deliberately not one: it is a real class in many label sets.
pub const MISSING_TOKENS: [&str; 6] = ["", "null", "na", "n/a", "?", "nan"];

/// Whether `s` reads as a missing value (see [`MISSING_TOKENS`]).
pub fn is_missing_token(s: &str) -> bool {
    let t = s.trim();
    t.len() <= 4 && MISSING_TOKENS.iter().any(|m| t.eq_ignore_ascii_case(m))
}

/// Largest magnitude a numeric value may have: the engine computes in f32,
/// so larger values (1e308, say) could only become infinities.
pub const MAX_NUMBER: f64 = f32::MAX as f64;

/// Whether `v` is finite and within ±[`MAX_NUMBER`].
pub(crate) fn in_range(v: f64) -> bool {
    v.is_finite() && v.abs() <= MAX_NUMBER
}

/// Text that reads as a number but is not finite or not within ±[`MAX_NUMBER`]
/// (`inf`, `-Infinity`, `1e400`, `1e308`).
pub(crate) fn is_out_of_range_number(s: &str) -> bool {
    parse_number(s).is_none() && s.trim().parse::<f64>().is_ok_and(|v| !in_range(v))
}

/// A number within ±[`MAX_NUMBER`] from trimmed text, or `None`.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    if !body
        .as_bytes()
        .first()
        .is_some_and(|b| b.is_ascii_digit() || *b == b'.')
    {
        return None;
    }
    if let Some(v) = small_integer(t) {
        return Some(v);
    }
    t.parse::<f64>().ok().filter(|v| in_range(*v))
}

/// Fast path for plain integers of up to 15 digits (exact in `f64`).
fn small_integer(t: &str) -> Option<f64> {
    let (negative, digits) = match t.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        bytes => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    let v = n as f64;
    Some(if negative { -v } else { v })
}

/// Text accepted as a boolean value: true/false, yes/no, t/f, y/n, 1/0
/// (trimmed, any ASCII case).
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    const TRUE: [&str; 5] = ["true", "yes", "t", "y", "1"];
    const FALSE: [&str; 5] = ["false", "no", "f", "n", "0"];
    let t = s.trim();
    if t.len() > 5 {
        return None;
    }
    if TRUE.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Some(true)
    } else if FALSE.iter().any(|w| t.eq_ignore_ascii_case(w)) {
        Some(false)
    } else {
        None
    }
}

/// Text that schema inference takes as boolean: true/false and yes/no only.
pub(crate) fn is_inferred_bool_text(s: &str) -> bool {
    let t = s.trim();
    ["true", "false", "yes", "no"]
        .iter()
        .any(|w| t.eq_ignore_ascii_case(w))
}

/// A raw value borrowed from a table cell or a JSON record.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Raw<'a> {
    Missing,
    Number(f64),
    Bool(bool),
    Text(&'a str),
}

impl<'a> Raw<'a> {
    pub(crate) fn from_cell(cell: &'a Cell) -> Raw<'a> {
        match cell {
            Cell::Missing => Raw::Missing,
            Cell::Number(v) => Raw::Number(*v),
            Cell::Bool(b) => Raw::Bool(*b),
            Cell::Text(s) if is_missing_token(s) => Raw::Missing,
            Cell::Text(s) => Raw::Text(s),
        }
    }

    /// The canonical category key; `None` for a missing value.
    pub(crate) fn key(self) -> Option<Key<'a>> {
        match self {
            Raw::Missing => None,
            Raw::Number(v) => Some(number_key(v)),
            Raw::Bool(b) => Some(bool_key(b)),
            Raw::Text(s) => Some(text_key(s)),
        }
    }

    /// The number this value reads as (the numeric columns' rule, for fitting and
    /// encoding alike): `Ok(None)` when missing; a finite number within range, or
    /// text [`parse_number`] accepts; [`WrongKind`] for anything else.
    #[inline]
    pub(crate) fn number(self) -> Result<Option<f64>, WrongKind> {
        match self {
            Raw::Missing => Ok(None),
            Raw::Number(v) if in_range(v) => Ok(Some(v)),
            Raw::Text(s) => parse_number(s).map(Some).ok_or(WrongKind),
            Raw::Number(_) | Raw::Bool(_) => Err(WrongKind),
        }
    }

    /// The boolean this value reads as (the boolean columns' rule, for fitting and
    /// encoding alike): `Ok(None)` when missing; a boolean, the numbers 0 and 1, or
    /// text [`parse_bool`] accepts; [`WrongKind`] for anything else.
    #[inline]
    pub(crate) fn boolean(self) -> Result<Option<bool>, WrongKind> {
        match self {
            Raw::Missing => Ok(None),
            Raw::Bool(b) => Ok(Some(b)),
            Raw::Number(v) if v == 0.0 || v == 1.0 => Ok(Some(v == 1.0)),
            Raw::Text(s) => parse_bool(s).map(Some).ok_or(WrongKind),
            Raw::Number(_) => Err(WrongKind),
        }
    }

    /// The value as it should appear in an error message.
    pub(crate) fn describe(self) -> String {
        match self {
            Raw::Missing => String::new(),
            Raw::Number(v) => number_key(v).as_str().to_owned(),
            Raw::Bool(b) => bool_key(b).as_str().to_owned(),
            Raw::Text(s) => super::error::snippet(s),
        }
    }
}

/// A value that does not read as the kind asked for ([`Raw::number`], [`Raw::boolean`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WrongKind;

/// A canonical category key, usually borrowed; numbers live on the stack.
pub(crate) enum Key<'a> {
    Borrowed(&'a str),
    Number(NumText),
    Owned(String),
}

impl Key<'_> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Number(n) => n.as_str(),
            Key::Owned(s) => s,
        }
    }
}

/// A formatted number in a fixed stack buffer.
pub(crate) struct NumText {
    buf: [u8; 40],
    len: usize,
}

impl NumText {
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for NumText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

pub(crate) fn bool_key(b: bool) -> Key<'static> {
    Key::Borrowed(if b { "true" } else { "false" })
}

pub(crate) fn number_key(v: f64) -> Key<'static> {
    if v == 0.0 {
        return Key::Borrowed("0");
    }
    let mut text = NumText {
        buf: [0; 40],
        len: 0,
    };
    let magnitude = v.abs();
    let written = if (1e-5..1e21).contains(&magnitude) {
        write!(text, "{v}")
    } else {
        write!(text, "{v:e}")
    };
    match written {
        Ok(()) => Key::Number(text),
        Err(_) => Key::Owned(if (1e-5..1e21).contains(&magnitude) {
            format!("{v}")
        } else {
            format!("{v:e}")
        }),
    }
}

pub(crate) fn text_key(s: &str) -> Key<'_> {
    let t = s.trim();
    if let Some(key) = integer_key(t) {
        return key;
    }
    if let Some(v) = parse_number(t) {
        return number_key(v);
    }
    if t.eq_ignore_ascii_case("true") {
        return bool_key(true);
    }
    if t.eq_ignore_ascii_case("false") {
        return bool_key(false);
    }
    Key::Borrowed(t)
}

fn integer_key(t: &str) -> Option<Key<'_>> {
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let stripped = digits.trim_start_matches('0');
    if stripped.is_empty() {
        return Some(Key::Borrowed("0"));
    }
    if !negative {
        return Some(Key::Borrowed(stripped));
    }
    if stripped.len() == digits.len() {
        return Some(Key::Borrowed(t));
    }
    Some(Key::Owned(format!("-{stripped}")))
}

/// 64-bit FNV-1a, the stable hash behind feature hashing and lookup tables.
#[derive(Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Hash-map state for lookups keyed by training-time strings.
pub(crate) type FnvBuild = BuildHasherDefault<Fnv>;

/// FNV-1a of a string's UTF-8 bytes.
pub(crate) fn fnv1a(s: &str) -> u64 {
    let mut h = Fnv::default();
    h.write(s.as_bytes());
    h.finish()
}

/// Adds a hashed bag of lowercase alphanumeric words of `text` into `out`
/// (one count per word, bucket = FNV-1a of the lowercase word mod `out.len()`).
pub(crate) fn add_words(text: &str, out: &mut [f32]) {
    let buckets = out.len() as u64;
    if buckets == 0 {
        return;
    }
    let mut h = Fnv::default();
    let mut in_word = false;
    let mut utf8 = [0u8; 4];
    for c in text.chars() {
        if c.is_alphanumeric() {
            for lower in c.to_lowercase() {
                h.write(lower.encode_utf8(&mut utf8).as_bytes());
            }
            in_word = true;
        } else if in_word {
            out[(h.finish() % buckets) as usize] += 1.0;
            h = Fnv::default();
            in_word = false;
        }
    }
    if in_word {
        out[(h.finish() % buckets) as usize] += 1.0;
    }
}

/// Scales `out` to unit L2 norm (left as is when all zero).
pub(crate) fn l2_normalize(out: &mut [f32]) {
    let norm = out.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        out.iter_mut().for_each(|v| *v /= norm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> String {
        text_key(s).as_str().to_owned()
    }

    #[test]
    fn missing_tokens_are_trimmed_and_case_insensitive() {
        for t in ["", "  ", "NULL", "na", " N/A ", "?", "NaN", "nan"] {
            assert!(is_missing_token(t), "{t:?}");
        }
        for t in ["none", "0", "-", "nana", "Private"] {
            assert!(!is_missing_token(t), "{t:?}");
        }
    }

    #[test]
    fn numbers_parse_trimmed_and_finite_only() {
        assert_eq!(parse_number(" 3.5 "), Some(3.5));
        assert_eq!(parse_number("+1e3"), Some(1000.0));
        assert_eq!(parse_number(".5"), Some(0.5));
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number("1e999"), None);
        assert_eq!(parse_number("1,000"), None);
        assert_eq!(parse_number("abc"), None);
    }

    #[test]
    fn raw_values_read_as_numbers_and_booleans() {
        assert_eq!(Raw::Missing.number(), Ok(None));
        assert_eq!(Raw::Number(2.5).number(), Ok(Some(2.5)));
        assert_eq!(Raw::Text(" 7 ").number(), Ok(Some(7.0)));
        assert_eq!(Raw::Number(f64::INFINITY).number(), Err(WrongKind));
        assert_eq!(Raw::Number(1e300).number(), Err(WrongKind));
        assert_eq!(Raw::Text("seven").number(), Err(WrongKind));
        assert_eq!(Raw::Bool(true).number(), Err(WrongKind));
        assert_eq!(Raw::Missing.boolean(), Ok(None));
        assert_eq!(Raw::Bool(false).boolean(), Ok(Some(false)));
        assert_eq!(Raw::Number(1.0).boolean(), Ok(Some(true)));
        assert_eq!(Raw::Text("No").boolean(), Ok(Some(false)));
        assert_eq!(Raw::Number(2.0).boolean(), Err(WrongKind));
        assert_eq!(Raw::Text("maybe").boolean(), Err(WrongKind));
    }

    #[test]
    fn category_keys_agree_across_representations() {
        assert_eq!(key("3"), "3");
        assert_eq!(key(" 3 "), "3");
        assert_eq!(key("3.0"), "3");
        assert_eq!(key("+3"), "3");
        assert_eq!(key("007"), "7");
        assert_eq!(key("-007"), "-7");
        assert_eq!(key("-0"), "0");
        assert_eq!(key("-12"), "-12");
        assert_eq!(number_key(3.0).as_str(), "3");
        assert_eq!(number_key(-0.0).as_str(), "0");
        assert_eq!(number_key(0.1).as_str(), "0.1");
        assert_eq!(key("0.10"), "0.1");
        assert_eq!(number_key(1e21).as_str(), "1e21");
        assert_eq!(number_key(1.5e-7).as_str(), "1.5e-7");
        assert_eq!(number_key(1e20).as_str(), key("100000000000000000000"));
        assert_eq!(key("12345678901234567890123"), "12345678901234567890123");
        assert_eq!(key("TRUE"), "true");
        assert_eq!(bool_key(false).as_str(), key("False"));
        assert_eq!(key(" Private "), "Private");
        assert_eq!(key("inf"), "inf");
    }

    #[test]
    fn fnv_is_the_published_function() {
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn words_are_hashed_lowercase() {
        let mut a = [0.0f32; 8];
        let mut b = [0.0f32; 8];
        add_words("Hello, WORLD! hello", &mut a);
        add_words("hello world hello", &mut b);
        assert_eq!(a, b);
        assert_eq!(a.iter().sum::<f32>(), 3.0);
        l2_normalize(&mut a);
        let norm: f32 = a.iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-6);
    }
}
