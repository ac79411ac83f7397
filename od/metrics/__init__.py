"""Metrics: FAD and KAD (VGGish bridge, CLAP), CLAP score, rhythm alignment, video sensitivity,
and conditioning A/B accuracy; `suite` is the table od.eval and the solver share."""
