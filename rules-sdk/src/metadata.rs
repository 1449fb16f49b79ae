//! What a rule says about itself: its name, kind and priority, the
//! parameters operators may set, and the inputs it reads, declared in one
//! place with a builder.
//!
//! ```
//! use recengine_rules_sdk::{Kind, Metadata, Param, input};
//!
//! let m = Metadata::new("budget", Kind::Filter, 80, "Drops items above the page's budget")
//!     .input(input::item_number("price"))
//!     .input(input::context_number("budget"))
//!     .param(Param::flag("keep_unpriced", "Keep items without a price", true));
//! assert_eq!(m.inputs.len(), 2);
//! ```

use crate::{Kind, SDK_VERSION};

/// Where an input is read (see `wit/rules.wit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Per candidate: a key of the item's `features`, or `category`,
    /// `tags`, `title`, `created_at`.
    Item,
    /// Per candidate, from the feature store (`avg_rating`, ...).
    ItemStat,
    /// Per request: a key of the user's `preferences`.
    User,
    /// Per request, from the feature store (`activity_score`, `purchased`,
    /// ...).
    UserStat,
    /// Per candidate: `has_interacted`, `category_affinity`,
    /// `content_similarity`.
    UserItem,
    /// Per request: `country`, `device`, `hour_of_day`, `is_weekend` or a
    /// key of the caller's `extra`.
    Context,
}

impl Scope {
    /// Whether the input has a value per candidate (else one per request).
    pub fn per_candidate(self) -> bool {
        matches!(self, Scope::Item | Scope::ItemStat | Scope::UserItem)
    }

    /// The name used in messages and the API (`item-stat`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Item => "item",
            Scope::ItemStat => "item-stat",
            Scope::User => "user",
            Scope::UserStat => "user-stat",
            Scope::UserItem => "user-item",
            Scope::Context => "context",
        }
    }
}

/// The type an input is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValueType {
    /// A number (`f64`); text that parses as a number counts.
    Number,
    /// A boolean; the text `true` / `false` counts.
    Flag,
    /// One string; a number counts, written in decimal.
    Text,
    /// A list of strings; one text counts as a list of one.
    Strings,
    /// Item ids; per-request inputs only.
    Ids,
    /// Unix milliseconds, from a number or a date string.
    Timestamp,
}

impl ValueType {
    /// The name used in messages and the API (`number`, `timestamp`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Number => "number",
            ValueType::Flag => "flag",
            ValueType::Text => "text",
            ValueType::Strings => "strings",
            ValueType::Ids => "ids",
            ValueType::Timestamp => "timestamp",
        }
    }
}

/// One declared input. Make them with the functions of [`crate::input`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Input {
    /// Where the value is read.
    pub scope: Scope,
    /// The name within the scope (`price`, `avg_rating`, `budget`, ...).
    pub name: String,
    /// The type the rule reads it as; the host converts what it finds, and
    /// a value of another shape arrives as absent.
    pub value_type: ValueType,
}

impl Input {
    /// An input of any scope and type (the functions of [`crate::input`]
    /// cover the usual ones).
    pub fn new(scope: Scope, name: &str, value_type: ValueType) -> Self {
        Self {
            scope,
            name: name.into(),
            value_type,
        }
    }
}

impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} ({})",
            self.scope.as_str(),
            self.name,
            self.value_type.as_str()
        )
    }
}

/// A parameter's value.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// A number (the JSON of the API: a number).
    Number(f64),
    /// A switch (JSON: `true` / `false`; the host also accepts 0 and 1).
    Flag(bool),
    /// One string.
    Text(String),
    /// A list of strings.
    Strings(Vec<String>),
}

impl ParamValue {
    /// The type's name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            ParamValue::Number(_) => "number",
            ParamValue::Flag(_) => "flag",
            ParamValue::Text(_) => "text",
            ParamValue::Strings(_) => "strings",
        }
    }
}

impl From<f64> for ParamValue {
    fn from(v: f64) -> Self {
        ParamValue::Number(v)
    }
}

impl From<bool> for ParamValue {
    fn from(v: bool) -> Self {
        ParamValue::Flag(v)
    }
}

impl From<&str> for ParamValue {
    fn from(v: &str) -> Self {
        ParamValue::Text(v.into())
    }
}

impl From<&[&str]> for ParamValue {
    fn from(v: &[&str]) -> Self {
        ParamValue::Strings(v.iter().map(|s| s.to_string()).collect())
    }
}

impl<const N: usize> From<[&str; N]> for ParamValue {
    fn from(v: [&str; N]) -> Self {
        ParamValue::Strings(v.iter().map(|s| s.to_string()).collect())
    }
}

/// One parameter a rule accepts, with its default and what the host
/// accepts for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// The name operators set it by (in the API's and the manifest's
    /// `config`).
    pub name: String,
    /// What it does, for operators (shown by `GET /rules`).
    pub description: String,
    /// The value until an operator sets one; its variant is the
    /// parameter's type.
    pub default_value: ParamValue,
    /// Numbers only: the inclusive lower bound.
    pub min: f64,
    /// Numbers only: the inclusive upper bound.
    pub max: f64,
    /// Text and strings only: the values accepted; empty accepts any.
    pub allowed: Vec<String>,
}

