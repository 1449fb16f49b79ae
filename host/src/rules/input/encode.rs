//! A request's subject encoded once for the whole rule set (one symbol
//! table, one column per declared per-candidate input, one value per
//! per-request input), then cut per rule: its own inputs, in its order, for
//! the candidates still in the list.

use recengine_rules_sdk::{
    Input, ParamValue, Scope, ValueType,
    contract::List,
    wire::{Column, Datum, Interner, NONE, Symbols, Value},
};

use std::sync::Arc;

use super::{
    InputPlan, Subject,
    rows::{RowSource, RowTable},
};
use crate::rules::bindings::v0_2::recengine::rules::types as wit;

/// The union of the active rules' inputs, encoded.
#[derive(Debug, Clone)]
pub struct Encoded {
    symbols: Symbols,
    /// How many candidates the columns cover.
    candidates: usize,
    /// The plan slots whose values are strings (symbols).
    symbol_slots: Vec<usize>,
    /// By plan slot: a column for per-candidate inputs.
    columns: Vec<Option<Column>>,
    /// By plan slot: a value for per-request inputs.
    values: Vec<Value>,
    user_id: i64,
    now_ms: i64,
    exclude_ids: Vec<i64>,
}

/// Where an input's value for one item lives in a subject.
fn item_datum<'a>(
    item: &'a recengine_rules_sdk::builder::Item,
    input: &Input,
) -> Option<&'a Datum> {
    match input.scope {
        Scope::ItemStat => item.stats.get(&input.name),
        Scope::UserItem => item.user_item.get(&input.name),
        _ => item.attributes.get(&input.name),
    }
}

fn request_datum<'a>(subject: &'a Subject, input: &Input) -> Option<&'a Datum> {
    match input.scope {
        Scope::User => subject.user.get(&input.name),
        Scope::UserStat => subject.user_stats.get(&input.name),
        _ => subject.context.get(&input.name),
    }
}

/// Where the candidates' `item` and `item-stat` inputs come from, when not
/// from the subject's items: their kept rows (same order as the items).
pub type Rows<'a> = (&'a RowTable, &'a [Arc<dyn RowSource>]);

impl Encoded {
    /// `subject` encoded for `plan`; with `rows`, the candidates' `item` and
    /// `item-stat` inputs are read from them (the subject's items then need
    /// only their ids, scores and `user-item` inputs).
    pub fn new(subject: &Subject, plan: &InputPlan, rows: Option<Rows<'_>>) -> Self {
        debug_assert!(rows.is_none_or(|(_, sources)| sources.len() == subject.items.len()));
        let mut row_symbols = Symbols::default();
        let mut from_rows = match rows {
            Some((table, sources)) => table.columns(sources, plan.inputs().len(), &mut row_symbols),
            None => Vec::new(),
        };
        // The slots whose values are strings; those rows did not cover
        // intern theirs, and must find the rows' strings: those seed the
        // interner first, in order (distinct already, they keep their ids).
        let symbol_slots: Vec<usize> = (0..plan.inputs().len())
            .filter(|&slot| holds_symbols(&plan.inputs()[slot]))
            .collect();
        let others_intern = symbol_slots
            .iter()
            .any(|&slot| from_rows.get(slot).is_none_or(Option::is_none));
        let mut interner = Interner::new();
        if others_intern {
            for text in row_symbols.iter() {
                interner.intern(text);
            }
        }
        let mut columns = Vec::with_capacity(plan.inputs().len());
        let mut values = Vec::with_capacity(plan.inputs().len());
        for (slot, input) in plan.inputs().iter().enumerate() {
            if let Some(column) = from_rows.get_mut(slot).and_then(Option::take) {
                columns.push(Some(column));
                values.push(Value::Absent);
            } else if input.scope.per_candidate() {
                let cells = subject.items.iter().map(|item| item_datum(item, input));
                columns.push(Some(interner.column(input.value_type, cells)));
                values.push(Value::Absent);
            } else {
                columns.push(None);
                values.push(interner.value(input.value_type, request_datum(subject, input)));
            }
        }
        let mut exclude_ids = subject.exclude_ids.clone();
        exclude_ids.sort_unstable();
        exclude_ids.dedup();
        Self {
            symbols: if others_intern {
                interner.finish()
            } else {
                row_symbols
            },
            symbol_slots,
            candidates: subject.items.len(),
            columns,
            values,
            user_id: subject.user_id,
            now_ms: subject.now_ms,
            exclude_ids,
        }
    }

