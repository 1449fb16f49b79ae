// boost_high_margin (boost, priority 55), written in JavaScript.
//
// The same rule as examples/merchandising/boost-high-margin (Rust, SDK):
// multiplies each score by 1 + weight * margin, where margin is the item's
// `margin` attribute (a fraction of the price, clamped to 0..1). Items
// without a margin keep their score.
//
// Built with componentize-js against wit/rules.wit (world `rule`); see
// README.md. componentize-js maps the WIT: kebab-case names become
// camelCase, enums are their case names as strings, variants are
// `{ tag, val }`, `list<f64>` arrives as a Float64Array, and a thrown
// value becomes the `err` of a `result`.

import { boost } from "./margin-boost.js";

// The contract this rule speaks (recengine:rules@0.2.0): the host refuses
// a major.minor other than 0.2.
const SDK_VERSION = "0.2.0";

export function metadata() {
  return {
    name: "boost_high_margin",
    kind: "boost",
    defaultPriority: 55,
    description:
      "Multiplies the score by 1 + weight * margin (the item's margin, a fraction 0..1)",
    params: [
      {
        name: "weight",
        description: "How much the margin counts: score x (1 + weight x margin)",
        defaultValue: { tag: "number", val: 0.5 },
        min: 0,
        max: 10,
        allowed: [],
      },
    ],
    inputs: [{ scope: "item", name: "margin", valueType: "number" }],
    sdkVersion: SDK_VERSION,
    failClosed: false,
  };
}

export function apply(request) {
  // Columns and parameters arrive in the order metadata() declares them.
  const margins = request.columns[0];
  const weight = request.params[0];
  if (margins?.tag !== "numbers" || weight?.tag !== "number") {
    // An error string fails this call; the rule's failure policy applies.
    throw "unexpected input shapes";
  }
  return { tag: "rescored", val: boost(request.scores, margins.val, weight.val) };
}
