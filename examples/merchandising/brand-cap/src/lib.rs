//! `brand_cap` (rerank, priority 15): keeps one brand from crowding the top
//! of the list.
//!
//! Reads: item `brand` (text): a key of the item's `features`.
//!
//! Going down the list, the first `window` positions are filled with the
//! items that fit: an item whose brand already has `max_per_brand` items in
//! the window is pushed out. Every item not placed in the window (pushed
//! out or past it) follows, in its original relative order. Items without a
//! brand are never capped. When there are too few other items to fill the
//! window, the pushed-out ones fill it in after the others. The outcome is
//! always every position exactly once.
//!
//! Parameters: `max_per_brand` (number, default 2, 1 to 100), `window`
//! (number, default 10, 1 to 1000).

use std::collections::HashMap;

use recengine_rules_sdk::{Kind, Metadata, Outcome, Param, Params, Request, Rule, Symbol, input};

/// The rule.
pub struct BrandCap;

impl Rule for BrandCap {
    fn metadata() -> Metadata {
        Metadata::new(
            "brand_cap",
            Kind::Rerank,
            15,
            "Allows at most max_per_brand items of one brand within the first window positions; \
             the items pushed out follow in their order",
        )
        .input(input::item_text("brand"))
        .param(Param::number(
            "max_per_brand",
            "Items of one brand allowed within the window",
            2.0,
            1.0,
            100.0,
        ))
        .param(Param::number(
            "window",
            "How many top positions the cap applies to",
            10.0,
            1.0,
            1000.0,
        ))
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let max = params.number("max_per_brand").max(1.0) as usize;
        let window = params.number("window").max(1.0) as usize;
        let mut counts: HashMap<Symbol, usize> = HashMap::new();
        let mut head = Vec::with_capacity(window.min(req.len()));
        let mut tail = Vec::new();
        for c in req.candidates() {
            let position = c.position() as u32;
            if head.len() == window {
                tail.push(position);
                continue;
            }
            let fits = match c.text_symbol("brand") {
                None => true,
                Some(brand) => {
                    let n = counts.entry(brand).or_insert(0);
                    *n += 1;
                    *n <= max
                }
            };
            if fits {
                head.push(position);
            } else {
                tail.push(position);
            }
        }
        // Pushed-out items come before the unvisited ones in `tail`, as
        // they did in the list: relative order is kept.
        head.extend(tail);
        Ok(Outcome::Reordered(head))
    }
}

recengine_rules_sdk::export_rule!(BrandCap);

#[cfg(test)]
mod tests {
    use recengine_rules_sdk::testing::{Item, RequestBuilder, Subject, run};

    use super::*;

    fn list(brands: &[Option<&str>]) -> Subject {
        brands
            .iter()
            .enumerate()
            .fold(RequestBuilder::new(), |b, (i, brand)| {
                let item = Item::new(i as i64 + 1, 1.0 - i as f64 * 0.05);
                b.item(match brand {
                    Some(brand) => item.attr("brand", *brand),
                    None => item,
                })
            })
            .build()
    }

    fn sorted(mut ids: Vec<i64>) -> Vec<i64> {
        ids.sort_unstable();
        ids
    }

    #[test]
    fn a_third_item_of_one_brand_is_pushed_below_the_others() {
        let (a, b) = (Some("acme"), Some("bolt"));
        let req = list(&[a, a, a, b, None, a, b]);
        let r = run::<BrandCap>(&req, &[]).unwrap();
        assert_eq!(r.ids(), vec![1, 2, 4, 5, 7, 3, 6]);
        assert_eq!(sorted(r.ids()), vec![1, 2, 3, 4, 5, 6, 7]);
        // Scores travel with their items.
        assert_eq!(r.score_of(3), Some(0.9));
    }

    #[test]
    fn the_cap_applies_within_the_window_only() {
        let (a, b, c) = (Some("acme"), Some("bolt"), Some("core"));
        let req = list(&[a, a, b, c, a, a]);
        let r = run::<BrandCap>(&req, &[("max_per_brand", 1.0), ("window", 3.0)]).unwrap();
        // Window: 1, 3, 4; then 2 (pushed out), 5 and 6 as they were.
        assert_eq!(r.ids(), vec![1, 3, 4, 2, 5, 6]);
        assert_eq!(sorted(r.ids()), vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn unbranded_items_and_single_brand_lists_keep_their_order() {
        let unbranded = list(&[None; 5]);
        let r = run::<BrandCap>(&unbranded, &[("max_per_brand", 1.0)]).unwrap();
        assert_eq!(r.ids(), vec![1, 2, 3, 4, 5]);
        assert!(r.effect.moved.is_empty());
        // Nothing else to fill the window: the pushed-out items fill it in.
        let acme = list(&[Some("acme"); 5]);
        let r = run::<BrandCap>(&acme, &[]).unwrap();
        assert_eq!(r.ids(), vec![1, 2, 3, 4, 5]);
        let empty = RequestBuilder::new().build();
        assert!(run::<BrandCap>(&empty, &[]).unwrap().ids().is_empty());
    }
}
