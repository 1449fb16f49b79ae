//! Each candidate's item inputs encoded once, not on every request.
//!
//! Reading ten attributes of 100 candidates by name (a map lookup and a
//! string to intern per value) cost several times the rule call itself.
//! An item's attributes and statistics change only when the feature store
//! reloads the item, so the host encodes them once per item and rule set:
//! the item becomes a row of the set's [`RowTable`], which holds the
//! values of the plan's `item` / `item-stat` inputs in columns (strings as
//! the table's ids), and the item keeps its row number in its
//! [`Derived`] tag. A request gathers its candidates' rows into its columns
//! and renumbers the few distinct strings into its own table.
//!
//! A tag is valid for one table (its key): a new rule set has a new table,
//! and a table that reaches [`MAX_TABLE_ROWS`], [`MAX_TABLE_SYMBOLS`] or
//! [`MAX_TABLE_TEXT_BYTES`] starts over under a new key, so each item is
//! encoded again on its next use and the table's memory stays bounded
//! however often items are reloaded and however many distinct strings the
//! catalogue holds.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
};

use recengine_rules_sdk::{
    Input, Scope, ValueType,
    builder::Item,
    wire::{Column, Datum, NONE, Symbols},
};

use super::InputPlan;
use crate::features::{Derived, ItemFeatures};

/// Most rows a table holds before it starts over.
pub const MAX_TABLE_ROWS: usize = 1 << 18;
/// Most distinct strings a table holds before it starts over.
pub const MAX_TABLE_SYMBOLS: usize = 1 << 18;
/// Most bytes of text a table holds before it starts over.
pub const MAX_TABLE_TEXT_BYTES: usize = 16 << 20;

/// A candidate whose `item` and `item-stat` inputs can be encoded once and
/// kept: the feature store's items, or a test's plain ones.
pub trait RowSource: Send + Sync {
    /// The value of an `item` or `item-stat` input (absent: `None`).
    fn datum(&self, input: &Input) -> Option<Datum>;
    /// Where this source's row is kept.
    fn slot(&self) -> &Derived;
}

/// A plain item with a place for its row: what benches and tests use where
/// the service uses its cached item features.
#[derive(Debug, Clone)]
pub struct PlainSource {
    pub item: Item,
    slot: Derived,
}

impl PlainSource {
    pub fn new(item: Item) -> Self {
        Self {
            item,
            slot: Derived::default(),
        }
    }
}

impl RowSource for ItemFeatures {
    fn datum(&self, input: &Input) -> Option<Datum> {
        match input.scope {
            Scope::ItemStat => super::gather::item_stat(self, &input.name),
            _ => super::gather::item_attribute(&self.item, &input.name),
        }
    }

    fn slot(&self) -> &Derived {
        &self.derived
    }
}

impl RowSource for PlainSource {
    fn datum(&self, input: &Input) -> Option<Datum> {
        match input.scope {
            Scope::ItemStat => self.item.stats.get(&input.name).cloned(),
            _ => self.item.attributes.get(&input.name).cloned(),
        }
    }

    fn slot(&self) -> &Derived {
        &self.slot
    }
}

/// Which column of its type holds an input.
#[derive(Debug, Clone, Copy)]
enum Place {
    Number(usize),
    Flag(usize),
    Text(usize),
    Strings(usize),
}

/// Rows of a rule set's item inputs, and which plan slots they cover.
pub struct RowTable {
    /// `(plan slot, input, place)` for every `item` / `item-stat` input.
    inputs: Vec<(usize, Input, Place)>,
    /// How many inputs of each type: numbers, flags, texts, strings.
    counts: [usize; 4],
    inner: Mutex<TableInner>,
}

/// A list of strings per row: row r's are `symbols[offsets[r]..offsets[r + 1]]`.
#[derive(Default)]
struct Lists {
    offsets: Vec<u32>,
    symbols: Vec<u32>,
}

struct TableInner {
    key: u32,
    rows: usize,
    numbers: Vec<Vec<f64>>,
    flags: Vec<Vec<u8>>,
    texts: Vec<Vec<u32>>,
    strings: Vec<Lists>,
    /// The table's strings, by id.
    text: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
    text_bytes: usize,
    /// By table id: the request-local id it was given, when `stamp`
    /// matches the current request's (no clearing between requests).
    scratch: Vec<(u32, u32)>,
    stamp: u32,
}

/// Keys are unique across the process's tables (until 2^32 of them), so a
/// tag kept from an older rule set or table is never taken for a current
/// one; 0 is no key.
static NEXT_KEY: AtomicU32 = AtomicU32::new(1);

