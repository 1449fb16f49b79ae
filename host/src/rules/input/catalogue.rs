//! What a rule may declare: the names the host knows for each scope, their
//! types, and the check every component's declaration passes at load.

use recengine_rules_sdk::{Input, Metadata, Scope, ValueType};

/// Feature-store statistics of an item (all numbers).
pub const ITEM_STATS: &[&str] = &[
    "popularity_score",
    "avg_rating",
    "total_interactions",
    "view_count",
    "click_count",
    "purchase_count",
    "age_days",
];

/// The item's own fields (the rest of scope `item` is its `features`).
pub const ITEM_FIELDS: &[(&str, ValueType)] = &[
    ("category", ValueType::Text),
    ("tags", ValueType::Strings),
    ("title", ValueType::Text),
    ("created_at", ValueType::Timestamp),
];

/// Feature-store features of the user, with their types. Besides these,
/// `purchased.<attribute>` and `interacted.<attribute>` (strings) are the
/// distinct values of an item attribute over the items the user bought or
/// touched.
pub const USER_STATS: &[(&str, ValueType)] = &[
    ("total_interactions", ValueType::Number),
    ("avg_rating", ValueType::Number),
    ("activity_score", ValueType::Number),
    ("recency_score", ValueType::Number),
    ("account_age_days", ValueType::Number),
    ("favorite_categories", ValueType::Strings),
    ("purchased", ValueType::Ids),
    ("interacted", ValueType::Ids),
];

/// How the user relates to each candidate.
pub const USER_ITEM: &[(&str, ValueType)] = &[
    ("has_interacted", ValueType::Flag),
    ("category_affinity", ValueType::Number),
    ("content_similarity", ValueType::Number),
];

/// The context's own keys (any other name is a key of `extra`).
pub const CONTEXT_FIELDS: &[(&str, ValueType)] = &[
    ("country", ValueType::Text),
    ("device", ValueType::Text),
    ("hour_of_day", ValueType::Number),
    ("is_weekend", ValueType::Flag),
];

/// Most inputs one rule may declare.
pub const MAX_INPUTS: usize = 64;
/// Longest input name.
pub const MAX_NAME_CHARS: usize = 64;

/// The user-stat prefixes that aggregate an item attribute.
pub const AGGREGATES: &[&str] = &["purchased.", "interacted."];

fn known(list: &[(&str, ValueType)], name: &str) -> Option<ValueType> {
    list.iter().find(|(n, _)| *n == name).map(|&(_, t)| t)
}

