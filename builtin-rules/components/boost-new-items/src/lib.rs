//! The `boost_new_items` rule as a component.
recengine_rules_sdk::export_rule!(recengine_builtin_rules::BoostNewItems);
