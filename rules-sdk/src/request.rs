//! What a rule reads: the candidates, one at a time ([`Candidate`]), the
//! user and the context ([`Scoped`]), and its parameters ([`Params`]), all
//! by the names its metadata declares.
//!
//! Reading a name the metadata does not declare, or as another type, is a
//! bug in the rule: it panics with a message saying what to declare (the
//! rule's first unit test shows it; in production the call fails and the
//! rule's failure policy applies).

use crate::{
    Input, Metadata, Param, ParamValue, Scope, ValueType,
    wire::{Column, NONE, Symbols, Value, WireRequest},
};

/// A string of the request, as an opaque handle: equal strings have equal
/// symbols, so comparing symbols is comparing text without touching it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(u32);

/// One call's request, as a rule sees it.
#[derive(Debug, Clone)]
pub struct Request {
    wire: WireRequest,
    /// Per-candidate inputs (name, type), in column order.
    candidate_inputs: Vec<(String, ValueType)>,
    /// Where the names a rule reads per candidate were last found, by the
    /// address of the `&str` it passed (a literal, nearly always): one
    /// comparison to confirm instead of a search per read.
    recent: std::cell::RefCell<[(usize, usize); RECENT]>,
    /// Per-request inputs (scope, name, type), in value order.
    request_inputs: Vec<(Scope, String, ValueType)>,
}

impl Request {
    /// Pairs what crossed the boundary with the rule's declared inputs.
    /// Missing columns or values (a host that sent fewer) read as absent.
    pub fn new(wire: WireRequest, inputs: &[Input]) -> Self {
        Self::with_inputs(wire, inputs.to_vec())
    }

    /// [`Request::new`], taking the inputs over.
    pub(crate) fn with_inputs(wire: WireRequest, inputs: Vec<Input>) -> Self {
        let mut candidate_inputs = Vec::with_capacity(inputs.len());
        let mut request_inputs = Vec::new();
        for i in inputs {
            if i.scope.per_candidate() {
                candidate_inputs.push((i.name, i.value_type));
            } else {
                request_inputs.push((i.scope, i.name, i.value_type));
            }
        }
        Self {
            wire,
            candidate_inputs,
            request_inputs,
            recent: std::cell::RefCell::new([(0, 0); RECENT]),
        }
    }

    /// The encoded form (for the harness and the host).
    pub fn wire(&self) -> &WireRequest {
        &self.wire
    }

    /// How many candidates.
    pub fn len(&self) -> usize {
        self.wire.ids.len()
    }

    /// Whether there are no candidates.
    pub fn is_empty(&self) -> bool {
        self.wire.ids.is_empty()
    }

