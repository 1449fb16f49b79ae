//! The encoding of `wit/rules.wit`: interned strings, typed columns, and
//! the request as it crosses into a rule. Rule authors never touch it (they
//! read [`crate::Request`]); the host and the test harness build requests
//! with [`Interner`] and [`Datum`], so both share one encoding.

use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
};

use crate::{ParamValue, ValueType};

/// "No symbol": an absent text.
pub const NONE: u32 = u32::MAX;

/// The strings of a request, interned: one text and the end offset of each.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Symbols {
    /// Every symbol, concatenated.
    pub text: String,
    /// Where each symbol ends in `text` (bytes).
    pub ends: Vec<u32>,
}

impl Symbols {
    /// How many symbols.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no symbols.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Symbol `id`'s text; `None` for [`NONE`] or offsets that do not fit
    /// (they come from outside and never panic).
    pub fn get(&self, id: u32) -> Option<&str> {
        let i = id as usize;
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..end)
    }

    /// Appends `s` as a new symbol (even if it is already there: see
    /// [`Interner`]) and returns its id.
    pub fn push(&mut self, s: &str) -> u32 {
        self.text.push_str(s);
        self.ends.push(self.text.len() as u32);
        (self.ends.len() - 1) as u32
    }

    /// Every symbol's text, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len() as u32).filter_map(|i| self.get(i))
    }
}

/// One per-candidate input: position i is candidate i.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// NaN where absent.
    Numbers(Vec<f64>),
    /// 0 = false, 1 = true, 2 = absent.
    Flags(Vec<u8>),
    /// [`NONE`] where absent.
    Texts(Vec<u32>),
    /// Candidate i's are `symbols[offsets[i]..offsets[i + 1]]`.
    Strings {
        /// n + 1 entries: where each candidate's symbols start, then the
        /// end of the last.
        offsets: Vec<u32>,
        /// Every candidate's symbols, concatenated.
        symbols: Vec<u32>,
    },
}

fn span<'a>(offsets: &[u32], values: &'a [u32], i: usize) -> &'a [u32] {
    match (offsets.get(i), offsets.get(i + 1)) {
        (Some(&a), Some(&b)) if a <= b => values.get(a as usize..b as usize).unwrap_or(&[]),
        _ => &[],
    }
}

impl Column {
    /// An empty column of the type an input is read as.
    pub fn empty(value_type: ValueType) -> Self {
        match value_type {
            ValueType::Number | ValueType::Timestamp | ValueType::Ids => {
                Column::Numbers(Vec::new())
            }
            ValueType::Flag => Column::Flags(Vec::new()),
            ValueType::Text => Column::Texts(Vec::new()),
            ValueType::Strings => Column::Strings {
                offsets: vec![0],
                symbols: Vec::new(),
            },
        }
    }

    /// How many candidates the column covers.
    pub fn len(&self) -> usize {
        match self {
            Column::Numbers(v) => v.len(),
            Column::Flags(v) => v.len(),
            Column::Texts(v) => v.len(),
            Column::Strings { offsets, .. } => offsets.len().saturating_sub(1),
        }
    }

    /// Whether the column covers no candidate.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Candidate `i`'s strings (empty when out of range).
    pub fn strings_at(&self, i: usize) -> &[u32] {
        match self {
            Column::Strings { offsets, symbols } => span(offsets, symbols, i),
            _ => &[],
        }
    }

    /// The rows `rows` (positions into this column), in that order: how the
    /// host hands each rule the list as it stands after the rules before.
    pub fn pick(&self, rows: &[usize]) -> Column {
        fn pick<T: Copy>(v: &[T], rows: &[usize]) -> Vec<T> {
            rows.iter().map(|&i| v[i]).collect()
        }
        match self {
            Column::Numbers(v) => Column::Numbers(pick(v, rows)),
            Column::Flags(v) => Column::Flags(pick(v, rows)),
            Column::Texts(v) => Column::Texts(pick(v, rows)),
            Column::Strings { offsets, symbols } => {
                let mut new_offsets = Vec::with_capacity(rows.len() + 1);
                let mut new_symbols = Vec::new();
                new_offsets.push(0);
                for &i in rows {
                    new_symbols.extend_from_slice(span(offsets, symbols, i));
                    new_offsets.push(new_symbols.len() as u32);
                }
                Column::Strings {
                    offsets: new_offsets,
                    symbols: new_symbols,
                }
            }
        }
    }
}

