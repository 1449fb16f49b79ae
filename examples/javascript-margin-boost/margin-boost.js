// The logic of boost_high_margin, free of the component bindings so that
// Node can test it (margin-boost.test.js).

/**
 * Multiplies each score by 1 + weight * margin (margin clamped to 0..1);
 * an absent margin (NaN) keeps the score.
 */
export function boost(scores, margins, weight) {
  const out = new Array(scores.length);
  for (let i = 0; i < scores.length; i++) {
    const margin = margins[i];
    out[i] = Number.isNaN(margin)
      ? scores[i]
      : scores[i] * (1 + weight * Math.min(Math.max(margin, 0), 1));
  }
  return out;
}

/**
 * Symbol `index` of a request's symbol table, where `bytes` is
 * `new TextEncoder().encode(request.symbolText)` and `ends` is
 * `request.symbolEnds`.
 *
 * The ends are UTF-8 byte offsets, and a JavaScript string is indexed by
 * UTF-16 code units, so slice the encoded bytes (encode once per request,
 * not once per symbol). This rule reads only numbers; a text input (a
 * brand, say) would arrive as a symbol index to look up here.
 */
const decoder = new TextDecoder();
export function symbol(bytes, ends, index) {
  const start = index > 0 ? ends[index - 1] : 0;
  return decoder.decode(bytes.subarray(start, ends[index]));
}