    /// Every candidate, best first.
    pub fn candidates(&self) -> impl ExactSizeIterator<Item = Candidate<'_>> {
        (0..self.len()).map(move |position| Candidate {
            req: self,
            position,
        })
    }

    /// The candidate at `position` (0 is the best).
    pub fn candidate(&self, position: usize) -> Candidate<'_> {
        assert!(position < self.len(), "candidate {position} out of range");
        Candidate {
            req: self,
            position,
        }
    }

    /// The candidates' item ids, best first.
    pub fn ids(&self) -> &[i64] {
        &self.wire.ids
    }

    /// The candidates' scores, in the order of [`Request::ids`].
    pub fn scores(&self) -> &[f64] {
        &self.wire.scores
    }

    /// The user: their id, and the user and user-stat inputs.
    pub fn user(&self) -> Scoped<'_> {
        Scoped {
            req: self,
            scopes: [Scope::User, Scope::UserStat],
        }
    }

    /// The request's context inputs.
    pub fn context(&self) -> Scoped<'_> {
        Scoped {
            req: self,
            scopes: [Scope::Context, Scope::Context],
        }
    }

    /// The id of the user the list is for.
    pub fn user_id(&self) -> i64 {
        self.wire.user_id
    }

    /// The host's clock (unix ms), the same for every rule of a request.
    pub fn now_ms(&self) -> i64 {
        self.wire.now_ms
    }

    /// Item ids the caller asked not to be shown, ascending.
    pub fn exclude_ids(&self) -> &[i64] {
        &self.wire.exclude_ids
    }

    /// Whether the caller asked not to be shown `item_id`.
    pub fn is_excluded(&self, item_id: i64) -> bool {
        self.wire.exclude_ids.binary_search(&item_id).is_ok()
    }

    /// The symbol of `text`, if anything in the request holds that string
    /// (if none does, no input can equal it).
    pub fn symbol(&self, text: &str) -> Option<Symbol> {
        self.wire
            .symbols
            .iter()
            .position(|s| s == text)
            .map(|i| Symbol(i as u32))
    }

    /// The text of a symbol.
    pub fn text(&self, symbol: Symbol) -> &str {
        self.wire.symbols.get(symbol.0).unwrap_or("")
    }

    fn symbols(&self) -> &Symbols {
        &self.wire.symbols
    }

    /// The index of a per-candidate input: the one remembered for this
    /// address when its name still matches, else a search (remembered).
    fn candidate_index(&self, name: &str) -> Option<usize> {
        let address = name.as_ptr() as usize;
        let slot = (address >> 3) % RECENT;
        let (seen, index) = self.recent.borrow()[slot];
        if seen == address
            && self
                .candidate_inputs
                .get(index)
                .is_some_and(|(n, _)| n == name)
        {
            return Some(index);
        }
        let index = self.candidate_inputs.iter().position(|(n, _)| n == name)?;
        self.recent.borrow_mut()[slot] = (address, index);
        Some(index)
    }

    fn column(&self, name: &str, want: &[ValueType]) -> &Column {
        self.try_column(name, want)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The column of a per-candidate input declared as one of `want`, or
    /// what to declare.
    fn try_column(&self, name: &str, want: &[ValueType]) -> Result<&Column, String> {
        let Some(index) = self.candidate_index(name) else {
            return Err(format!(
                "input {name:?} is not declared in the rule's metadata: add it with \
                 .input(input::item_...({name:?})) (or item_stat / user_item_...)"
            ));
        };
        let declared = self.candidate_inputs[index].1;
        if !want.contains(&declared) {
            return Err(format!(
                "input {name:?} is declared as {}, not read as {}",
                declared.as_str(),
                want[0].as_str()
            ));
        }
        Ok(self.wire.columns.get(index).unwrap_or(&ABSENT_COLUMN))
    }

    /// A number (or timestamp) per-candidate input as a column: look the
    /// name up once, then read candidate `i` with [`Numbers::get`] (an
    /// index, no search). What to use in a loop over the candidates; an
    /// `Err` says what to declare.
    ///
    /// ```
    /// # use recengine_rules_sdk::{Kind, Metadata, Outcome, Params, Request, Rule, input};
    /// # struct Cheap;
    /// # impl Rule for Cheap {
    /// #     fn metadata() -> Metadata {
    /// #         Metadata::new("cheap", Kind::Boost, 10, "").input(input::item_number("price"))
    /// #     }
    /// fn apply(req: &Request, _: &Params) -> Result<Outcome, String> {
    ///     let price = req.numbers("price")?;
    ///     Ok(Outcome::rescore(req, |c| match price.get(c.position()) {
    ///         Some(p) if p < 20.0 => c.score() * 1.5,
    ///         _ => c.score(),
    ///     }))
    /// }
    /// # }
    /// ```
    pub fn numbers(&self, name: &str) -> Result<Numbers<'_>, String> {
        let values = match self.try_column(name, NUMBERS)? {
            Column::Numbers(v) => v.as_slice(),
            _ => &[],
        };
        Ok(Numbers { values })
    }

    /// A flag per-candidate input as a column (see [`Request::numbers`]).
    pub fn flags(&self, name: &str) -> Result<Flags<'_>, String> {
        let values = match self.try_column(name, &[ValueType::Flag])? {
            Column::Flags(v) => v.as_slice(),
            _ => &[],
        };
        Ok(Flags { values })
    }

    /// A text per-candidate input as a column (see [`Request::numbers`]).
    pub fn texts(&self, name: &str) -> Result<Texts<'_>, String> {
        let values = match self.try_column(name, &[ValueType::Text])? {
            Column::Texts(v) => v.as_slice(),
            _ => &[],
        };
        Ok(Texts {
            values,
            symbols: self.symbols(),
        })
    }

    /// A list-of-strings per-candidate input as a column (see
    /// [`Request::numbers`]).
    pub fn strings(&self, name: &str) -> Result<StringLists<'_>, String> {
        let column = self.try_column(name, &[ValueType::Strings])?;
        Ok(StringLists {
            column,
            symbols: self.symbols(),
        })
    }

    fn value(&self, scopes: [Scope; 2], name: &str, want: &[ValueType]) -> &Value {
        let Some(index) = self
            .request_inputs
            .iter()
            .position(|(s, n, _)| scopes.contains(s) && n == name)
        else {
            panic!(
                "input {name:?} ({}) is not declared in the rule's metadata",
                scopes[0].as_str()
            );
        };
        let declared = self.request_inputs[index].2;
        assert!(
            want.contains(&declared),
            "input {name:?} is declared as {}, not read as {}",
            declared.as_str(),
            want[0].as_str()
        );
        self.wire.values.get(index).unwrap_or(&Value::Absent)
    }
}