/// One per-request input.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Not there, or not readable as the declared type.
    Absent,
    /// A number or a timestamp (unix ms).
    Number(f64),
    /// A flag.
    Flag(bool),
    /// A text, as its symbol.
    Text(u32),
    /// A list of strings, as symbols.
    Strings(Vec<u32>),
    /// Item ids, ascending, no duplicates.
    Ids(Vec<i64>),
}

/// A request as it crosses into a rule (the WIT `request`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WireRequest {
    /// Every string of the request, interned.
    pub symbols: Symbols,
    /// The id of the user the list is for.
    pub user_id: i64,
    /// The host's clock, unix milliseconds.
    pub now_ms: i64,
    /// The candidates' item ids, best first.
    pub ids: Vec<i64>,
    /// Their scores, in the same order.
    pub scores: Vec<f64>,
    /// The rule's per-candidate inputs, in declaration order.
    pub columns: Vec<Column>,
    /// The rule's per-request inputs, in declaration order.
    pub values: Vec<Value>,
    /// The rule's parameter values, in declaration order.
    pub params: Vec<ParamValue>,
    /// Item ids the caller asked not to be shown, ascending.
    pub exclude_ids: Vec<i64>,
}

/// A plain value, before encoding: what a test writes and what the host
/// reads from its data.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    /// A number (a JSON number).
    Number(f64),
    /// A boolean (a JSON `true` / `false`).
    Flag(bool),
    /// A string.
    Text(String),
    /// A list of strings.
    Strings(Vec<String>),
    /// A list of item ids (a JSON list of whole numbers).
    Ids(Vec<i64>),
}

impl From<f64> for Datum {
    fn from(v: f64) -> Self {
        Datum::Number(v)
    }
}

impl From<i64> for Datum {
    fn from(v: i64) -> Self {
        Datum::Number(v as f64)
    }
}

impl From<bool> for Datum {
    fn from(v: bool) -> Self {
        Datum::Flag(v)
    }
}

impl From<&str> for Datum {
    fn from(v: &str) -> Self {
        Datum::Text(v.into())
    }
}

impl From<String> for Datum {
    fn from(v: String) -> Self {
        Datum::Text(v)
    }
}

impl From<&[&str]> for Datum {
    fn from(v: &[&str]) -> Self {
        Datum::Strings(v.iter().map(|s| s.to_string()).collect())
    }
}

impl<const N: usize> From<[&str; N]> for Datum {
    fn from(v: [&str; N]) -> Self {
        Datum::Strings(v.iter().map(|s| s.to_string()).collect())
    }
}

impl From<&[i64]> for Datum {
    fn from(v: &[i64]) -> Self {
        Datum::Ids(v.to_vec())
    }
}

