// The rule's logic in plain Node (no component, no host): npm test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { boost, symbol } from "./margin-boost.js";

test("margins boost, clamped to 0..1; absent keeps the score", () => {
  assert.deepEqual(
    boost([1.0, 0.95, 0.9, 0.5, 0.4], [0.2, NaN, 0.8, 3.0, -0.5], 0.5),
    [1.0 * 1.1, 0.95, 0.9 * 1.4, 0.5 * 1.5, 0.4],
  );
});

test("weight 0 switches the boost off", () => {
  assert.deepEqual(boost([1.0, 0.5], [0.9, 0.2], 0), [1.0, 0.5]);
});

test("symbols are sliced by UTF-8 bytes", () => {
  // "Café" is 5 bytes, not 4 UTF-16 units: the second symbol starts at 5.
  const bytes = new TextEncoder().encode("CaféMüller");
  assert.equal(symbol(bytes, [5, 12], 0), "Café");
  assert.equal(symbol(bytes, [5, 12], 1), "Müller");
});
