"""The logic of boost_high_margin, free of the component bindings so that
plain Python can test it (test_margin_boost.py)."""

import math


def symbol(text: bytes, ends: list, index: int) -> str:
    """Symbol `index` of a request's symbol table, where `text` is
    `request.symbol_text.encode("utf-8")` and `ends` is `request.symbol_ends`.

    The ends are UTF-8 byte offsets, and a Python str is indexed by code
    points, so slice the encoded bytes (encode once per request, not once
    per symbol). This rule reads only numbers; a text input (a brand, say)
    would arrive as a symbol index to look up here.
    """
    start = ends[index - 1] if index > 0 else 0
    return text[start:ends[index]].decode("utf-8")


def boost(scores, margins, weight):
    """The rule's logic, free of bindings so that plain Python can test it."""
    out = []
    for score, margin in zip(scores, margins):
        if math.isnan(margin):  # absent
            out.append(score)
        else:
            out.append(score * (1.0 + weight * min(max(margin, 0.0), 1.0)))
    return out