impl Datum {
    /// As a number: numbers, and text that parses as one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Datum::Number(n) if n.is_finite() => Some(*n),
            Datum::Text(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
            _ => None,
        }
    }

    /// As a flag: flags, and the text `true` / `false`.
    pub fn as_flag(&self) -> Option<bool> {
        match self {
            Datum::Flag(b) => Some(*b),
            Datum::Text(s) => match s.as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// As text: text, and numbers written in decimal (so an id stored as a
    /// number compares with one sent as text).
    pub fn as_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Datum::Text(s) => Some(s.as_str().into()),
            Datum::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => {
                Some(format!("{}", *n as i64).into())
            }
            Datum::Number(n) if n.is_finite() => Some(n.to_string().into()),
            _ => None,
        }
    }

    /// As a list of strings: a list, one text as a list of one, or whole
    /// numbers (ids) as their decimal text.
    pub fn as_strings(&self) -> Option<Vec<std::borrow::Cow<'_, str>>> {
        match self {
            Datum::Strings(v) => Some(v.iter().map(|s| s.as_str().into()).collect()),
            Datum::Text(s) => Some(vec![s.as_str().into()]),
            Datum::Ids(v) => Some(v.iter().map(|id| id.to_string().into()).collect()),
            _ => None,
        }
    }

    /// As ids: ascending, no duplicates.
    pub fn as_ids(&self) -> Option<Vec<i64>> {
        match self {
            Datum::Ids(v) => {
                let mut v = v.clone();
                v.sort_unstable();
                v.dedup();
                Some(v)
            }
            _ => None,
        }
    }

    /// As a timestamp (unix ms): a number, or an RFC 3339 or `YYYY-MM-DD`
    /// string (the end of that day, UTC).
    pub fn as_timestamp(&self) -> Option<f64> {
        match self {
            Datum::Number(n) if n.is_finite() => Some(*n),
            Datum::Text(s) => parse_date_ms(s).map(|ms| ms as f64),
            _ => None,
        }
    }
}

/// Interns strings into one [`Symbols`] table: equal strings share one id,
/// so rules compare ids, not text.
#[derive(Debug, Default)]
pub struct Interner {
    symbols: Symbols,
    index: HashMap<String, u32, BuildHasherDefault<FxHasher>>,
}

/// The Fx hash (rustc's): a multiply and a rotate per word. Interning hashes
/// every string of a request; the keys are the request's own data, held
/// only for the request, so a keyed hash buys nothing here.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Interner {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The symbol of `s`, added to the table the first time.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.index.get(s) {
            return id;
        }
        let id = self.symbols.push(s);
        self.index.insert(s.to_string(), id);
        id
    }

    /// Encodes one value per candidate (`None`: absent) as the column of
    /// `value_type`.
    pub fn column<'a>(
        &mut self,
        value_type: ValueType,
        values: impl IntoIterator<Item = Option<&'a Datum>>,
    ) -> Column {
        let mut column = Column::empty(value_type);
        for datum in values {
            match &mut column {
                Column::Numbers(v) => {
                    let n = datum.and_then(|d| match value_type {
                        ValueType::Timestamp => d.as_timestamp(),
                        _ => d.as_number(),
                    });
                    v.push(n.unwrap_or(f64::NAN));
                }
                Column::Flags(v) => v.push(match datum.and_then(Datum::as_flag) {
                    Some(false) => 0,
                    Some(true) => 1,
                    None => 2,
                }),
                Column::Texts(v) => {
                    let id = match datum.and_then(Datum::as_text) {
                        Some(text) => self.intern(&text),
                        None => NONE,
                    };
                    v.push(id);
                }
                Column::Strings { offsets, symbols } => {
                    if let Some(list) = datum.and_then(Datum::as_strings) {
                        for s in list {
                            let id = self.intern(&s);
                            symbols.push(id);
                        }
                    }
                    offsets.push(symbols.len() as u32);
                }
            }
        }
        column
    }

    /// Encodes one per-request value as `value_type`.
    pub fn value(&mut self, value_type: ValueType, datum: Option<&Datum>) -> Value {
        let Some(d) = datum else {
            return Value::Absent;
        };
        let value = match value_type {
            ValueType::Number => d.as_number().map(Value::Number),
            ValueType::Timestamp => d.as_timestamp().map(Value::Number),
            ValueType::Flag => d.as_flag().map(Value::Flag),
            ValueType::Text => d.as_text().map(|t| Value::Text(self.intern(&t))),
            ValueType::Strings => d
                .as_strings()
                .map(|list| Value::Strings(list.into_iter().map(|s| self.intern(&s)).collect())),
            ValueType::Ids => d.as_ids().map(Value::Ids),
        };
        value.unwrap_or(Value::Absent)
    }

    /// The table, with every string interned so far.
    pub fn finish(self) -> Symbols {
        self.symbols
    }
}

