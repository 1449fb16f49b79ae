"""The rule's logic, tested in plain Python (no component, no host):
python3 -m unittest test_margin_boost (from this directory)."""

import math
import unittest

from margin_boost import boost, symbol

NAN = math.nan


class BoostTest(unittest.TestCase):
    def test_margins_boost_clamped(self):
        scores = [1.0, 0.95, 0.9, 0.5, 0.4]
        margins = [0.2, NAN, 0.8, 3.0, -0.5]
        self.assertEqual(
            boost(scores, margins, 0.5),
            [1.0 * 1.1, 0.95, 0.9 * 1.4, 0.5 * 1.5, 0.4],
        )

    def test_weight_zero_is_off(self):
        self.assertEqual(boost([1.0, 0.5], [0.9, 0.2], 0.0), [1.0, 0.5])

    def test_symbols_are_sliced_by_utf8_bytes(self):
        # "Café" is 5 bytes, not 4 characters: the second symbol starts at 5.
        text = "CaféMüller".encode("utf-8")
        ends = [5, 12]
        self.assertEqual(symbol(text, ends, 0), "Café")
        self.assertEqual(symbol(text, ends, 1), "Müller")


if __name__ == "__main__":
    unittest.main()