impl TableInner {
    fn new(counts: [usize; 4]) -> Self {
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed).max(1);
        Self {
            key,
            rows: 0,
            numbers: vec![Vec::new(); counts[0]],
            flags: vec![Vec::new(); counts[1]],
            texts: vec![Vec::new(); counts[2]],
            strings: (0..counts[3])
                .map(|_| Lists {
                    offsets: vec![0],
                    symbols: Vec::new(),
                })
                .collect(),
            text: Vec::new(),
            ids: HashMap::new(),
            text_bytes: 0,
            scratch: Vec::new(),
            stamp: 0,
        }
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.text.len() as u32;
        let text: Arc<str> = s.into();
        self.text.push(text.clone());
        self.ids.insert(text, id);
        self.text_bytes += s.len();
        id
    }

    fn full(&self) -> bool {
        self.rows >= MAX_TABLE_ROWS
            || self.ids.len() >= MAX_TABLE_SYMBOLS
            || self.text_bytes >= MAX_TABLE_TEXT_BYTES
    }

    /// `source` as a new row (the same readings of each datum as
    /// `Interner::column`, so a row holds exactly what encoding the datum
    /// on each request would); returns its number.
    fn add(&mut self, inputs: &[(usize, Input, Place)], source: &dyn RowSource) -> usize {
        for (_, input, place) in inputs {
            let datum = source.datum(input);
            let datum = datum.as_ref();
            match *place {
                Place::Number(k) => self.numbers[k].push(
                    match input.value_type {
                        ValueType::Timestamp => datum.and_then(Datum::as_timestamp),
                        _ => datum.and_then(Datum::as_number),
                    }
                    .unwrap_or(f64::NAN),
                ),
                Place::Flag(k) => self.flags[k].push(match datum.and_then(Datum::as_flag) {
                    Some(false) => 0,
                    Some(true) => 1,
                    None => 2,
                }),
                Place::Text(k) => {
                    let id = match datum.and_then(Datum::as_text) {
                        Some(text) => self.intern(&text),
                        None => NONE,
                    };
                    self.texts[k].push(id);
                }
                Place::Strings(k) => {
                    if let Some(list) = datum.and_then(Datum::as_strings) {
                        for s in list {
                            let id = self.intern(&s);
                            self.strings[k].symbols.push(id);
                        }
                    }
                    let end = self.strings[k].symbols.len() as u32;
                    self.strings[k].offsets.push(end);
                }
            }
        }
        self.rows += 1;
        self.rows - 1
    }

    /// Renumbers table ids into the request's table, adding each string on
    /// its first use in this request. Table ids are distinct strings, so
    /// the request's table needs no lookup by text.
    fn renumber(&mut self, ids: &mut [u32], local: &mut Symbols) {
        if self.scratch.len() < self.text.len() {
            self.scratch.resize(self.text.len(), (0, 0));
        }
        let (stamp, text, scratch) = (self.stamp, &self.text, &mut self.scratch);
        for id in ids {
            let Some(entry) = scratch.get_mut(*id as usize) else {
                *id = NONE;
                continue;
            };
            if entry.0 != stamp {
                let s = text.get(*id as usize).map_or("", |t| t);
                *entry = (stamp, local.push(s));
            }
            *id = entry.1;
        }
    }
}

impl std::fmt::Debug for RowTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowTable")
            .field("inputs", &self.inputs.len())
            .finish()
    }
}

impl Default for RowTable {
    fn default() -> Self {
        Self::new(&InputPlan::default())
    }
}

impl RowTable {
    /// A table for `plan`'s `item` and `item-stat` inputs.
    pub fn new(plan: &InputPlan) -> Self {
        let mut counts = [0usize; 4];
        let inputs = plan
            .inputs()
            .iter()
            .enumerate()
            .filter(|(_, i)| matches!(i.scope, Scope::Item | Scope::ItemStat))
            .map(|(slot, i)| {
                let kind = match i.value_type {
                    ValueType::Number | ValueType::Timestamp | ValueType::Ids => 0,
                    ValueType::Flag => 1,
                    ValueType::Text => 2,
                    ValueType::Strings => 3,
                };
                let at = counts[kind];
                counts[kind] += 1;
                let place = [Place::Number, Place::Flag, Place::Text, Place::Strings][kind](at);
                (slot, i.clone(), place)
            })
            .collect();
        Self {
            inputs,
            counts,
            inner: Mutex::new(TableInner::new(counts)),
        }
    }

