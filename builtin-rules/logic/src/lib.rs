//! The eight business rules the service ships with, as the Python service
//! defined them (names, kinds, priorities, defaults), written against the
//! SDK. Each is built into its own component under `components/`; here they
//! are plain Rust, unit-tested natively and used by the host's native
//! reference pipeline in benchmarks.

use recengine_rules_sdk::{Config, Kind, Metadata, NONE, Outcome, Param, Request, Rule};

const DAY_MS: f64 = 86_400_000.0;

fn drop_where(req: &Request, mut pred: impl FnMut(usize) -> bool) -> Outcome {
    Outcome::Dropped(
        (0..req.candidates.len())
            .filter(|&i| pred(i))
            .map(|i| i as u32)
            .collect(),
    )
}

fn rescore(req: &Request, mut factor: impl FnMut(usize) -> f64) -> Outcome {
    Outcome::Rescored(
        (0..req.candidates.len())
            .map(|i| req.candidates.scores[i] * factor(i))
            .collect(),
    )
}

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
        .param(Param::flag(
            "drop_unknown",
            "Also remove items whose stock is not known",
            false,
        ))
    }

    fn apply(req: &Request, config: &Config) -> Result<Outcome, String> {
        let drop_unknown = config.flag("drop_unknown");
        Ok(drop_where(req, |i| match req.candidates.in_stock[i] {
            0 => true,
            1 => false,
            _ => drop_unknown,
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
        .param(Param::flag(
            "allow_unknown_age",
            "Show age-restricted items to users whose age is unknown (the seed's default)",
            true,
        ))
        .fail_closed()
    }

    fn apply(req: &Request, config: &Config) -> Result<Outcome, String> {
        let allow_unknown = config.flag("allow_unknown_age");
        let age = req.user.age();
        Ok(drop_where(req, |i| {
            let min_age = req.candidates.min_age[i];
            if min_age <= 0 {
                return false;
            }
            match age {
                Some(age) => (age as i64) < i64::from(min_age),
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
    }

    fn apply(req: &Request, _config: &Config) -> Result<Outcome, String> {
        Ok(drop_where(req, |i| {
            req.user.has_purchased(req.candidates.ids[i])
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
        .param(Param::flag(
            "drop_restricted_when_country_unknown",
            "When no country is known, remove items that have any country restriction",
            false,
        ))
        .fail_closed()
    }

    fn apply(req: &Request, config: &Config) -> Result<Outcome, String> {
        let country = req.effective_country();
        let strict = config.flag("drop_restricted_when_country_unknown");
        let c = &req.candidates;
        Ok(drop_where(req, |i| {
            let allowed = c.allowed_countries(i);
            let blocked = c.blocked_countries(i);
            if country == NONE {
                return strict && !(allowed.is_empty() && blocked.is_empty());
            }
            (!allowed.is_empty() && !allowed.contains(&country)) || blocked.contains(&country)
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
        .param(Param::new(
            "category_factor",
            "Multiplier for an item in one of the user's favourite categories",
            1.4,
            0.0,
            100.0,
        ))
        .param(Param::new(
            "tag_factor",
            "Multiplier for an item with at least one of the user's favourite tags",
            1.2,
            0.0,
            100.0,
        ))
    }

    fn apply(req: &Request, config: &Config) -> Result<Outcome, String> {
        let (cat_f, tag_f) = (config.get("category_factor"), config.get("tag_factor"));
        let user = &req.user;
        let c = &req.candidates;
        Ok(rescore(req, |i| {
            let mut f = 1.0;
            if c.categories[i] != NONE && user.favorite_categories.contains(&c.categories[i]) {
                f *= cat_f;
            }
            if c.tags(i).iter().any(|t| user.favorite_tags.contains(t)) {
                f *= tag_f;
            }
            f
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
        .param(Param::new("factor", "Multiplier", 1.5, 0.0, 100.0))
    }

    fn apply(req: &Request, config: &Config) -> Result<Outcome, String> {
        let factor = config.get("factor");
        let now = req.context.now_ms;
        Ok(rescore(req, |i| {
            let end = req.candidates.promo_end_ms[i];
            if end != i64::MIN && end > now {
                factor
            } else {
                1.0
            }
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
        .param(Param::new("factor", "Multiplier", 1.3, 0.0, 100.0))
        .param(Param::new(
            "max_age_days",
            "How recent counts as new",
            7.0,
            0.0,
            3650.0,
        ))
    }

    fn apply(req: &Request, config: &Config) -> Result<Outcome, String> {
        let factor = config.get("factor");
        let window = config.get("max_age_days") * DAY_MS;
        let now = req.context.now_ms;
        Ok(rescore(req, |i| {
            let age = (now - req.candidates.created_at_ms[i]) as f64;
            if (0.0..=window).contains(&age) {
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
        .param(Param::new(
            "max_per_category",
            "Items of one category allowed before the others get their turn (DIVERSITY_MAX_PER_CATEGORY)",
            3.0,
            1.0,
            1000.0,
        ))
    }

    fn apply(req: &Request, config: &Config) -> Result<Outcome, String> {
        let max = config.get("max_per_category").max(1.0) as usize;
        let c = &req.candidates;
        let mut counts: std::collections::HashMap<u32, usize> = Default::default();
        let mut head = Vec::with_capacity(c.len());
        let mut tail = Vec::new();
        for i in 0..c.len() {
            let cat = c.categories[i];
            let n = counts.entry(cat).or_insert(0);
            if cat == NONE || *n < max {
                *n += 1;
                head.push(i as u32);
            } else {
                tail.push(i as u32);
            }
        }
        head.extend(tail);
        Ok(Outcome::Reordered(head))
    }
}

#[cfg(test)]
mod tests;
