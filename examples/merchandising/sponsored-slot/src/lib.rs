//! `sponsored_slot` (promote, priority 65): places one sponsored item at a
//! fixed position on every request.
//!
//! Reads no input: only the candidate ids (to see whether the sponsored
//! item already ranks high enough) and the ids the request excludes.
//!
//! The item `item_id` goes at `position`, unless it is already among the
//! first `position` candidates (it earned its place: nothing to do) or the
//! request excludes it. The item may come from anywhere in the catalogue.
//! A promoted item is not trusted blindly: the host looks it up and still
//! runs it through the safety filters (age, geo) and the stock filter, so a
//! sponsored item a shopper must not see, or that is out of stock, never
//! appears.
//!
//! Parameters: `item_id` (number, default 0 = no sponsored item, 0 to
//! 1e15; a whole number, anything else fails the call), `position` (number,
//! default 3, 1 to 100; 1 is the top).

use recengine_rules_sdk::{Kind, Metadata, Outcome, Param, Params, Placement, Request, Rule};

/// The rule.
pub struct SponsoredSlot;

impl Rule for SponsoredSlot {
    fn metadata() -> Metadata {
        Metadata::new(
            "sponsored_slot",
            Kind::Promote,
            65,
            "Places the sponsored item item_id at position, unless it already ranks there or \
             higher; safety and stock filters still apply to it",
        )
        .param(Param::number(
            "item_id",
            "The sponsored item's id (0: none)",
            0.0,
            0.0,
            1e15,
        ))
        .param(Param::number(
            "position",
            "Where the sponsored item goes (1 is the top)",
            3.0,
            1.0,
            100.0,
        ))
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let item_id = params.number("item_id");
        if item_id.fract() != 0.0 {
            return Err("item_id must be a whole number".into());
        }
        let item_id = item_id as i64;
        let position = params.number("position").max(1.0) as u32;
        let top = &req.ids()[..req.len().min(position as usize)];
        if item_id <= 0 || req.is_excluded(item_id) || top.contains(&item_id) {
            return Ok(Outcome::Promoted(Vec::new()));
        }
        Ok(Outcome::Promoted(vec![Placement::at(item_id, position)]))
    }
}

recengine_rules_sdk::export_rule!(SponsoredSlot);

#[cfg(test)]
mod tests {
    use recengine_rules_sdk::testing::{Item, RequestBuilder, Subject, run};

    use super::*;

    fn candidates() -> Subject {
        RequestBuilder::new()
            .item(Item::new(1, 0.9))
            .item(Item::new(2, 0.8))
            .item(Item::new(3, 0.7))
            .item(Item::new(4, 0.6))
            .build()
    }

    #[test]
    fn the_sponsored_item_takes_its_slot() {
        let r = run::<SponsoredSlot>(&candidates(), &[("item_id", 42.0)]).unwrap();
        assert_eq!(r.promoted(), &[Placement::at(42, 3)]);
        assert_eq!(r.ids(), vec![1, 2, 3, 4]);
        // Ranking just below the slot: moved up to it.
        let r = run::<SponsoredSlot>(&candidates(), &[("item_id", 4.0)]).unwrap();
        assert_eq!(r.promoted(), &[Placement::at(4, 3)]);
        let top = run::<SponsoredSlot>(&candidates(), &[("item_id", 42.0), ("position", 1.0)]);
        assert_eq!(top.unwrap().promoted(), &[Placement::top(42)]);
    }

    #[test]
    fn nothing_when_unset_already_high_or_excluded() {
        assert_eq!(
            run::<SponsoredSlot>(&candidates(), &[]).unwrap().promoted(),
            &[]
        );
        let r = run::<SponsoredSlot>(&candidates(), &[("item_id", 2.0)]).unwrap();
        assert_eq!(r.promoted(), &[], "already at position 2 of 3");
        let excluded = RequestBuilder::new()
            .exclude(&[42])
            .item(Item::new(1, 0.9))
            .build();
        let r = run::<SponsoredSlot>(&excluded, &[("item_id", 42.0)]).unwrap();
        assert_eq!(r.promoted(), &[]);
    }

    #[test]
    fn a_fractional_id_fails_the_call() {
        let err = run::<SponsoredSlot>(&candidates(), &[("item_id", 4.5)]).unwrap_err();
        assert!(err.contains("whole number"), "{err}");
    }
}