impl Param {
    /// A number in `min..=max`.
    pub fn number(name: &str, description: &str, default_value: f64, min: f64, max: f64) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            default_value: ParamValue::Number(default_value),
            min,
            max,
            allowed: Vec::new(),
        }
    }

    /// A switch.
    pub fn flag(name: &str, description: &str, default_value: bool) -> Self {
        Self {
            default_value: ParamValue::Flag(default_value),
            ..Self::number(name, description, 0.0, 0.0, 0.0)
        }
    }

    /// One string (restrict it with [`Param::allowed`]).
    pub fn text(name: &str, description: &str, default_value: &str) -> Self {
        Self {
            default_value: ParamValue::Text(default_value.into()),
            ..Self::number(name, description, 0.0, 0.0, 0.0)
        }
    }

    /// A list of strings (restrict its members with [`Param::allowed`]).
    pub fn strings(name: &str, description: &str, default_value: &[&str]) -> Self {
        Self {
            default_value: default_value.into(),
            ..Self::number(name, description, 0.0, 0.0, 0.0)
        }
    }

    /// The only values a text (or each member of a list) may take.
    pub fn allowed(mut self, values: &[&str]) -> Self {
        self.allowed = values.iter().map(|v| v.to_string()).collect();
        self
    }

    /// Checks `value` against the parameter's type and bounds; the message
    /// names the parameter.
    pub fn check(&self, value: &ParamValue) -> Result<(), String> {
        let name = &self.name;
        let allowed = |s: &str| self.allowed.is_empty() || self.allowed.iter().any(|a| a == s);
        match (&self.default_value, value) {
            (ParamValue::Number(_), ParamValue::Number(v)) => {
                if !v.is_finite() || *v < self.min || *v > self.max {
                    return Err(format!(
                        "{name} must be between {} and {}",
                        self.min, self.max
                    ));
                }
            }
            (ParamValue::Flag(_), ParamValue::Flag(_)) => {}
            (ParamValue::Text(_), ParamValue::Text(v)) => {
                if v.chars().count() > MAX_PARAM_TEXT_CHARS {
                    return Err(format!(
                        "{name} is longer than {MAX_PARAM_TEXT_CHARS} characters"
                    ));
                }
                if !allowed(v) {
                    return Err(format!(
                        "{name} must be one of {}, not {v:?}",
                        self.allowed.join(", ")
                    ));
                }
            }
            (ParamValue::Strings(_), ParamValue::Strings(list)) => {
                if list.len() > MAX_PARAM_STRINGS {
                    return Err(format!(
                        "{name} has {} entries; at most {MAX_PARAM_STRINGS} are allowed",
                        list.len()
                    ));
                }
                for v in list {
                    if v.chars().count() > MAX_PARAM_TEXT_CHARS {
                        return Err(format!(
                            "{name}: an entry is longer than {MAX_PARAM_TEXT_CHARS} characters"
                        ));
                    }
                    if !allowed(v) {
                        return Err(format!(
                            "{name}: {v:?} is not one of {}",
                            self.allowed.join(", ")
                        ));
                    }
                }
            }
            (expected, got) => {
                return Err(format!(
                    "{name} must be a {}, not a {}",
                    expected.type_name(),
                    got.type_name()
                ));
            }
        }
        Ok(())
    }
}

/// Longest text a parameter (or one entry of a list) may hold.
pub const MAX_PARAM_TEXT_CHARS: usize = 256;
/// Most entries a list parameter may hold.
pub const MAX_PARAM_STRINGS: usize = 256;

/// What a rule is.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// Unique name: 1-64 characters of `a-z`, `0-9` and `_`.
    pub name: String,
    /// What the rule may do.
    pub kind: Kind,
    /// Higher runs first (operators may change it); ties keep registration
    /// order.
    pub default_priority: i32,
    /// What the rule does, in a sentence: shown by `GET /rules` and as the
    /// `reason` of its trace entries.
    pub description: String,
    /// The parameters operators may set, in the order the host passes
    /// their values.
    pub params: Vec<Param>,
    /// What the rule reads, in declaration order.
    pub inputs: Vec<Input>,
    /// The SDK version the rule was built with ([`crate::SDK_VERSION`]);
    /// the host refuses a major.minor it does not implement.
    pub sdk_version: String,
    /// The suggested failure policy: true for safety rules (see
    /// [`Metadata::fail_closed`]).
    pub fail_closed: bool,
}

impl Metadata {
    /// A rule with no parameters and no inputs, fail-open, stamped with
    /// this SDK's version.
    pub fn new(name: &str, kind: Kind, default_priority: i32, description: &str) -> Self {
        Self {
            name: name.into(),
            kind,
            default_priority,
            description: description.into(),
            params: Vec::new(),
            inputs: Vec::new(),
            sdk_version: SDK_VERSION.into(),
            fail_closed: false,
        }
    }

