//! The `filter_excluded` rule as a component.
recengine_rules_sdk::export_rule!(recengine_builtin_rules::FilterExcluded);
