"""AudioCraft 1.3's conditioners, registered under their upstream names.

`t5` is od's offline-safe subclass (see t5.py); the others are AudioCraft's classes as is.
`chroma_stem` is built while od serves demucs' htdemucs itself (od/encoders/demucs.py): demucs
would read its files in ways that can run code named by the file; od reads them weights-only.
"""
from audiocraft.modules import conditioners as ac

from ..encoders.demucs import serving_htdemucs
from . import t5  # noqa: F401  (registers 't5')
from .registry import register_conditioner

register_conditioner('lut')(ac.LUTConditioner)
register_conditioner('clap')(ac.CLAPEmbeddingConditioner)


@register_conditioner('chroma_stem')
def chroma_stem(output_dim: int, device: str = 'cpu', duration=None, **kwargs):
    """AudioCraft's ChromaStemConditioner (melody), with demucs loaded by od."""
    with serving_htdemucs():
        return ac.ChromaStemConditioner(output_dim=output_dim, device=device, duration=duration, **kwargs)
