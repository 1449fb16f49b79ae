"""boost_high_margin (boost, priority 55), written in Python.

The same rule as examples/merchandising/boost-high-margin (Rust, SDK):
multiplies each score by 1 + weight * margin, where margin is the item's
`margin` attribute (a fraction of the price, clamped to 0..1). Items without
a margin keep their score.

Built with componentize-py against wit/rules.wit (world `rule`); see
README.md.
"""

from componentize_py_types import Err
import wit_world
from wit_world.imports import types

from margin_boost import boost

# The contract this rule speaks (recengine:rules@0.2.0): the host refuses a
# major.minor other than 0.2.
SDK_VERSION = "0.2.0"


class WitWorld(wit_world.WitWorld):
    def metadata(self) -> types.RuleMetadata:
        return types.RuleMetadata(
            name="boost_high_margin",
            kind=types.RuleKind.BOOST,
            default_priority=55,
            description="Multiplies the score by 1 + weight * margin "
            "(the item's margin, a fraction 0..1)",
            params=[
                types.Param(
                    name="weight",
                    description="How much the margin counts: score x (1 + weight x margin)",
                    default_value=types.ParamValue_Number(0.5),
                    min=0.0,
                    max=10.0,
                    allowed=[],
                )
            ],
            inputs=[types.Input(types.Scope.ITEM, "margin", types.ValueType.NUMBER)],
            sdk_version=SDK_VERSION,
            fail_closed=False,
        )

    def apply(self, request: types.Request) -> types.Outcome:
        # Columns and parameters arrive in the order metadata() declares them.
        margins = request.columns[0]
        weight = request.params[0]
        if not isinstance(margins, types.Column_Numbers) or not isinstance(
            weight, types.ParamValue_Number
        ):
            # An error string fails this call; the rule's failure policy applies.
            raise Err("unexpected input shapes")
        return types.Outcome_Rescored(boost(request.scores, margins.value, weight.value))
