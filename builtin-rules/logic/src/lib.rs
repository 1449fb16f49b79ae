//! The business rules the service ships with, as the Python service
//! defined them (names, kinds, priorities, defaults), written against the
//! SDK. Each is built into its own component under `components/`; here they
//! are plain Rust, unit-tested natively and used by the host's native
//! reference pipeline in benchmarks.

use recengine_rules_sdk::{
    Candidate, Kind, Metadata, Outcome, Param, Params, Request, Rule, Symbol, input,
};

const DAY_MS: f64 = 86_400_000.0;

/// Drops items marked out of stock.
pub struct FilterOutOfStock;

impl Rule for FilterOutOfStock {
    fn metadata() -> Metadata {
        Metadata::new(
            "filter_out_of_stock",
            Kind::Filter,
            100,
            "Removes items whose in_stock is false",
        )
        .input(input::item_flag("in_stock"))
        .param(Param::flag(
            "drop_unknown",
            "Also remove items whose stock is not known",
            false,
        ))
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let drop_unknown = params.flag("drop_unknown");
        Ok(Outcome::drop_where(req, |c| match c.flag("in_stock") {
            Some(in_stock) => !in_stock,
            None => drop_unknown,
        }))
    }
}

/// Drops items whose minimum age is above the user's.
pub struct FilterAgeRestricted;

impl Rule for FilterAgeRestricted {
    fn metadata() -> Metadata {
        Metadata::new(
            "filter_age_restricted",
            Kind::Filter,
            95,
            "Removes items whose min_age is above the user's age",
        )
        .input(input::item_number("min_age"))
        .input(input::user_number("age"))
        .param(Param::flag(
            "allow_unknown_age",
            "Show age-restricted items to users whose age is unknown (the seed's default)",
            true,
        ))
        .fail_closed()
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let allow_unknown = params.flag("allow_unknown_age");
        // Whole years, as the service has always compared them.
        let age = req
            .user()
            .number("age")
            .filter(|a| (0.0..=150.0).contains(a))
            .map(|a| a as i64);
        Ok(Outcome::drop_where(req, |c| {
            let Some(min_age) = c
                .number("min_age")
                .map(|a| a.min(200.0) as i64)
                .filter(|a| *a > 0)
            else {
                return false;
            };
            match age {
                Some(age) => age < min_age,
                None => !allow_unknown,
            }
        }))
    }
}

/// Drops items the user already bought.
pub struct FilterPurchased;

impl Rule for FilterPurchased {
    fn metadata() -> Metadata {
        Metadata::new(
            "filter_purchased",
            Kind::Filter,
            90,
            "Removes items the user has already purchased",
        )
        .input(input::user_stat_ids("purchased"))
    }

    fn apply(req: &Request, _params: &Params) -> Result<Outcome, String> {
        let purchased = req.user().ids("purchased");
        Ok(Outcome::drop_where(req, |c| {
            purchased.binary_search(&c.id()).is_ok()
        }))
    }
}

/// Drops items not sold in the request's (else the user's) country.
pub struct FilterGeoRestricted;

impl Rule for FilterGeoRestricted {
    fn metadata() -> Metadata {
        Metadata::new(
            "filter_geo_restricted",
            Kind::Filter,
            85,
            "Removes items not available in the request's country (else the user's): \
             allowed_countries / blocked_countries",
        )
        .input(input::item_strings("allowed_countries"))
        .input(input::item_strings("blocked_countries"))
        .input(input::context_text("country"))
        .input(input::user_text("country"))
        .param(Param::flag(
            "drop_restricted_when_country_unknown",
            "When no country is known, remove items that have any country restriction",
            false,
        ))
        .fail_closed()
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let country = req
            .context()
            .text("country")
            .or_else(|| req.user().text("country"));
        let strict = params.flag("drop_restricted_when_country_unknown");
        // Country codes compare without regard to case.
        let is_here = |code: &str| country.is_some_and(|c| c.eq_ignore_ascii_case(code));
        Ok(Outcome::drop_where(req, |c| {
            let mut allowed = c.strings("allowed_countries").peekable();
            let mut blocked = c.strings("blocked_countries").peekable();
            if country.is_none() {
                return strict && (allowed.peek().is_some() || blocked.peek().is_some());
            }
            let restricted = allowed.peek().is_some();
            (restricted && !allowed.any(is_here)) || blocked.any(is_here)
        }))
    }
}

/// Boosts the user's favourite categories and tags.
pub struct BoostPreferences;