    /// The request one rule receives: the inputs at `slots` (its declared
    /// ones, in its order) for the candidates of `list`. Where `last` says
    /// no later request reads a slot, its column is moved out, not copied.
    pub fn request(
        &mut self,
        slots: &[usize],
        last: Option<&[bool]>,
        list: &List,
        params: &[ParamValue],
    ) -> wit::Request {
        let identity =
            list.len() == self.candidates && list.rows.iter().enumerate().all(|(i, &r)| i == r);
        let mut columns = Vec::new();
        let mut values = Vec::new();
        // Whether no later request reads any of the strings (every slot
        // holding them is read here for the last time).
        let mut last_symbols = true;
        for (k, &slot) in slots.iter().enumerate() {
            let take = last.is_some_and(|l| l.get(k) == Some(&true));
            if !take && self.symbol_slots.contains(&slot) {
                last_symbols = false;
            }
            match &mut self.columns[slot] {
                Some(column) if identity && take => columns.push(column_to_wit(std::mem::replace(
                    column,
                    Column::Flags(Vec::new()),
                ))),
                Some(column) if identity => columns.push(column_to_wit(column.clone())),
                Some(column) => columns.push(column_to_wit(column.pick(&list.rows))),
                None => values.push(value_to_wit(&self.values[slot])),
            }
        }
        // Each rule gets the strings of its own inputs only: nothing another
        // rule declared (a user's preference, say), and none of a candidate
        // dropped before, reaches it. A rule that declares every input
        // holding strings, over the whole list, uses the whole table.
        let whole = identity && self.symbol_slots.iter().all(|s| slots.contains(s));
        let (symbol_text, symbol_ends) = if whole && last_symbols {
            let symbols = std::mem::take(&mut self.symbols);
            (symbols.text, symbols.ends)
        } else if whole {
            (self.symbols.text.clone(), self.symbols.ends.clone())
        } else {
            own_symbols(&self.symbols, &mut columns, &mut values)
        };
        wit::Request {
            symbol_text,
            symbol_ends,
            user_id: self.user_id,
            now_ms: self.now_ms,
            ids: list.ids.clone(),
            scores: list.scores.clone(),
            columns,
            values,
            params: params.iter().map(param_to_wit).collect(),
            exclude_ids: self.exclude_ids.clone(),
        }
    }
}

/// Whether an input's values are strings (interned as symbols).
fn holds_symbols(input: &Input) -> bool {
    matches!(input.value_type, ValueType::Text | ValueType::Strings)
}

/// Renumbers the symbols `columns` and `values` use into a table of their
/// own (in order of first use) and returns it.
fn own_symbols(
    symbols: &Symbols,
    columns: &mut [wit::Column],
    values: &mut [wit::Value],
) -> (String, Vec<u32>) {
    let mut renumbered = vec![NONE; symbols.len()];
    let mut text = String::new();
    let mut ends = Vec::new();
    let mut own = |id: &mut u32| {
        let Some(slot) = renumbered.get_mut(*id as usize) else {
            *id = NONE;
            return;
        };
        if *slot == NONE {
            text.push_str(symbols.get(*id).unwrap_or(""));
            ends.push(text.len() as u32);
            *slot = (ends.len() - 1) as u32;
        }
        *id = *slot;
    };
    for column in columns {
        match column {
            wit::Column::Texts(ids) => ids.iter_mut().for_each(&mut own),
            wit::Column::Strings(lists) => lists.symbols.iter_mut().for_each(&mut own),
            wit::Column::Numbers(_) | wit::Column::Flags(_) => {}
        }
    }
    for value in values {
        match value {
            wit::Value::Text(id) => own(id),
            wit::Value::Strings(ids) => ids.iter_mut().for_each(&mut own),
            _ => {}
        }
    }
    (text, ends)
}

fn column_to_wit(column: Column) -> wit::Column {
    match column {
        Column::Numbers(v) => wit::Column::Numbers(v),
        Column::Flags(v) => wit::Column::Flags(v),
        Column::Texts(v) => wit::Column::Texts(v),
        Column::Strings { offsets, symbols } => {
            wit::Column::Strings(wit::StringLists { offsets, symbols })
        }
    }
}

