//! The `filter_geo_restricted` rule as a component.
recengine_rules_sdk::export_rule!(recengine_builtin_rules::FilterGeoRestricted);