static ABSENT_COLUMN: Column = Column::Numbers(Vec::new());

/// Names remembered per request (a rule reads a handful per candidate).
const RECENT: usize = 16;

const NUMBERS: &[ValueType] = &[ValueType::Number, ValueType::Timestamp];

/// A number (or timestamp) input of every candidate, from
/// [`Request::numbers`]: position i is candidate i.
#[derive(Debug, Clone, Copy)]
pub struct Numbers<'a> {
    values: &'a [f64],
}

impl<'a> Numbers<'a> {
    /// Candidate `position`'s value; `None` when absent (or out of range).
    pub fn get(&self, position: usize) -> Option<f64> {
        self.values.get(position).copied().filter(|n| !n.is_nan())
    }

    /// A timestamp input's value, in unix ms.
    pub fn timestamp(&self, position: usize) -> Option<i64> {
        self.get(position).map(|n| n as i64)
    }

    /// Every candidate's value, in list order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<f64>> + use<'a> {
        self.values.iter().map(|&n| (!n.is_nan()).then_some(n))
    }
}

/// A flag input of every candidate, from [`Request::flags`].
#[derive(Debug, Clone, Copy)]
pub struct Flags<'a> {
    values: &'a [u8],
}

impl<'a> Flags<'a> {
    /// Candidate `position`'s value; `None` when absent (or out of range).
    pub fn get(&self, position: usize) -> Option<bool> {
        flag(self.values.get(position).copied())
    }

    /// Every candidate's value, in list order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<bool>> + use<'a> {
        self.values.iter().map(|&f| flag(Some(f)))
    }
}

fn flag(encoded: Option<u8>) -> Option<bool> {
    match encoded {
        Some(0) => Some(false),
        Some(1) => Some(true),
        _ => None,
    }
}

/// A text input of every candidate, from [`Request::texts`].
#[derive(Debug, Clone, Copy)]
pub struct Texts<'a> {
    values: &'a [u32],
    symbols: &'a Symbols,
}

impl<'a> Texts<'a> {
    /// Candidate `position`'s text; `None` when absent (or out of range).
    pub fn get(&self, position: usize) -> Option<&'a str> {
        self.symbols.get(self.symbol(position)?.0)
    }

    /// Candidate `position`'s text as a [`Symbol`], to compare without
    /// reading the text.
    pub fn symbol(&self, position: usize) -> Option<Symbol> {
        self.values
            .get(position)
            .copied()
            .filter(|&s| s != NONE)
            .map(Symbol)
    }

    /// Every candidate's symbol, in list order.
    pub fn symbols(&self) -> impl ExactSizeIterator<Item = Option<Symbol>> + use<'a> {
        self.values
            .iter()
            .map(|&s| (s != NONE).then_some(Symbol(s)))
    }
}

/// A list-of-strings input of every candidate, from
/// [`Request::strings`].
#[derive(Debug, Clone, Copy)]
pub struct StringLists<'a> {
    column: &'a Column,
    symbols: &'a Symbols,
}

impl<'a> StringLists<'a> {
    /// Candidate `position`'s strings (empty when absent or out of range).
    pub fn get(&self, position: usize) -> impl Iterator<Item = &'a str> + use<'a> {
        let symbols = self.symbols;
        self.symbols_of(position)
            .filter_map(move |s| symbols.get(s.0))
    }

    /// Candidate `position`'s strings as [`Symbol`]s.
    pub fn symbols_of(&self, position: usize) -> impl ExactSizeIterator<Item = Symbol> + use<'a> {
        self.column.strings_at(position).iter().map(|&s| Symbol(s))
    }
}

/// One candidate: its id, score and declared per-candidate inputs (item,
/// item-stat and user-item).
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    req: &'a Request,
    position: usize,
}

impl<'a> Candidate<'a> {
    /// Where it stands in the list (0 is the best).
    pub fn position(&self) -> usize {
        self.position
    }

    /// The item's id.
    pub fn id(&self) -> i64 {
        self.req.wire.ids[self.position]
    }

    /// The item's current score (after the rules that ran before).
    pub fn score(&self) -> f64 {
        self.req.wire.scores[self.position]
    }

    /// A number (or timestamp, in unix ms) input; `None` when absent.
    pub fn number(&self, name: &str) -> Option<f64> {
        match self.req.column(name, NUMBERS) {
            Column::Numbers(v) => v.get(self.position).copied().filter(|n| !n.is_nan()),
            _ => None,
        }
    }

