"""Conditioners od knows by name. Importing this package registers them all.

AudioCraft's own (t5, lut, chroma_stem, clap) are registered in `builtin.py`; each od
conditioner lives in its own module here and registers itself with one decorator line.
"""
from . import (
    builtin,  # noqa: F401  (registers t5, lut, chroma_stem, clap)
    clap_audio,  # noqa: F401  (registers clap_audio)
    clip_frames,  # noqa: F401  (registers clip_frames)
    clip_sync,  # noqa: F401  (registers clip_sync)
    textual_inversion,  # noqa: F401  (registers t5_ti)
)