impl Rule for BoostPreferences {
    fn metadata() -> Metadata {
        Metadata::new(
            "boost_preferences",
            Kind::Boost,
            60,
            "Multiplies the score of items in a favourite category and with a favourite tag",
        )
        .input(input::item_text("category"))
        .input(input::item_strings("tags"))
        .input(input::user_strings("favorite_categories"))
        .input(input::user_strings("favorite_tags"))
        .param(Param::number(
            "category_factor",
            "Multiplier for an item in one of the user's favourite categories",
            1.4,
            0.0,
            100.0,
        ))
        .param(Param::number(
            "tag_factor",
            "Multiplier for an item with at least one of the user's favourite tags",
            1.2,
            0.0,
            100.0,
        ))
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let (cat_f, tag_f) = (
            params.number("category_factor"),
            params.number("tag_factor"),
        );
        let categories: Vec<Symbol> = req.user().string_symbols("favorite_categories");
        let tags: Vec<Symbol> = req.user().string_symbols("favorite_tags");
        Ok(Outcome::rescore(req, |c: Candidate| {
            let mut f = 1.0;
            if c.text_symbol("category")
                .is_some_and(|s| categories.contains(&s))
            {
                f *= cat_f;
            }
            if c.string_symbols("tags").any(|t| tags.contains(&t)) {
                f *= tag_f;
            }
            c.score() * f
        }))
    }
}

/// Boosts items on a running promotion.
pub struct BoostPromotional;

impl Rule for BoostPromotional {
    fn metadata() -> Metadata {
        Metadata::new(
            "boost_promotional",
            Kind::Boost,
            50,
            "Multiplies the score of promotional items whose promotion has not ended",
        )
        .input(input::item_flag("is_promotional"))
        .input(input::item_timestamp("promo_end_date"))
        .param(Param::number("factor", "Multiplier", 1.5, 0.0, 100.0))
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let factor = params.number("factor");
        let now = req.now_ms();
        Ok(Outcome::rescore(req, |c| {
            // A promotion without a (readable) end date has not ended.
            let running = c.flag("is_promotional") == Some(true)
                && c.timestamp("promo_end_date").is_none_or(|end| end > now);
            c.score() * if running { factor } else { 1.0 }
        }))
    }
}

/// Boosts items created recently.
pub struct BoostNewItems;

impl Rule for BoostNewItems {
    fn metadata() -> Metadata {
        Metadata::new(
            "boost_new_items",
            Kind::Boost,
            40,
            "Multiplies the score of items created within the last days",
        )
        .input(input::item_timestamp("created_at"))
        .param(Param::number("factor", "Multiplier", 1.3, 0.0, 100.0))
        .param(Param::number(
            "max_age_days",
            "How recent counts as new",
            7.0,
            0.0,
            3650.0,
        ))
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let factor = params.number("factor");
        let window = params.number("max_age_days") * DAY_MS;
        let now = req.now_ms();
        Ok(Outcome::rescore(req, |c| {
            let created = c.timestamp("created_at").unwrap_or(0);
            let age = (now - created) as f64;
            c.score()
                * if (0.0..=window).contains(&age) {
                    factor
                } else {
                    1.0
                }
        }))
    }
}

/// Caps how many items of one category lead the list.
pub struct Diversity;

impl Rule for Diversity {
    fn metadata() -> Metadata {
        Metadata::new(
            "diversity",
            Kind::Rerank,
            20,
            "Keeps at most max_per_category items of one category at the top; the rest follow",
        )
        .input(input::item_text("category"))
        .param(Param::number(
            "max_per_category",
            "Items of one category allowed before the others get their turn (DIVERSITY_MAX_PER_CATEGORY)",
            3.0,
            1.0,
            1000.0,
        ))
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let max = params.number("max_per_category").max(1.0) as usize;
        let mut counts: std::collections::HashMap<Symbol, usize> = Default::default();
        let mut head = Vec::with_capacity(req.len());
        let mut tail = Vec::new();
        for c in req.candidates() {
            let position = c.position() as u32;
            match c.text_symbol("category") {
                None => head.push(position),
                Some(category) => {
                    let n = counts.entry(category).or_insert(0);
                    if *n < max {
                        *n += 1;
                        head.push(position);
                    } else {
                        tail.push(position);
                    }
                }
            }
        }
        head.extend(tail);
        Ok(Outcome::Reordered(head))
    }
}

/// Drops the items the request asked to exclude and, when switched on,
/// the items the user made themselves.
pub struct FilterExcluded;

impl Rule for FilterExcluded {
    fn metadata() -> Metadata {
        Metadata::new(
            "filter_excluded",
            Kind::Filter,
            99,
            "Removes the ids the request excludes (exclude_ids) and, with exclude_own_items, \
             items whose created_by is the user",
        )
        .input(input::item_text("created_by"))
        .param(Param::flag(
            "exclude_own_items",
            "Also remove items whose created_by attribute is the requesting user's id",
            false,
        ))
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let own = params.flag("exclude_own_items");
        let user = req.user_id().to_string();
        Ok(Outcome::drop_where(req, |c| {
            req.is_excluded(c.id()) || (own && c.text("created_by") == Some(user.as_str()))
        }))
    }
}
#[cfg(test)]
mod tests;
