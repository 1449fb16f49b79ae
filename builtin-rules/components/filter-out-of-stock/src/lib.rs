//! The `filter_out_of_stock` rule as a component.
recengine_rules_sdk::export_rule!(recengine_builtin_rules::FilterOutOfStock);
