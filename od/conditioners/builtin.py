"""AudioCraft 1.3's conditioners, registered under their upstream names.

`t5` is od's offline-safe subclass (see t5.py); the others are AudioCraft's classes as is.
"""
from audiocraft.modules import conditioners as ac

from ..registry import register_conditioner
from . import t5  # noqa: F401  (registers 't5')

register_conditioner('lut')(ac.LUTConditioner)
register_conditioner('chroma_stem')(ac.ChromaStemConditioner)
register_conditioner('clap')(ac.CLAPEmbeddingConditioner)