fn names(list: &[(&str, ValueType)]) -> String {
    list.iter()
        .map(|(n, t)| format!("{n} ({})", t.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks one declaration; the message names it and lists what exists.
fn check_input(input: &Input) -> Result<(), String> {
    let name = input.name.as_str();
    let ty = input.value_type;
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(|c| c.is_control())
    {
        return Err(format!(
            "input {name:?} ({}): names are 1-{MAX_NAME_CHARS} printable characters",
            input.scope.as_str()
        ));
    }
    let fixed = |list: &[(&str, ValueType)], scope: &str| match known(list, name) {
        Some(t) if t == ty || (t == ValueType::Timestamp && ty == ValueType::Number) => Ok(()),
        Some(t) => Err(format!(
            "input {scope} {name:?} is a {}, not a {}",
            t.as_str(),
            ty.as_str()
        )),
        None => Err(format!(
            "input {scope} {name:?} is not one the host knows; {scope} inputs are: {}",
            names(list)
        )),
    };
    match input.scope {
        Scope::ItemStat => {
            if !ITEM_STATS.contains(&name) {
                return Err(format!(
                    "input item-stat {name:?} is not one the host knows; item-stat inputs are: {}",
                    ITEM_STATS.join(", ")
                ));
            }
            if ty != ValueType::Number {
                return Err(format!(
                    "input item-stat {name:?} is a number, not a {}",
                    ty.as_str()
                ));
            }
            Ok(())
        }
        Scope::UserItem => fixed(USER_ITEM, "user-item"),
        Scope::UserStat => {
            if let Some(attribute) = AGGREGATES.iter().find_map(|p| name.strip_prefix(p)) {
                if attribute.is_empty() || ty != ValueType::Strings {
                    return Err(format!(
                        "input user-stat {name:?}: purchased.<attribute> and \
                         interacted.<attribute> are lists of strings naming an item attribute"
                    ));
                }
                return Ok(());
            }
            fixed(USER_STATS, "user-stat").map_err(|e| {
                format!("{e}, and purchased.<attribute> / interacted.<attribute> (strings)")
            })
        }
        Scope::Item => match known(ITEM_FIELDS, name) {
            Some(t) if t != ty && !(t == ValueType::Timestamp && ty == ValueType::Number) => {
                Err(format!(
                    "input item {name:?} is the item's own {} field, not a {}",
                    t.as_str(),
                    ty.as_str()
                ))
            }
            _ if ty == ValueType::Ids => Err(format!(
                "input item {name:?}: ids are for per-request inputs only"
            )),
            _ => Ok(()),
        },
        Scope::Context => match known(CONTEXT_FIELDS, name) {
            Some(t) if t != ty => Err(format!(
                "input context {name:?} is a {}, not a {}",
                t.as_str(),
                ty.as_str()
            )),
            _ if ty == ValueType::Ids => Err(format!(
                "input context {name:?}: context keys are numbers, flags, text or timestamps"
            )),
            _ => Ok(()),
        },
        Scope::User => Ok(()),
    }
}

/// Checks a 0.2 rule's declared inputs: each one known and well-typed, no
/// name twice where the SDK would confuse them, a bounded count.
pub fn check_inputs(metadata: &Metadata) -> Result<(), String> {
    if metadata.inputs.len() > MAX_INPUTS {
        return Err(format!(
            "{} inputs are declared; at most {MAX_INPUTS} are allowed",
            metadata.inputs.len()
        ));
    }
    for (i, input) in metadata.inputs.iter().enumerate() {
        check_input(input)?;
        let clash = metadata.inputs[..i].iter().find(|other| {
            other.name == input.name
                && (other.scope.per_candidate() && input.scope.per_candidate()
                    || same_view(other.scope, input.scope))
        });
        if let Some(other) = clash {
            return Err(format!(
                "input {:?} is declared twice ({} and {})",
                input.name,
                other.scope.as_str(),
                input.scope.as_str()
            ));
        }
    }
    Ok(())
}

/// User and user-stat share one view in the SDK; the context has its own.
fn same_view(a: Scope, b: Scope) -> bool {
    let view = |s: Scope| match s {
        Scope::User | Scope::UserStat => 1,
        Scope::Context => 2,
        _ => 0,
    };
    view(a) != 0 && view(a) == view(b)
}

/// What a rule built against contract 0.1 reads: its fixed columns,
/// expressed as 0.2 inputs so one gathering serves both.
pub fn legacy_inputs() -> Vec<Input> {
    use recengine_rules_sdk::input::*;
    vec![
        item_text("category"),
        item_strings("tags"),
        item_timestamp("created_at"),
        item_flag("in_stock"),
        item_flag("is_promotional"),
        item_timestamp("promo_end_date"),
        item_number("min_age"),
        item_text("origin_country"),
        item_strings("allowed_countries"),
        item_strings("blocked_countries"),
        user_number("age"),
        user_text("country"),
        user_strings("favorite_categories"),
        user_strings("favorite_tags"),
        user_stat_ids("purchased"),
        context_text("country"),
        context_text("device"),
        context_number("hour_of_day"),
        context_flag("is_weekend"),
    ]
}

#[cfg(test)]
mod tests {
    use recengine_rules_sdk::{Kind, input};

    use super::*;

    fn declaring(inputs: Vec<Input>) -> Result<(), String> {
        let mut m = Metadata::new("r", Kind::Filter, 1, "");
        m.inputs = inputs;
        check_inputs(&m)
    }

    #[test]
    fn unknown_names_are_refused_with_the_list_of_known_ones() {
        let err = declaring(vec![input::item_stat("avg_ratings")]).unwrap_err();
        assert!(err.contains("\"avg_ratings\""), "{err}");
        assert!(err.contains("avg_rating,"), "{err}");
        let err = declaring(vec![input::user_item_number("affinity")]).unwrap_err();
        assert!(err.contains("category_affinity"), "{err}");
        let err = declaring(vec![input::user_stat("purchased")]).unwrap_err();
        assert!(err.contains("is a ids, not a number"), "{err}");
    }

    #[test]
    fn open_scopes_take_any_name_and_clashes_are_refused() {
        assert!(
            declaring(vec![
                input::item_number("price"),
                input::user_text("plan"),
                input::context_number("budget"),
                input::user_stat_strings("purchased.brand"),
                input::context_text("country"),
                input::user_text("country"),
            ])
            .is_ok()
        );
        let err = declaring(vec![
            input::item_number("avg_rating"),
            input::item_stat("avg_rating"),
        ])
        .unwrap_err();
        assert!(err.contains("declared twice"), "{err}");
        assert!(declaring(vec![input::item_number("")]).is_err());
        assert!(declaring(vec![input::item_text("created_at")]).is_err());
    }

    #[test]
    fn legacy_inputs_pass_the_check() {
        assert_eq!(declaring(legacy_inputs()), Ok(()));
    }
}