    /// A timestamp input, in unix ms.
    pub fn timestamp(&self, name: &str) -> Option<i64> {
        self.number(name).map(|n| n as i64)
    }

    /// A flag input; `None` when absent.
    pub fn flag(&self, name: &str) -> Option<bool> {
        match self.req.column(name, &[ValueType::Flag]) {
            Column::Flags(v) => flag(v.get(self.position).copied()),
            _ => None,
        }
    }

    /// A text input; `None` when absent.
    pub fn text(&self, name: &str) -> Option<&'a str> {
        let symbol = self.text_symbol(name)?;
        self.req.symbols().get(symbol.0)
    }

    /// A text input as a [`Symbol`], to compare without reading the text.
    pub fn text_symbol(&self, name: &str) -> Option<Symbol> {
        match self.req.column(name, &[ValueType::Text]) {
            Column::Texts(v) => v
                .get(self.position)
                .copied()
                .filter(|&s| s != NONE)
                .map(Symbol),
            _ => None,
        }
    }

    /// A list-of-strings input (empty when absent).
    pub fn strings(&self, name: &str) -> impl Iterator<Item = &'a str> + use<'a> {
        let symbols = self.req.symbols();
        self.string_symbols(name)
            .filter_map(move |s| symbols.get(s.0))
    }

    /// A list-of-strings input as [`Symbol`]s.
    pub fn string_symbols(&self, name: &str) -> impl Iterator<Item = Symbol> + use<'a> {
        self.req
            .column(name, &[ValueType::Strings])
            .strings_at(self.position)
            .iter()
            .map(|&s| Symbol(s))
    }
}

/// The per-request inputs of the user (user and user-stat) or of the
/// context.
#[derive(Debug, Clone, Copy)]
pub struct Scoped<'a> {
    req: &'a Request,
    scopes: [Scope; 2],
}

impl<'a> Scoped<'a> {
    /// The user's id (on the user's view; the same on any).
    pub fn id(&self) -> i64 {
        self.req.wire.user_id
    }

    /// A number (or timestamp, in unix ms) input; `None` when absent.
    pub fn number(&self, name: &str) -> Option<f64> {
        match self.req.value(self.scopes, name, NUMBERS) {
            Value::Number(n) if !n.is_nan() => Some(*n),
            _ => None,
        }
    }

    /// A timestamp input, in unix ms.
    pub fn timestamp(&self, name: &str) -> Option<i64> {
        self.number(name).map(|n| n as i64)
    }

    /// A flag input; `None` when absent.
    pub fn flag(&self, name: &str) -> Option<bool> {
        match self.req.value(self.scopes, name, &[ValueType::Flag]) {
            Value::Flag(b) => Some(*b),
            _ => None,
        }
    }

    /// A text input; `None` when absent.
    pub fn text(&self, name: &str) -> Option<&'a str> {
        let symbol = self.text_symbol(name)?;
        self.req.symbols().get(symbol.0)
    }

    /// A text input as a [`Symbol`], to compare without reading the text.
    pub fn text_symbol(&self, name: &str) -> Option<Symbol> {
        match self.req.value(self.scopes, name, &[ValueType::Text]) {
            Value::Text(s) if *s != NONE => Some(Symbol(*s)),
            _ => None,
        }
    }

    /// A list of strings (empty when absent).
    pub fn strings(&self, name: &str) -> Vec<&'a str> {
        let symbols = self.req.symbols();
        self.string_symbols(name)
            .into_iter()
            .filter_map(|s| symbols.get(s.0))
            .collect()
    }

    /// A list-of-strings input as [`Symbol`]s (empty when absent): compare
    /// them with a candidate's [`Candidate::text_symbol`] or
    /// [`Candidate::string_symbols`].
    pub fn string_symbols(&self, name: &str) -> Vec<Symbol> {
        match self.req.value(self.scopes, name, &[ValueType::Strings]) {
            Value::Strings(v) => v.iter().map(|&s| Symbol(s)).collect(),
            _ => Vec::new(),
        }
    }

    /// Item ids, ascending (empty when absent).
    pub fn ids(&self, name: &str) -> &'a [i64] {
        match self.req.value(self.scopes, name, &[ValueType::Ids]) {
            Value::Ids(v) => v,
            _ => &[],
        }
    }
}

/// The rule's parameters for this call, by name, typed.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    params: &'a [Param],
    values: &'a [ParamValue],
}