fn value_to_wit(value: &Value) -> wit::Value {
    match value {
        Value::Absent => wit::Value::Absent,
        Value::Number(n) => wit::Value::Number(*n),
        Value::Flag(b) => wit::Value::Flag(*b),
        Value::Text(s) => wit::Value::Text(*s),
        Value::Strings(v) => wit::Value::Strings(v.clone()),
        Value::Ids(v) => wit::Value::Ids(v.clone()),
    }
}

fn param_to_wit(value: &ParamValue) -> wit::ParamValue {
    match value {
        ParamValue::Number(n) => wit::ParamValue::Number(*n),
        ParamValue::Flag(b) => wit::ParamValue::Flag(*b),
        ParamValue::Text(s) => wit::ParamValue::Text(s.clone()),
        ParamValue::Strings(v) => wit::ParamValue::Strings(v.clone()),
    }
}

#[cfg(test)]
mod tests {
    use recengine_rules_sdk::{
        input,
        testing::{Item, RequestBuilder},
    };

    use super::*;

    #[test]
    fn each_rule_gets_its_own_inputs_for_the_rows_left() {
        let subject = RequestBuilder::new()
            .user_attr("plan", "gold")
            .context_value("budget", "40")
            .item(Item::new(1, 0.9).attr("price", 50.0).attr("brand", "acme"))
            .item(Item::new(2, 0.8).attr("brand", "zeta"))
            .item(Item::new(3, 0.7).attr("price", 10.0))
            .build();
        let mut plan = InputPlan::default();
        let a = plan.add(&[input::item_number("price"), input::context_number("budget")]);
        let b = plan.add(&[input::item_text("brand"), input::item_number("price")]);
        assert_eq!(b[1], a[0], "a shared input is encoded once");
        let mut encoded = Encoded::new(&subject, &plan, None);
        let mut list = List::new(vec![1, 2, 3], vec![0.9, 0.8, 0.7]);
        list.reorder(&[2, 0]);
        let req = encoded.request(&b, None, &list, &[]);
        assert_eq!(req.ids, vec![3, 1]);
        assert_eq!(req.columns.len(), 2);
        assert!(req.values.is_empty());
        let wit::Column::Texts(brands) = &req.columns[0] else {
            panic!("brand is text")
        };
        assert_eq!(brands[0], u32::MAX, "item 3 has no brand: absent");
        let wit::Column::Numbers(prices) = &req.columns[1] else {
            panic!("price is a number")
        };
        assert_eq!(prices, &vec![10.0, 50.0]);
        // Only the brand strings are in that rule's table; the other rule,
        // reading numbers alone, gets an empty one.
        let req_b = encoded.request(&b, None, &list, &[]);
        assert_eq!(req_b.symbol_text, "acme");
        let req = encoded.request(&a, None, &list, &[]);
        assert!(matches!(req.values[..], [wit::Value::Number(40.0)]));
        assert!(req.symbol_text.is_empty() && req.symbol_ends.is_empty());
    }

    #[test]
    fn a_last_reader_takes_what_earlier_readers_copied() {
        let subject = RequestBuilder::new()
            .item(Item::new(1, 0.9).attr("brand", "acme").tags(&["eco"]))
            .item(Item::new(2, 0.8).attr("brand", "zeta"))
            .build();
        let mut plan = InputPlan::default();
        let slots = plan.add(&[input::item_text("brand"), input::item_strings("tags")]);
        let mut encoded = Encoded::new(&subject, &plan, None);
        let list = List::new(vec![1, 2], vec![0.9, 0.8]);
        let first = encoded.request(&slots, Some(&[false, false]), &list, &[]);
        let second = encoded.request(&slots, Some(&[true, true]), &list, &[]);
        for req in [&first, &second] {
            assert_eq!(req.symbol_text, "acmezetaeco");
            assert_eq!(req.symbol_ends, vec![4, 8, 11]);
            assert!(matches!(&req.columns[0], wit::Column::Texts(ids) if ids == &vec![0, 1]));
            assert!(
                matches!(&req.columns[1], wit::Column::Strings(l) if l.offsets == vec![0, 1, 1] && l.symbols == vec![2])
            );
        }
    }
}