    /// The columns rows cover, by plan slot (`None` for the others), for
    /// `sources` in order; their strings are added to `local`, the
    /// request's table, which must hold nothing yet. Sources without a
    /// row in this table get one.
    pub fn columns(
        &self,
        sources: &[Arc<dyn RowSource>],
        plan_len: usize,
        local: &mut Symbols,
    ) -> Vec<Option<Column>> {
        let mut out: Vec<Option<Column>> = (0..plan_len).map(|_| None).collect();
        if self.inputs.is_empty() {
            return out;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // Room for every distinct string of the table's text columns, at
        // most (the request's table grows once, not string by string).
        local.ends.reserve(inner.text.len().min(sources.len() * 4));
        let key = u64::from(inner.key);
        let rows: Vec<usize> = sources
            .iter()
            .map(|source| {
                let tag = source.slot().load();
                if tag >> 32 == key {
                    return (tag & u64::from(u32::MAX)) as usize;
                }
                let row = inner.add(&self.inputs, &**source);
                source.slot().store(key << 32 | row as u64);
                row
            })
            .collect();
        inner.stamp = inner.stamp.wrapping_add(1);
        if inner.stamp == 0 {
            // Every stamp once: forget them all rather than mistake an old
            // one for this request's.
            inner.scratch.iter_mut().for_each(|e| *e = (0, 0));
            inner.stamp = 1;
        }
        for (slot, _, place) in &self.inputs {
            let column = match *place {
                Place::Number(k) => {
                    let values = &inner.numbers[k];
                    Column::Numbers(rows.iter().map(|&r| values[r]).collect())
                }
                Place::Flag(k) => {
                    let values = &inner.flags[k];
                    Column::Flags(rows.iter().map(|&r| values[r]).collect())
                }
                Place::Text(k) => {
                    let values = &inner.texts[k];
                    let mut ids: Vec<u32> = rows.iter().map(|&r| values[r]).collect();
                    inner.renumber(&mut ids, local);
                    Column::Texts(ids)
                }
                Place::Strings(k) => {
                    let lists = &inner.strings[k];
                    let mut offsets = Vec::with_capacity(rows.len() + 1);
                    offsets.push(0);
                    let mut symbols = Vec::with_capacity(
                        rows.iter()
                            .map(|&r| (lists.offsets[r + 1] - lists.offsets[r]) as usize)
                            .sum(),
                    );
                    for &r in &rows {
                        let (a, b) = (lists.offsets[r] as usize, lists.offsets[r + 1] as usize);
                        symbols.extend_from_slice(&lists.symbols[a..b]);
                        offsets.push(symbols.len() as u32);
                    }
                    inner.renumber(&mut symbols, local);
                    Column::Strings { offsets, symbols }
                }
            };
            out[*slot] = Some(column);
        }
        if inner.full() {
            // Start over: items tagged under the old key get new rows.
            *inner = TableInner::new(self.counts);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use recengine_rules_sdk::{input, testing::RequestBuilder};

    use super::*;
    use crate::rules::input::{Subject, encode::Encoded};

    fn plan() -> InputPlan {
        let mut plan = InputPlan::default();
        plan.add(&[
            input::item_number("price"),
            input::item_text("brand"),
            input::context_text("country"),
            input::item_strings("tags"),
            input::item_flag("premium"),
            input::item_timestamp("promo_end"),
            input::item_text("origin"),
        ]);
        plan
    }

    fn subject(brand_of_2: &str) -> Subject {
        RequestBuilder::new()
            .context(Some("DE"), None, Some(10), false, 0, &[])
            .item(
                Item::new(1, 0.9)
                    .attr("price", "12.5")
                    .attr("brand", "acme")
                    .attr("premium", true)
                    .attr("origin", "DE")
                    .attr("promo_end", "2026-12-31")
                    .tags(&["eco", "gift"]),
            )
            .item(Item::new(2, 0.8).attr("brand", brand_of_2).tags(&["eco"]))
            .item(Item::new(3, 0.7).attr("price", 3.0).attr("premium", "no"))
            .build()
    }

    fn sources(subject: &Subject) -> Vec<Arc<dyn RowSource>> {
        subject
            .items
            .iter()
            .map(|i| Arc::new(PlainSource::new(i.clone())) as Arc<dyn RowSource>)
            .collect()
    }

    fn bare(subject: &Subject) -> Subject {
        subject.with_items(
            subject
                .items
                .iter()
                .map(|i| Item::new(i.id, i.score))
                .collect(),
        )
    }

    /// Every slot's request, in the plan's order, as one rule declaring all
    /// of them would receive it.
    fn request_of(
        encoded: &mut Encoded,
        plan: &InputPlan,
        n: usize,
    ) -> crate::rules::bindings::v0_2::recengine::rules::types::Request {
        let slots: Vec<usize> = (0..plan.inputs().len()).collect();
        let list = List::new((1..=n as i64).collect(), vec![0.0; n]);
        encoded.request(&slots, None, &list, &[])
    }

    use recengine_rules_sdk::contract::List;

    fn texts(req: &crate::rules::bindings::v0_2::recengine::rules::types::Request) -> Vec<String> {
        let symbols = Symbols {
            text: req.symbol_text.clone(),
            ends: req.symbol_ends.clone(),
        };
        // Each column's values as text, so two encodings compare whatever
        // ids they chose.
        use crate::rules::bindings::v0_2::recengine::rules::types as wit;
        let name = |id: u32| symbols.get(id).unwrap_or("<none>").to_string();
        req.columns
            .iter()
            .map(|c| match c {
                wit::Column::Numbers(v) => format!("{v:?}"),
                wit::Column::Flags(v) => format!("{v:?}"),
                wit::Column::Texts(v) => v.iter().map(|&i| name(i)).collect::<Vec<_>>().join(","),
                wit::Column::Strings(l) => format!(
                    "{:?} {}",
                    l.offsets,
                    l.symbols
                        .iter()
                        .map(|&i| name(i))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            })
            .chain(req.values.iter().map(|v| match v {
                wit::Value::Text(id) => name(*id),
                other => format!("{other:?}"),
            }))
            .collect()
    }

    #[test]
    fn rows_encode_what_the_subject_encodes() {
        let plan = plan();
        let table = RowTable::new(&plan);
        let full = subject("zeta");
        let kept = sources(&full);
        let mut direct = Encoded::new(&full, &plan, None);
        let expected = texts(&request_of(&mut direct, &plan, 3));
        // The first request builds the rows, the second reads them.
        for _ in 0..2 {
            let mut from_rows = Encoded::new(&bare(&full), &plan, Some((&table, &kept)));
            assert_eq!(texts(&request_of(&mut from_rows, &plan, 3)), expected);
        }
        assert!(
            expected.contains(&"acme,zeta,<none>".to_string()),
            "{expected:?}"
        );
        assert!(
            expected.contains(&"DE".to_string()),
            "the context's text: {expected:?}"
        );
        assert_eq!(
            table.inner.lock().unwrap().rows,
            3,
            "rows were kept, not rebuilt"
        );
    }

    #[test]
    fn a_reloaded_item_or_a_new_rule_set_is_encoded_again() {
        let plan = plan();
        let table = RowTable::new(&plan);
        let kept = sources(&subject("zeta"));
        let _ = Encoded::new(&bare(&subject("zeta")), &plan, Some((&table, &kept)));
        // The feature store reloads item 2 with another brand: a new source.
        let reloaded = sources(&subject("orbis"));
        let mut enc = Encoded::new(&bare(&subject("orbis")), &plan, Some((&table, &reloaded)));
        let got = texts(&request_of(&mut enc, &plan, 3));
        assert!(got.contains(&"acme,orbis,<none>".to_string()), "{got:?}");
        // Another rule set's table does not trust this one's tags.
        let other = RowTable::new(&plan);
        let mut enc = Encoded::new(&bare(&subject("zeta")), &plan, Some((&other, &kept)));
        let got = texts(&request_of(&mut enc, &plan, 3));
        assert!(got.contains(&"acme,zeta,<none>".to_string()), "{got:?}");
        assert_eq!(other.inner.lock().unwrap().rows, 3);
    }

    #[test]
    fn a_request_table_holds_only_its_candidates_strings() {
        let plan = plan();
        let table = RowTable::new(&plan);
        let many = sources(&subject("zeta"));
        let _ = Encoded::new(&bare(&subject("zeta")), &plan, Some((&table, &many)));
        // Only item 3 now: no brand, tag or origin string of items 1 and 2.
        let one = subject("zeta").with_items(vec![subject("zeta").items[2].clone()]);
        let mut enc = Encoded::new(&bare(&one), &plan, Some((&table, &many[2..])));
        let req = request_of(&mut enc, &plan, 1);
        assert_eq!(req.symbol_text, "DE", "the context's country alone");
    }
}