impl<'a> Params<'a> {
    /// The declared `params` with the `values` of one call, in the same
    /// order ([`Params::of`] does this for a request).
    pub fn new(params: &'a [Param], values: &'a [ParamValue]) -> Self {
        Self { params, values }
    }

    /// From the metadata and the values the request carried.
    pub fn of(metadata: &'a Metadata, req: &'a Request) -> Self {
        Self::new(&metadata.params, &req.wire.params)
    }

    /// The value of `name` (its default if the host sent fewer values or
    /// one of another type). Panics on a name the metadata does not declare.
    fn get(&self, name: &str) -> &'a ParamValue {
        let index = self
            .params
            .iter()
            .position(|p| p.name == name)
            .unwrap_or_else(|| panic!("parameter {name:?} is not declared in the metadata"));
        let default = &self.params[index].default_value;
        match self.values.get(index) {
            Some(v) if std::mem::discriminant(v) == std::mem::discriminant(default) => v,
            _ => default,
        }
    }

    /// A number parameter's value. Panics if `name` is not declared or is
    /// not a number.
    pub fn number(&self, name: &str) -> f64 {
        match self.get(name) {
            ParamValue::Number(n) => *n,
            other => panic!("parameter {name:?} is a {}", other.type_name()),
        }
    }

    /// A flag parameter's value. Panics if `name` is not declared or is
    /// not a flag.
    pub fn flag(&self, name: &str) -> bool {
        match self.get(name) {
            ParamValue::Flag(b) => *b,
            other => panic!("parameter {name:?} is a {}", other.type_name()),
        }
    }

    /// A text parameter's value. Panics if `name` is not declared or is
    /// not a text.
    pub fn text(&self, name: &str) -> &'a str {
        match self.get(name) {
            ParamValue::Text(s) => s,
            other => panic!("parameter {name:?} is a {}", other.type_name()),
        }
    }

    /// A list-of-strings parameter's value. Panics if `name` is not
    /// declared or is not a list of strings.
    pub fn strings(&self, name: &str) -> Vec<&'a str> {
        match self.get(name) {
            ParamValue::Strings(v) => v.iter().map(String::as_str).collect(),
            other => panic!("parameter {name:?} is a {}", other.type_name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        Kind, Metadata, input,
        testing::{Item, RequestBuilder},
    };

    #[test]
    fn column_handles_read_what_the_by_name_accessors_read() {
        let subject = RequestBuilder::new()
            .item(
                Item::new(1, 0.9)
                    .attr("price", 12.5)
                    .attr("brand", "acme")
                    .attr("premium", true)
                    .tags(&["eco", "gift"])
                    .created_at_ms(1_700_000_000_000),
            )
            .item(
                Item::new(2, 0.8)
                    .attr("price", "7")
                    .attr("premium", "false"),
            )
            .item(Item::new(3, 0.7).attr("brand", 42_i64).tags(&[]))
            .build();
        let meta = Metadata::new("both", Kind::Boost, 0, "")
            .input(input::item_number("price"))
            .input(input::item_text("brand"))
            .input(input::item_flag("premium"))
            .input(input::item_strings("tags"))
            .input(input::item_timestamp("created_at"));
        let req = subject.request_for(&meta, Vec::new());
        let price = req.numbers("price").unwrap();
        let brand = req.texts("brand").unwrap();
        let premium = req.flags("premium").unwrap();
        let tags = req.strings("tags").unwrap();
        let created = req.numbers("created_at").unwrap();
        for c in req.candidates() {
            let i = c.position();
            assert_eq!(price.get(i), c.number("price"));
            assert_eq!(brand.get(i), c.text("brand"));
            assert_eq!(brand.symbol(i), c.text_symbol("brand"));
            assert_eq!(premium.get(i), c.flag("premium"));
            assert!(tags.get(i).eq(c.strings("tags")));
            assert!(tags.symbols_of(i).eq(c.string_symbols("tags")));
            assert_eq!(created.timestamp(i), c.timestamp("created_at"));
        }
        assert_eq!(
            price.iter().collect::<Vec<_>>(),
            [Some(12.5), Some(7.0), None]
        );
        assert_eq!(
            premium.iter().collect::<Vec<_>>(),
            [Some(true), Some(false), None]
        );
        assert_eq!(brand.get(2), Some("42"));
        assert_eq!(brand.symbols().filter(Option::is_some).count(), 2);
        // Out of range reads as absent; an undeclared name or another type
        // is an error saying what to declare.
        assert_eq!(price.get(3), None);
        assert!(req.numbers("weight").unwrap_err().contains("not declared"));
        assert!(
            req.numbers("brand")
                .unwrap_err()
                .contains("declared as text")
        );
    }
}