/// RFC 3339 (`2026-12-06T10:00:00Z`, any offset) or a plain date (the end
/// of that day, UTC), as unix milliseconds.
pub fn parse_date_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let date = s.get(..10)?;
    let (y, m, d) = (
        date.get(..4)?.parse::<i64>().ok()?,
        date.get(5..7)?.parse::<i64>().ok()?,
        date.get(8..10)?.parse::<i64>().ok()?,
    );
    if date.as_bytes()[4] != b'-' || date.as_bytes()[7] != b'-' {
        return None;
    }
    if !(1..=12).contains(&m) || !(1..=days_in_month(y, m)).contains(&d) {
        return None;
    }
    let day_ms = days_from_civil(y, m, d) * 86_400_000;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(day_ms + 86_399_999);
    }
    // `THH:MM:SS[.fff](Z|±HH:MM)`
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let (h, mi, sec) = (
        rest.get(..2)?.parse::<i64>().ok()?,
        rest.get(3..5)?.parse::<i64>().ok()?,
        rest.get(6..8)?.parse::<i64>().ok()?,
    );
    if rest.as_bytes().get(2) != Some(&b':') || rest.as_bytes().get(5) != Some(&b':') {
        return None;
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut tail = &rest[8..];
    let mut millis = 0;
    if let Some(frac) = tail.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let first3: String = frac[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        millis = first3.parse::<i64>().ok()?;
        tail = &frac[digits..];
    }
    let offset_ms = match tail {
        "Z" | "z" => 0,
        _ => {
            let sign = match tail.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if tail.len() != 6 || tail.as_bytes()[3] != b':' {
                return None;
            }
            let oh = tail[1..3].parse::<i64>().ok()?;
            let om = tail[4..6].parse::<i64>().ok()?;
            sign * (oh * 60 + om) * 60_000
        }
    };
    Some(day_ms + ((h * 60 + mi) * 60 + sec) * 1000 + millis - offset_ms)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_round_trip_through_one_text() {
        let mut s = Symbols::default();
        assert_eq!(s.push("books"), 0);
        assert_eq!(s.push(""), 1);
        assert_eq!(s.push("sci-fi"), 2);
        assert_eq!(s.get(0), Some("books"));
        assert_eq!(s.get(1), Some(""));
        assert_eq!(s.get(2), Some("sci-fi"));
        assert_eq!(s.get(3), None);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec!["books", "", "sci-fi"]);
        // Offsets from an untrusted source never panic.
        let broken = Symbols {
            text: "ab".into(),
            ends: vec![5, 1],
        };
        assert_eq!(broken.get(0), None);
        assert_eq!(broken.get(1), None);
    }

    #[test]
    fn dates_parse_in_both_forms() {
        assert_eq!(parse_date_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_date_ms("1970-01-01T01:00:01.5+01:00"), Some(1500));
        assert_eq!(parse_date_ms("1970-01-01"), Some(86_399_999));
        assert_eq!(parse_date_ms("2024-02-29"), Some(1_709_251_199_999));
        assert_eq!(parse_date_ms("2023-02-29"), None);
        assert_eq!(parse_date_ms("soon"), None);
        assert_eq!(parse_date_ms("2024-01-01T25:00:00Z"), None);
    }

    #[test]
    fn columns_encode_absent_values_as_null() {
        let mut i = Interner::new();
        let price = Datum::Number(9.5);
        let text = Datum::Text("12".into());
        let col = i.column(ValueType::Number, [Some(&price), None, Some(&text)]);
        let Column::Numbers(v) = col else { panic!() };
        assert_eq!(v[0], 9.5);
        assert!(v[1].is_nan());
        assert_eq!(v[2], 12.0);
        let tags = Datum::Strings(vec!["a".into(), "b".into()]);
        let col = i.column(ValueType::Strings, [Some(&tags), None, Some(&price)]);
        assert_eq!(col.strings_at(0).len(), 2);
        assert!(col.strings_at(1).is_empty());
        assert!(col.strings_at(2).is_empty());
        assert_eq!(col.pick(&[2, 0]).strings_at(1).len(), 2);
    }
}
