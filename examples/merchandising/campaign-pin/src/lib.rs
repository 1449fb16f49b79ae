//! `campaign_pin` (promote, priority 70): pins a campaign's items at fixed
//! positions for requests from the campaign's countries.
//!
//! Reads: context `country` (text): the country the request comes from (as
//! the caller sends it; compared without regard to ASCII case). A request
//! without a country, or from another country, gets no placement.
//!
//! Parameters:
//! - `countries` (strings, default `["FR"]`): where the campaign runs;
//! - `item_ids` (strings, default `[]`): the items to pin, in order, each an
//!   integer id written as text; entries that do not parse, duplicates and
//!   ids the request excludes are skipped;
//! - `position` (number, default 2, 1 to 100): where the first item goes
//!   (1 is the top); the next goes at `position + 1`, and so on.
//!
//! The items may come from anywhere in the catalogue: the host looks them
//! up, runs them through the safety and stock filters and places them after
//! every other rule ran.

use recengine_rules_sdk::{
    Kind, Metadata, Outcome, Param, Params, Placement, Request, Rule, input,
};

/// The rule.
pub struct CampaignPin;

impl Rule for CampaignPin {
    fn metadata() -> Metadata {
        Metadata::new(
            "campaign_pin",
            Kind::Promote,
            70,
            "Places the campaign's item_ids from position onwards for requests from one of \
             countries",
        )
        .input(input::context_text("country"))
        .param(Param::strings(
            "countries",
            "Request countries the campaign runs in (ISO codes)",
            &["FR"],
        ))
        .param(Param::strings(
            "item_ids",
            "The items to pin, in order (integer ids as text)",
            &[],
        ))
        .param(Param::number(
            "position",
            "Where the first item goes (1 is the top); the others follow it",
            2.0,
            1.0,
            100.0,
        ))
    }

    fn apply(req: &Request, params: &Params) -> Result<Outcome, String> {
        let countries = params.strings("countries");
        let running = req
            .context()
            .text("country")
            .is_some_and(|here| countries.iter().any(|c| c.eq_ignore_ascii_case(here)));
        if !running {
            return Ok(Outcome::Promoted(Vec::new()));
        }
        let first = params.number("position").max(1.0) as u32;
        let mut placements: Vec<Placement> = Vec::new();
        for id in params.strings("item_ids") {
            let Ok(id) = id.trim().parse::<i64>() else {
                continue;
            };
            if req.is_excluded(id) || placements.iter().any(|p| p.item_id == id) {
                continue;
            }
            let position = first + placements.len() as u32;
            placements.push(Placement::at(id, position));
        }
        Ok(Outcome::Promoted(placements))
    }
}

recengine_rules_sdk::export_rule!(CampaignPin);

#[cfg(test)]
mod tests {
    use recengine_rules_sdk::{
        ParamValue,
        testing::{Item, RequestBuilder, Subject, run, run_with},
    };

    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn request_from(country: Option<&str>) -> Subject {
        RequestBuilder::new()
            .context(country, Some("mobile"), Some(10), false, NOW, &[])
            .item(Item::new(1, 0.9))
            .item(Item::new(2, 0.8))
            .item(Item::new(3, 0.7))
            .build()
    }

    fn campaign(ids: &[&str]) -> (&'static str, ParamValue) {
        ("item_ids", ParamValue::from(ids))
    }

    #[test]
    fn items_are_pinned_from_the_position_in_campaign_countries() {
        let r = run_with::<CampaignPin>(
            &request_from(Some("FR")),
            &[campaign(&["42", "not-an-id", "7", " 9 ", "42"])],
        )
        .unwrap();
        assert_eq!(
            r.promoted(),
            &[
                Placement::at(42, 2),
                Placement::at(7, 3),
                Placement::at(9, 4)
            ]
        );
        // A promote rule leaves the organic list to the host.
        assert_eq!(r.ids(), vec![1, 2, 3]);
        let lower = run_with::<CampaignPin>(
            &request_from(Some("fr")),
            &[campaign(&["42"]), ("position", ParamValue::Number(5.0))],
        )
        .unwrap();
        assert_eq!(lower.promoted(), &[Placement::at(42, 5)]);
    }

    #[test]
    fn other_countries_and_no_country_get_nothing() {
        for country in [Some("DE"), None] {
            let r = run_with::<CampaignPin>(&request_from(country), &[campaign(&["42"])]).unwrap();
            assert_eq!(r.promoted(), &[], "{country:?}");
        }
        // The default campaign has no items.
        assert_eq!(
            run::<CampaignPin>(&request_from(Some("FR")), &[])
                .unwrap()
                .promoted(),
            &[]
        );
    }

    #[test]
    fn countries_are_configurable_and_exclusions_respected() {
        let req = RequestBuilder::new()
            .context_value("country", "AT")
            .exclude(&[7])
            .item(Item::new(1, 0.9))
            .build();
        let params = [
            ("countries", ParamValue::from(["DE", "AT"])),
            campaign(&["7", "8"]),
            ("position", ParamValue::Number(1.0)),
        ];
        let r = run_with::<CampaignPin>(&req, &params).unwrap();
        assert_eq!(r.promoted(), &[Placement::top(8)]);
    }
}
