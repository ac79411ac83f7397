"""AudioCraft 1.3's conditioners, registered under their upstream names.

`t5` is od's offline-safe subclass (see t5.py); the others are AudioCraft's classes as is,
except that `chroma_stem` is built inside `hash_checked_upstream_pickles`: it loads demucs'
htdemucs package, which pickles its model class (demucs reads it with `weights_only=False`;
torch.hub checked the file's hash when it downloaded it). Everything else od reads stays a
weights-only load (od/safe_load.py).
"""
from audiocraft.modules import conditioners as ac

from ..registry import register_conditioner
from ..safe_load import hash_checked_upstream_pickles
from . import t5  # noqa: F401  (registers 't5')

register_conditioner('lut')(ac.LUTConditioner)
register_conditioner('clap')(ac.CLAPEmbeddingConditioner)


@register_conditioner('chroma_stem')
def chroma_stem(output_dim: int, device: str = 'cpu', duration=None, **kwargs):
    """AudioCraft's ChromaStemConditioner (melody), unchanged."""
    with hash_checked_upstream_pickles('demucs htdemucs from the torch hub cache'):
        return ac.ChromaStemConditioner(output_dim=output_dim, device=device, duration=duration, **kwargs)
