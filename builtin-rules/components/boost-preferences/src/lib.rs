//! The `boost_preferences` rule as a component.
recengine_rules_sdk::export_rule!(recengine_builtin_rules::BoostPreferences);