    /// Declares a parameter operators may set (see [`Param`]).
    pub fn param(mut self, param: Param) -> Self {
        self.params.push(param);
        self
    }

    /// Declares something the rule reads (see [`crate::input`]).
    pub fn input(mut self, input: Input) -> Self {
        self.inputs.push(input);
        self
    }

    /// Mark a safety rule: if it fails, the host shows nothing rather than
    /// an unfiltered list (operators can still override the policy).
    pub fn fail_closed(mut self) -> Self {
        self.fail_closed = true;
        self
    }

    /// The parameter defaults, in declaration order.
    pub fn default_params(&self) -> Vec<ParamValue> {
        self.params
            .iter()
            .map(|p| p.default_value.clone())
            .collect()
    }
}

/// Declaring inputs: `Metadata::new(..).input(input::item_number("price"))`.
///
/// Item and user attributes and context keys may have any name (a value
/// that is not there arrives as absent); statistics and user-item features
/// are the host's fixed list, checked when the rule loads.
pub mod input {
    use super::{Input, Scope, ValueType};

    /// A number attribute of the item (a key of its `features`).
    pub fn item_number(name: &str) -> Input {
        Input::new(Scope::Item, name, ValueType::Number)
    }
    /// A flag attribute of the item (a key of its `features` holding
    /// `true` / `false`).
    pub fn item_flag(name: &str) -> Input {
        Input::new(Scope::Item, name, ValueType::Flag)
    }
    /// A text attribute: a key of `features`, or `category` or `title`.
    pub fn item_text(name: &str) -> Input {
        Input::new(Scope::Item, name, ValueType::Text)
    }
    /// A list of strings: a key of `features`, or `tags`.
    pub fn item_strings(name: &str) -> Input {
        Input::new(Scope::Item, name, ValueType::Strings)
    }
    /// A point in time: a key of `features`, or `created_at`.
    pub fn item_timestamp(name: &str) -> Input {
        Input::new(Scope::Item, name, ValueType::Timestamp)
    }
    /// A feature-store statistic of the item: `popularity_score`,
    /// `avg_rating`, `total_interactions`, `view_count`, `click_count`,
    /// `purchase_count`, `age_days`.
    pub fn item_stat(name: &str) -> Input {
        Input::new(Scope::ItemStat, name, ValueType::Number)
    }
    /// A number: a key of the user's `preferences`.
    pub fn user_number(name: &str) -> Input {
        Input::new(Scope::User, name, ValueType::Number)
    }
    /// A flag: a key of the user's `preferences`.
    pub fn user_flag(name: &str) -> Input {
        Input::new(Scope::User, name, ValueType::Flag)
    }
    /// A text: a key of the user's `preferences`.
    pub fn user_text(name: &str) -> Input {
        Input::new(Scope::User, name, ValueType::Text)
    }
    /// A list of strings: a key of the user's `preferences`.
    pub fn user_strings(name: &str) -> Input {
        Input::new(Scope::User, name, ValueType::Strings)
    }
    /// A number from the feature store: `total_interactions`, `avg_rating`,
    /// `activity_score`, `recency_score`, `account_age_days`.
    pub fn user_stat(name: &str) -> Input {
        Input::new(Scope::UserStat, name, ValueType::Number)
    }
    /// `favorite_categories` (from the user's interactions).
    pub fn user_stat_strings(name: &str) -> Input {
        Input::new(Scope::UserStat, name, ValueType::Strings)
    }
    /// `purchased` or `interacted`: item ids, ascending.
    pub fn user_stat_ids(name: &str) -> Input {
        Input::new(Scope::UserStat, name, ValueType::Ids)
    }
    /// `category_affinity` or `content_similarity`.
    pub fn user_item_number(name: &str) -> Input {
        Input::new(Scope::UserItem, name, ValueType::Number)
    }
    /// `has_interacted`.
    pub fn user_item_flag(name: &str) -> Input {
        Input::new(Scope::UserItem, name, ValueType::Flag)
    }
    /// `hour_of_day`, or an `extra` key holding a number.
    pub fn context_number(name: &str) -> Input {
        Input::new(Scope::Context, name, ValueType::Number)
    }
    /// A point in time from the user's preferences (unix ms, or an RFC 3339
    /// or `YYYY-MM-DD` string).
    pub fn user_timestamp(name: &str) -> Input {
        Input::new(Scope::User, name, ValueType::Timestamp)
    }
    /// A point in time the page sends in `extra` (unix ms, or an RFC 3339
    /// or `YYYY-MM-DD` string).
    pub fn context_timestamp(name: &str) -> Input {
        Input::new(Scope::Context, name, ValueType::Timestamp)
    }
    /// `is_weekend`, or an `extra` key holding `true`/`false`.
    pub fn context_flag(name: &str) -> Input {
        Input::new(Scope::Context, name, ValueType::Flag)
    }
    /// `country`, `device`, or an `extra` key.
    pub fn context_text(name: &str) -> Input {
        Input::new(Scope::Context, name, ValueType::Text)
    }
}
