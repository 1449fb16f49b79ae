//! What rules read, from the service's data to the columns each rule sees.
//!
//! - [`catalogue`]: the inputs a rule may declare, checked at load.
//! - [`InputPlan`]: the union of what the active rules declare; the host
//!   gathers exactly that, once per request.
//! - [`gather`]: the service's user, items and request context as a
//!   [`Subject`] (the SDK's plain form, which tests build by hand).
//! - [`encode`]: the subject encoded once (interned, columnar), and cut
//!   per rule to its own inputs (`wit/rules.wit`).
//! - [`rows`]: each candidate's item inputs encoded once per item and rule
//!   set and kept beside the cached item, so a request copies cells.
//! - [`legacy`]: the same for rules built against contract 0.1.
//! - [`sample`]: hand-made users and candidates (dry runs, `rules test`,
//!   the check a bundle's rules pass before they go live).

pub mod catalogue;
pub mod encode;
pub mod gather;
pub mod legacy;
pub mod rows;
pub mod sample;

use std::collections::{BTreeMap, HashMap};

use recengine_rules_sdk::Input;
pub use recengine_rules_sdk::builder::Subject;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What the caller tells the rules about the request.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleContext {
    /// ISO country code the request comes from; geo rules prefer it to the
    /// user's own country.
    #[schema(max_length = 8)]
    pub country: Option<String>,
    #[schema(max_length = 64)]
    pub device: Option<String>,
    /// 0..=23; derived from the server's clock (UTC) when absent.
    #[schema(minimum = 0, maximum = 23)]
    pub hour_of_day: Option<u8>,
    /// Derived from the server's clock (UTC) when absent.
    pub is_weekend: Option<bool>,
    /// Any other key/values, passed through to the rules.
    /// At most 32 keys of up to 64 characters, values up to 256.
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
}

/// Bounds on what a caller may put in a context: it reaches every rule
/// and (as a digest) the cache key, so its size is the service's to set.
pub const MAX_EXTRA_KEYS: usize = 32;
pub const MAX_CONTEXT_KEY_CHARS: usize = 64;
pub const MAX_CONTEXT_VALUE_CHARS: usize = 256;
pub const MAX_COUNTRY_CHARS: usize = 8;
pub const MAX_DEVICE_CHARS: usize = 64;

impl RuleContext {
    /// The bounds above, and `hour_of_day` 0..=23; the message names the
    /// field and its limit.
    pub fn validate(&self) -> Result<(), String> {
        let too_long = |field: &str, value: &Option<String>, max: usize| match value {
            Some(v) if v.chars().count() > max => {
                Err(format!("context.{field} is longer than {max} characters"))
            }
            _ => Ok(()),
        };
        too_long("country", &self.country, MAX_COUNTRY_CHARS)?;
        too_long("device", &self.device, MAX_DEVICE_CHARS)?;
        if self.hour_of_day.is_some_and(|h| h > 23) {
            return Err("hour_of_day must be 0..=23".into());
        }
        if self.extra.len() > MAX_EXTRA_KEYS {
            return Err(format!(
                "context.extra has {} keys; at most {MAX_EXTRA_KEYS} are allowed",
                self.extra.len()
            ));
        }
        for (key, value) in &self.extra {
            if key.chars().count() > MAX_CONTEXT_KEY_CHARS {
                return Err(format!(
                    "context.extra keys must be at most {MAX_CONTEXT_KEY_CHARS} characters"
                ));
            }
            if value.chars().count() > MAX_CONTEXT_VALUE_CHARS {
                return Err(format!(
                    "context.extra.{key} is longer than {MAX_CONTEXT_VALUE_CHARS} characters"
                ));
            }
        }
        Ok(())
    }
}

/// The distinct inputs a rule set declares (0.1 rules count as declaring
/// their fixed columns), each with its slot in the encoded request.
#[derive(Debug, Clone, Default)]
pub struct InputPlan {
    inputs: Vec<Input>,
    slots: HashMap<Input, usize>,
}

impl InputPlan {
    /// Adds `inputs` (once each) and returns their slots, in order.
    pub fn add(&mut self, inputs: &[Input]) -> Vec<usize> {
        inputs
            .iter()
            .map(|input| {
                if let Some(&slot) = self.slots.get(input) {
                    return slot;
                }
                self.inputs.push(input.clone());
                self.slots.insert(input.clone(), self.inputs.len() - 1);
                self.inputs.len() - 1
            })
            .collect()
    }

    pub fn inputs(&self) -> &[Input] {
        &self.inputs
    }

    /// Whether anything declares `input`'s scope and name (any type).
    pub fn wants(&self, scope: recengine_rules_sdk::Scope, name: &str) -> bool {
        self.inputs
            .iter()
            .any(|i| i.scope == scope && i.name == name)
    }

    /// Whether anything declares an input of `scope`.
    pub fn wants_scope(&self, scope: recengine_rules_sdk::Scope) -> bool {
        self.inputs.iter().any(|i| i.scope == scope)
    }
}

/// The context as named inputs: its own fields and its `extra` keys (the
/// fields win a clash).
pub fn context_data(
    context: &RuleContext,
    now: chrono::DateTime<chrono::Utc>,
) -> BTreeMap<String, recengine_rules_sdk::wire::Datum> {
    use chrono::{Datelike, Timelike};
    use recengine_rules_sdk::wire::Datum;
    let mut data: BTreeMap<String, Datum> = context
        .extra
        .iter()
        .map(|(k, v)| (k.clone(), Datum::Text(v.clone())))
        .collect();
    if let Some(country) = &context.country {
        data.insert("country".into(), Datum::Text(country.to_ascii_uppercase()));
    }
    if let Some(device) = &context.device {
        data.insert("device".into(), Datum::Text(device.clone()));
    }
    let hour = context.hour_of_day.unwrap_or(now.hour() as u8).min(23);
    data.insert("hour_of_day".into(), Datum::Number(f64::from(hour)));
    let weekend = context
        .is_weekend
        .unwrap_or(now.weekday().number_from_monday() >= 6);
    data.insert("is_weekend".into(), Datum::Flag(weekend));
    data
}
